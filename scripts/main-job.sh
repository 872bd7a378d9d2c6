#!/usr/bin/env bash
# The main job on the bundled samples (what README command 1 runs), per sample corpus:
#   index -> OUT_DIR/<corpus>.jsonl, a 2-shard plan,
#   fit both shards with ${FACEBATCH_MODEL:-samples/models/default.h5} (the fit's defaults + --refine) -> OUT_DIR/fit/<corpus>/,
#   status + merge -> OUT_DIR/fit/<corpus>/merged.h5 (validated, inspected),
#   export OBJ meshes and QA overlays -> OUT_DIR/export/<corpus>/{obj,overlay},
#   eval against the manifest (and the synthetic ground truth) -> OUT_DIR/eval/<corpus>/,
#   an HTML report -> OUT_DIR/report/<corpus>.html.
# Without that model file an UNTRAINED demo model is created (loudly said below).
set -euo pipefail
FB=${1:?usage: main-job.sh FACEBATCH_BINARY OUT_DIR}
OUT=${2:?usage: main-job.sh FACEBATCH_BINARY OUT_DIR}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SAMPLES=${FACEBATCH_SAMPLES:-"$ROOT/samples"}
MODEL=${FACEBATCH_MODEL:-"$ROOT/samples/models/default.h5"}
# The fit's own defaults (coarse to fine, docs/fit.md) unless FACEBATCH_STEPS sets the joint stage's steps.
# With the residual refinement (--refine, docs/fit.md) unless FACEBATCH_REFINE=0.
STEP_ARGS=()
[ -n "${FACEBATCH_STEPS:-}" ] && STEP_ARGS=(--steps "$FACEBATCH_STEPS")
[ "${FACEBATCH_REFINE:-1}" = 0 ] || STEP_ARGS+=(--refine)
mkdir -p "$OUT"
"$FB" version
for corpus in 300W-LP AFLW2000 CelebA folder; do
  echo "== $corpus"
  "$FB" index --root "$SAMPLES/$corpus" --out "$OUT/$corpus.jsonl" --progress log
  "$FB" shards --manifest "$OUT/$corpus.jsonl" --num-shards 2
done
if [ ! -f "$MODEL" ]; then
  MODEL="$OUT/untrained-demo-model.h5"
  echo "##################################################################################" >&2
  echo "## WARNING: no trained model at ${FACEBATCH_MODEL:-samples/models/default.h5}." >&2
  echo "## Creating an UNTRAINED demo model (facebatch model init --preset demo) at" >&2
  echo "## $MODEL: the fits below show the pipeline, NOT meaningful faces." >&2
  echo "##################################################################################" >&2
  "$FB" model init --preset demo --seed 0 --out "$MODEL"
fi
status=0
for corpus in 300W-LP AFLW2000 CelebA folder; do
  echo "== fit $corpus (2 shards)"
  FIT="$OUT/fit/$corpus"
  ok=1
  for shard in 0/2 1/2; do
    rc=0
    "$FB" fit --manifest "$OUT/$corpus.jsonl" --model "$MODEL" --out "$FIT" --shard "$shard" \
      "${STEP_ARGS[@]}" --batch 4 --progress log || rc=$?
    # 3 = finished with some failed items (recorded in the file); anything else is an error.
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then echo "fit $corpus $shard failed with exit code $rc" >&2; status=$rc; ok=0; fi
  done
  [ "$ok" = 1 ] || continue
  "$FB" status "$FIT"
  "$FB" merge "$FIT" --out "$FIT/merged.h5"
  "$FB" validate "$FIT/merged.h5"
  "$FB" inspect "$FIT/merged.h5"
  echo "== export $corpus"
  for kind in obj overlay; do
    rc=0
    "$FB" export "$kind" "$FIT/merged.h5" --out "$OUT/export/$corpus/$kind" --progress log || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then echo "export $kind $corpus failed with exit code $rc" >&2; status=$rc; fi
  done
  echo "== eval $corpus"
  "$FB" eval "$FIT/merged.h5" --manifest "$OUT/$corpus.jsonl" --out "$OUT/eval/$corpus" || status=$?
  "$FB" report "$FIT/merged.h5" --eval "$OUT/eval/$corpus" --out "$OUT/report/$corpus.html" || status=$?
done
echo "main job done: manifests in $OUT, fits in $OUT/fit/<corpus>/merged.h5, meshes and overlays in"
echo "$OUT/export/<corpus>/, metrics in $OUT/eval/<corpus>/summary.json, reports in $OUT/report/"
exit $status

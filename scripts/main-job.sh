#!/usr/bin/env bash
# The main job on the bundled samples (what README command 1 runs):
# index every sample corpus into OUT_DIR/<corpus>.jsonl, show a 2-shard plan,
# then fit every corpus with the model at ${FACEBATCH_MODEL:-samples/models/default.h5}
# and write the shard HDF5 files into OUT_DIR/fit/<corpus>/ (validated and inspected).
# Without that model file an UNTRAINED demo model is created (loudly said below).
set -euo pipefail
FB=${1:?usage: main-job.sh FACEBATCH_BINARY OUT_DIR}
OUT=${2:?usage: main-job.sh FACEBATCH_BINARY OUT_DIR}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SAMPLES=${FACEBATCH_SAMPLES:-"$ROOT/samples"}
MODEL=${FACEBATCH_MODEL:-"$ROOT/samples/models/default.h5"}
STEPS=${FACEBATCH_STEPS:-10}
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
  echo "== fit $corpus"
  rc=0
  "$FB" fit --manifest "$OUT/$corpus.jsonl" --model "$MODEL" --out "$OUT/fit/$corpus" --shard 0/1 \
    --steps "$STEPS" --batch 4 --progress log || rc=$?
  # 3 = finished with some failed items (recorded in the file); anything else is an error.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then echo "fit $corpus failed with exit code $rc" >&2; status=$rc; continue; fi
  "$FB" validate "$OUT/fit/$corpus/shard-00000-of-00001.h5"
  "$FB" inspect "$OUT/fit/$corpus/shard-00000-of-00001.h5"
done
echo "main job done: manifests in $OUT, shard files in $OUT/fit"
exit $status

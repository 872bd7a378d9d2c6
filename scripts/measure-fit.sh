#!/usr/bin/env bash
# Measures `facebatch fit` on a HELD-OUT synthetic corpus (docs/fit.md "Measurement"):
# synth (AFLW2000-3D layout, the generator's full variation unless told otherwise, a seed
# no training run uses) -> index -> fit (one shard, the options given) -> eval.
# Usage: scripts/measure-fit.sh OUT_DIR [fit options...]
# Environment: FACEBATCH (binary, default build/facebatch), MODEL (default samples/models/default.h5),
# COUNT (faces, default 64), SEED (default 5151), SYNTH_ARGS (extra synth options, e.g. "--occluders 0").
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: measure-fit.sh OUT_DIR [fit options...]}
shift
FB=${FACEBATCH:-build/facebatch}
MODEL=${MODEL:-samples/models/default.h5}
COUNT=${COUNT:-64}
SEED=${SEED:-5151}
export OPENBLAS_NUM_THREADS=1
CORPUS="$OUT/corpus-$SEED"
if [ ! -f "$CORPUS/facebatch_ground_truth.h5" ]; then
  # shellcheck disable=SC2086
  "$FB" synth --layout aflw2000 --count "$COUNT" --seed "$SEED" --out "$CORPUS" --progress none ${SYNTH_ARGS:-}
fi
[ -f "$OUT/corpus-$SEED.jsonl" ] || "$FB" index --root "$CORPUS" --out "$OUT/corpus-$SEED.jsonl" --progress none
rm -rf "$OUT/fit" "$OUT/eval"
start=$(date +%s.%N)
rc=0
"$FB" fit --manifest "$OUT/corpus-$SEED.jsonl" --model "$MODEL" --out "$OUT/fit" --shard 0/1 --progress none "$@" || rc=$?
end=$(date +%s.%N)
if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then exit "$rc"; fi
"$FB" eval "$OUT/fit/shard-00000-of-00001.h5" --manifest "$OUT/corpus-$SEED.jsonl" --out "$OUT/eval" >/dev/null
python3 - "$OUT/eval/summary.json" "$start" "$end" "$COUNT" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
m = s["metrics"]
sec = float(sys.argv[3]) - float(sys.argv[2])
print(f"fit wall time {sec:.1f} s for {sys.argv[4]} images ({float(sys.argv[4]) / sec:.2f} images/s)")
for k in ("l21", "nme_io", "shape_nme"):
    if k not in m: continue
    row = " ".join(f"{b}: {m[k][b]['mean']:.4f} (n={m[k][b]['count']})" for b in m[k] if m[k][b].get("count"))
    print(f"{k:10s} {row}")
PY

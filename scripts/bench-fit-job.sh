#!/usr/bin/env bash
# Peak memory of the fit job on a small and a large shard (issue 7): `facebatch fit` keeps
# memory bounded by the batch and part sizes (bounded queues, one part in the writer,
# consolidation one part at a time), whatever the shard size. This makes a synthetic
# 300W-LP corpus of COUNT images with `facebatch synth` (COUNT/2 faces + their _Flip
# mirrors), an untrained demo model, then fits shard 0/(COUNT/SMALL) (SMALL images) and the
# whole corpus (shard 0/1) under /usr/bin/time -v, and prints peak RSS, wall time, the
# fitter's busy fraction and the job's per-stage split for both.
#
#   scripts/bench-fit-job.sh [BINARY] [WORK]
#   env: COUNT (1000), SMALL (10), STEPS (2: memory does not depend on it), SCHEDULE (joint: nor on
#        this; coarse-to-fine adds 30 appearance iterations per image), BATCH (4), THREADS (0 = all)
# The corpus and model in WORK are reused by later runs; the fits are redone (--overwrite).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-build/facebatch}")
WORK=${2:-${TMPDIR:-/tmp}/facebatch-bench-fit-job}
COUNT=${COUNT:-1000}
SMALL=${SMALL:-10}
STEPS=${STEPS:-2}
SCHEDULE=${SCHEDULE:-joint}
BATCH=${BATCH:-4}
THREADS=${THREADS:-0}
mkdir -p "$WORK"
if [ ! -f "$WORK/corpus.jsonl" ]; then
  "$BIN" synth --layout 300w-lp --out "$WORK/corpus" --count $((COUNT / 2)) --seed 7 --progress log
  "$BIN" index --root "$WORK/corpus" --out "$WORK/corpus.jsonl" --progress none
fi
[ -f "$WORK/demo.h5" ] || "$BIN" model init --preset demo --out "$WORK/demo.h5" >/dev/null

run() {  # run NAME SHARD
  local name=$1 shard=$2
  /usr/bin/time -v "$BIN" fit --manifest "$WORK/corpus.jsonl" --model "$WORK/demo.h5" --out "$WORK/fit-$name" \
    --shard "$shard" --schedule "$SCHEDULE" --steps "$STEPS" --batch "$BATCH" --threads "$THREADS" --progress log --overwrite \
    >"$WORK/fit-$name.out" 2>"$WORK/fit-$name.log" || { tail -20 "$WORK/fit-$name.log"; return 1; }
}
run small "0/$((COUNT / SMALL))"
run large "0/1"

echo "fit job, demo preset (untrained), --schedule $SCHEDULE --steps $STEPS --batch $BATCH --threads $THREADS; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s %8s %14s %10s %8s  %s\n' shard images "peak RSS MiB" "wall s" busy "per-stage split (s, summed over threads)"
for name in small large; do
  log="$WORK/fit-$name.log"
  images=$(grep -o 'shard [0-9/]*: [0-9]* images' "$WORK/fit-$name.out" | awk '{print $3}')
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$log")
  wall=$(grep -o 'busy [0-9.]*% of [0-9.]* s wall' "$log" | awk '{print $4}')
  busy=$(grep -o 'busy [0-9.]*%' "$log" | awk '{print $2}')
  stages=$(grep -o 'stages (s, summed over threads): [^;]*' "$log" | sed 's/.*threads): //')
  printf '%-7s %8s %14s %10s %8s  %s\n' "$name" "$images" "$rss" "$wall" "$busy" "$stages"
done

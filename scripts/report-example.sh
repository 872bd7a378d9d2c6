#!/usr/bin/env bash
# docs/images/report.png: samples -> fit -> eval -> report -> headless Chromium screenshot.
#   scripts/report-example.sh [FACEBATCH_BINARY] [OUT_DIR]
# Model: $FACEBATCH_MODEL, else samples/models/default.h5, else an UNTRAINED demo model
# (said loudly: the fits then show the pipeline, not meaningful faces).
# Exit 77 when chromium is not installed (Debian package `chromium`).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FB=${1:-"$ROOT/build/facebatch"}
OUT=${2:-"${TMPDIR:-/tmp}/facebatch-report-example"}
MODEL=${FACEBATCH_MODEL:-"$ROOT/samples/models/default.h5"}
STEPS=${FACEBATCH_STEPS:-40}  # the fit's default joint steps
SHOT=${FACEBATCH_SCREENSHOT:-"$ROOT/docs/images/report.png"}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then echo "report-example: chromium is not installed (apt-get install chromium); skipped" >&2; exit 77; fi
mkdir -p "$OUT"
"$FB" index --root "$ROOT/samples/AFLW2000" --out "$OUT/aflw2000.jsonl" --progress none
"$FB" index --root "$ROOT/samples/300W-LP" --out "$OUT/300w-lp.jsonl" --progress none
if [ ! -f "$MODEL" ]; then
  MODEL="$OUT/untrained-demo-model.h5"
  echo "report-example: WARNING: no trained model; using an UNTRAINED demo model ($MODEL)" >&2
  "$FB" model init --preset demo --seed 0 --out "$MODEL"
fi
for c in aflw2000 300w-lp; do
  rc=0
  "$FB" fit --manifest "$OUT/$c.jsonl" --model "$MODEL" --out "$OUT/fit/$c" --shard 0/1 --steps "$STEPS" \
    --batch 4 --progress none --overwrite || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then exit "$rc"; fi  # 3 = some items failed (recorded)
done
"$FB" eval "$OUT/fit" --manifest "$OUT/aflw2000.jsonl" "$OUT/300w-lp.jsonl" --out "$OUT/eval" --progress none
"$FB" report "$OUT/fit" --eval "$OUT/eval" --out "$OUT/report/report.html" --samples 6 --worst 4
mkdir -p "$(dirname "$SHOT")"
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --disable-dev-shm-usage --user-data-dir="$PROFILE" --hide-scrollbars \
  --window-size=1200,1500 --virtual-time-budget=10000 --screenshot="$SHOT" "file://$OUT/report/report.html" 2>/dev/null
echo "report: $OUT/report/report.html; screenshot: $SHOT"

#!/usr/bin/env bash
# Reproduces the bundled default model (docs/train.md): synth -> index -> train with
# pipelines/train-demo.ini. Usage: scripts/train-default-model.sh [WORK_DIR] [extra train options]
# About 35 minutes on 2 CPU cores (docs/train.md); resumable: rerun with --resume (or split with --stop-at N).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-work}
shift || true
FB=${FACEBATCH:-build/facebatch}
export OPENBLAS_NUM_THREADS=1
mkdir -p "$WORK"
if [ ! -f "$WORK/synth-300wlp/facebatch_ground_truth.h5" ]; then
  "$FB" synth --layout 300w-lp --count 4000 --seed 2026 --uv 96x112 --out "$WORK/synth-300wlp"
fi
if [ ! -f "$WORK/synth-300wlp.jsonl" ]; then
  "$FB" index --root "$WORK/synth-300wlp" --out "$WORK/synth-300wlp.jsonl"
fi
"$FB" train --config pipelines/train-demo.ini --manifest "$WORK/synth-300wlp.jsonl" --preset demo \
  --out "$WORK/train-demo" "$@"
echo "default model: $WORK/train-demo/model.h5 (copy to samples/ with its provenance)"

#!/usr/bin/env bash
# Reproduces the bundled default model (docs/train.md), two stages:
#  1. synth -> index -> train with pipelines/train-demo.ini (encoder and decoders together);
#  2. the encoder stage, pipelines/train-demo-encoder.ini: the decoders frozen, the encoder alone
#     regresses stage 1's latent targets on the same corpus, with crop jitter.
# Usage: scripts/train-default-model.sh [WORK_DIR] [extra options of both train runs, e.g. --resume]
# About 35 + 60 minutes on 2 CPU cores (docs/train.md); each stage resumes exactly: rerun with
# --resume (or split with --stop-at N). A finished stage is not rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-work}
shift || true
FB=${FACEBATCH:-build/facebatch}
export OPENBLAS_NUM_THREADS=1
mkdir -p "$WORK"
corpus() {  # corpus DIR COUNT SEED
  if [ ! -f "$WORK/$1/facebatch_ground_truth.h5" ]; then
    "$FB" synth --layout 300w-lp --count "$2" --seed "$3" --uv 96x112 --out "$WORK/$1"
  fi
  if [ ! -f "$WORK/$1.jsonl" ]; then
    "$FB" index --root "$WORK/$1" --out "$WORK/$1.jsonl"
  fi
}
corpus synth-300wlp 4000 2026
if [ ! -f "$WORK/train-demo/model.h5" ]; then
  "$FB" train --config pipelines/train-demo.ini --manifest "$WORK/synth-300wlp.jsonl" --preset demo \
    --out "$WORK/train-demo" "$@"
fi
# Stage 2 resumes only from its own checkpoint: a --resume meant for stage 1 is dropped when
# stage 2 has not started yet.
stage2_args=()
for a in "$@"; do
  if [ "$a" = "--resume" ] && [ ! -f "$WORK/train-demo-encoder/checkpoint/state.json" ]; then continue; fi
  stage2_args+=("$a")
done
"$FB" train --config pipelines/train-demo-encoder.ini --manifest "$WORK/synth-300wlp.jsonl" \
  --model-in "$WORK/train-demo/model.h5" --latent-targets "$WORK/train-demo" --out "$WORK/train-demo-encoder" \
  ${stage2_args[@]+"${stage2_args[@]}"}
echo "default model: $WORK/train-demo-encoder/model.h5 (copy to samples/models/default.h5 with its provenance)"

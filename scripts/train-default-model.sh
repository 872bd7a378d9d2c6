#!/usr/bin/env bash
# Reproduces the bundled default model (docs/train.md), four stages:
#  1. synth -> index -> train with pipelines/train-demo.ini (encoder and decoders together);
#  2. the encoder stage, pipelines/train-demo-encoder.ini: the decoders frozen, the encoder alone
#     regresses stage 1's latent targets on the same corpus, with crop jitter;
#  3. the encoder stage continued on 6,000 new identities (a second corpus, seed 2027),
#     pipelines/train-demo-encoder-stage3.ini;
#  4. the decoder stage, pipelines/train-demo-decoders.ini: the encoder frozen, the decoders alone
#     learn stage 1's latent targets -> ground-truth maps on the second corpus.
# Usage: scripts/train-default-model.sh [WORK_DIR] [extra options of both train runs, e.g. --resume]
# About 35 + 60 + 45 + 65 minutes on 2 CPU cores (+ 20 for the second corpus) (docs/train.md); each stage resumes exactly: rerun with
# --resume (or split with --stop-at N). A finished stage is not rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-work}
shift || true
FB=${FACEBATCH:-build/facebatch}
export OPENBLAS_NUM_THREADS=1
mkdir -p "$WORK"
corpus() {  # corpus DIR COUNT SEED [FLIP]
  if [ ! -f "$WORK/$1/facebatch_ground_truth.h5" ]; then
    "$FB" synth --layout 300w-lp --count "$2" --seed "$3" --uv 96x112 --flip "${4:-1}" --out "$WORK/$1"
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
# Stages 2 and 3 resume only from their own checkpoints: a --resume meant for an earlier stage
# is dropped when the stage has not started yet.
stage_args() {  # stage_args OUT_DIR ARGS...: sets $args
  local out=$1
  shift
  args=()
  for a in "$@"; do
    if [ "$a" = "--resume" ] && [ ! -f "$out/checkpoint/state.json" ]; then continue; fi
    args+=("$a")
  done
}
if [ ! -f "$WORK/train-demo-encoder/model.h5" ]; then
  stage_args "$WORK/train-demo-encoder" "$@"
  "$FB" train --config pipelines/train-demo-encoder.ini --manifest "$WORK/synth-300wlp.jsonl" \
    --model-in "$WORK/train-demo/model.h5" --latent-targets "$WORK/train-demo" --out "$WORK/train-demo-encoder" \
    ${args[@]+"${args[@]}"}
fi
corpus synth-2027 6000 2027 0
if [ ! -f "$WORK/train-demo-encoder-stage3/model.h5" ]; then
  stage_args "$WORK/train-demo-encoder-stage3" "$@"
  "$FB" train --config pipelines/train-demo-encoder-stage3.ini --manifest "$WORK/synth-2027.jsonl" \
    --model-in "$WORK/train-demo-encoder/model.h5" --latent-targets "$WORK/train-demo" \
    --out "$WORK/train-demo-encoder-stage3" ${args[@]+"${args[@]}"}
fi
stage_args "$WORK/train-demo-decoders" "$@"
"$FB" train --config pipelines/train-demo-decoders.ini --manifest "$WORK/synth-2027.jsonl" \
  --model-in "$WORK/train-demo-encoder-stage3/model.h5" --latent-targets "$WORK/train-demo" \
  --out "$WORK/train-demo-decoders" ${args[@]+"${args[@]}"}
echo "default model: $WORK/train-demo-decoders/model.h5 (copy to samples/models/default.h5 with its provenance)"

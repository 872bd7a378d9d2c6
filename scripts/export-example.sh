#!/usr/bin/env bash
# Makes docs/images/export-example.png (docs/export.md): one AFLW2000 sample fitted,
# exported as OBJ, the OBJ imported back through Assimp and rendered (textured, lit)
# with the render module (`facebatch export preview`), beside the QA overlay.
#   scripts/export-example.sh [BINARY] [WORK_DIR] [PICTURE]
# The model is ${FACEBATCH_MODEL:-samples/models/default.h5}; when it does not exist an
# UNTRAINED demo model is made (and the picture then shows the pipeline, not a good fit).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/facebatch}
WORK=${2:-export-example-out}
PICTURE=${3:-docs/images/export-example.png}
STEPS=${FACEBATCH_STEPS:-40}  # the fit's default joint steps
mkdir -p "$WORK"
MODEL=${FACEBATCH_MODEL:-samples/models/default.h5}
if [ ! -f "$MODEL" ]; then
  echo "export-example: $MODEL does not exist: using an UNTRAINED demo model (the fit shows the pipeline, not a face)" >&2
  MODEL=$WORK/demo-model.h5
  [ -f "$MODEL" ] || "$BIN" model init --preset demo --out "$MODEL"
fi
"$BIN" index --root samples/AFLW2000 --out "$WORK/aflw.jsonl" --progress none
"$BIN" fit --manifest "$WORK/aflw.jsonl" --model "$MODEL" --out "$WORK/fit" --shard 0/1 --steps "$STEPS" \
  --progress none --overwrite
SHARD=$WORK/fit/shard-00000-of-00001.h5
rm -rf "$WORK/obj" "$WORK/overlay" "$WORK/preview"
"$BIN" export obj "$SHARD" --out "$WORK/obj" --range 0:1 --progress none
"$BIN" export overlay "$SHARD" --out "$WORK/overlay" --range 0:1 --overlay-max-size 360 --progress none
OBJ=$(ls "$WORK"/obj/*.obj | head -n 1)
OVERLAY=$(ls "$WORK"/overlay/*.overlay.png | head -n 1)
"$BIN" export preview "$OBJ" --out "$WORK/preview" --beside "$OVERLAY" --preview-size 360 --progress none
cp "$(ls "$WORK"/preview/*.preview.png | head -n 1)" "$PICTURE"
echo "export-example: wrote $PICTURE (model $MODEL, $STEPS fit steps)"

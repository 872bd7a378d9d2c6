#!/usr/bin/env bash
# The main job on the bundled samples (what README command 1 runs):
# index every sample corpus into OUT_DIR/<corpus>.jsonl, then show a 2-shard plan of each.
# (Later issues extend it with fit and export.)
set -euo pipefail
FB=${1:?usage: main-job.sh FACEBATCH_BINARY OUT_DIR}
OUT=${2:?usage: main-job.sh FACEBATCH_BINARY OUT_DIR}
SAMPLES=${FACEBATCH_SAMPLES:-"$(cd "$(dirname "$0")/.." && pwd)/samples"}
mkdir -p "$OUT"
"$FB" version
for corpus in 300W-LP AFLW2000 CelebA folder; do
  echo "== $corpus"
  "$FB" index --root "$SAMPLES/$corpus" --out "$OUT/$corpus.jsonl" --progress log
  "$FB" shards --manifest "$OUT/$corpus.jsonl" --num-shards 2
done
echo "main job done: manifests in $OUT"

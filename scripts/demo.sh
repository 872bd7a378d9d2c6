#!/usr/bin/env bash
# README command (1): set up, build, and run the main job on samples/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${FACEBATCH_BUILD_DIR:-build}
OUT=${FACEBATCH_DEMO_OUT:-demo-out}
exec bash scripts/main-job.sh "$BUILD_DIR/facebatch" "$OUT"

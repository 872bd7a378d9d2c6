#!/usr/bin/env bash
# README command (2): set up, build, and run the whole test suite with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${FACEBATCH_BUILD_DIR:-build}
export OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
cd "$BUILD_DIR"
ctest --output-on-failure -j "${FACEBATCH_TEST_JOBS:-$(nproc)}" --timeout 1500 "$@"

#!/usr/bin/env bash
set -eu
cd "$(dirname "$0")"
# On a GPU node with a CUDA LibTorch (the PyTorch wheel's) but without the full
# dependency set: builds core logging + render + model (+ io's HDF5 wrapper) and
# their tests against that LibTorch, then runs them (the CUDA tests included).
# Needs debs/ from prepare.sh, cmake, ninja, gtest, fmt, zlib and HDF5 headers.
mkdir -p deps && for f in debs/*.deb; do dpkg -x "$f" deps; done
TORCH_PREFIX=$(python3 -c "import torch; print(torch.utils.cmake_prefix_path)")
export LD_LIBRARY_PATH=$PWD/deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
cmake -S . -B b -G Ninja -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$PWD/deps/usr" -DTBB_DIR=$PWD/deps/usr/lib/x86_64-linux-gnu/cmake/TBB > cmake.log 2>&1 || { tail -40 cmake.log; exit 1; }
cmake --build b -j 16 > build.log 2>&1 || { grep -E "error" -A3 build.log | head -60; exit 1; }
OMP_WAIT_POLICY=PASSIVE ./b/test_render_cuda 2>&1 | grep -E "Cuda|PASSED|FAILED|SKIPPED"
OMP_WAIT_POLICY=PASSIVE ./b/test_model_cuda --gtest_filter="ModelDevice*" 2>&1 | tail -12
OMP_WAIT_POLICY=PASSIVE ./b/test_model_cuda 2>&1 | grep -E "^\[ *(RUN|OK|FAILED|PASSED|SKIPPED)" | tail -8; echo "exit ${PIPESTATUS[0]}"

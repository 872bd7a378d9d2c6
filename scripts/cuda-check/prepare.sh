#!/usr/bin/env bash
# Run HERE (Debian, with apt): downloads the oneTBB packages a GPU node without
# them needs for scripts/cuda-check/run.sh (the node itself may have no network).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p debs && cd debs
apt-get download libtbb12 libtbb-dev libtbbmalloc2 libtbbbind-2-5 libhwloc15

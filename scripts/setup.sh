#!/usr/bin/env bash
# Installs the Debian 12 packages facebatch needs (only those missing), then
# configures and builds into ${FACEBATCH_BUILD_DIR:-build}. Run as root (or
# with sudo available) on a fresh machine; later runs only rebuild.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libtorch-dev libopenblas0-pthread
  libopencv-dev libhdf5-dev hdf5-tools libtbb-dev libboost-program-options-dev
  libassimp-dev libmatio-dev libdlib-dev libdlib-data
  nlohmann-json3-dev libfmt-dev zlib1g-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-h5py python3-numpy
  slurm-wlm
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm (the glTF-Validator below) from Debian unless the machine already has them
# (e.g. NodeSource's nodejs, which bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
  echo "facebatch setup: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Khronos glTF-Validator for the export tests (npm package by name, version pinned in
# tests/readers/gltf/package-lock.json), once.
if [ ! -f tests/readers/gltf/node_modules/gltf-validator/package.json ]; then
  echo "facebatch setup: installing the glTF-Validator (npm ci in tests/readers/gltf)" >&2
  npm ci --prefix tests/readers/gltf --no-audit --no-fund --loglevel=error >/dev/null
fi

BUILD_DIR=${FACEBATCH_BUILD_DIR:-build}
JOBS=${FACEBATCH_JOBS:-$(nproc)}
# Configure every time (a few seconds): new modules under lib/ and tests/ are picked up.
if [ -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" ${FACEBATCH_CMAKE_ARGS:-} >/dev/null
else
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release ${FACEBATCH_CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$BUILD_DIR" -j "$JOBS"

#!/usr/bin/env bash
# Makes a model, a manifest and a fit shard of the CelebA samples with the
# built binary, then reads them (and the samples' ground truth) with h5py.
set -euo pipefail
fb=$1; src=$2
py=/usr/bin/python3   # Debian's python3-h5py (scripts/setup.sh installs it)
"$py" -c "import h5py" 2>/dev/null || { echo "skipped: no h5py for $py"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$fb" model init --preset demo --seed 3 --out "$tmp/model.h5" >/dev/null
"$fb" index --root "$src/samples/CelebA" --out "$tmp/celeba.jsonl" --progress none >/dev/null
"$fb" fit --manifest "$tmp/celeba.jsonl" --model "$tmp/model.h5" --out "$tmp/fit" --shard 0/1 \
  --steps 2 --progress none --threads 2 >/dev/null 2>&1
"$py" "$src/tests/readers/check_h5py.py" "$src/schemas" "$tmp/fit/shard-00000-of-00001.h5" \
  "$tmp/celeba.jsonl" "$tmp/model.h5" "$src/samples/CelebA/facebatch_ground_truth.h5"
# The merged file (virtual datasets, schemas/merge.md), read by h5py from another directory.
"$fb" merge "$tmp/fit" --out "$tmp/merged/all.h5" >/dev/null 2>&1
src_abs=$(cd "$src" && pwd)
(cd / && "$py" "$src_abs/tests/readers/check_h5py.py" --merged "$src_abs/schemas" "$tmp/merged/all.h5" "$tmp/celeba.jsonl" \
  "$tmp/fit/shard-00000-of-00001.h5")

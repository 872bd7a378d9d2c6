#!/usr/bin/env python3
"""Albedo error of a fit shard against synthetic ground truth (docs/fit.md "Residual refinement").

Usage: scripts/albedo-error.py SHARD.h5 GROUND_TRUTH.h5
Mean absolute difference of /maps/albedo and the ground truth albedo_uv over the UV mask, raw
and after a per-image, per-channel least-squares gain (albedo and lighting trade a scale), over
the shard's ok images. Reads with h5py (Debian python3-h5py), independent of the writer.
"""
import json
import sys

import h5py
import numpy as np


def main(shard_path, gt_path):
    s = h5py.File(shard_path, "r")
    g = h5py.File(gt_path, "r")
    gt_ids = json.loads(g["ids_json"][()] if "ids_json" in g else g.attrs["ids_json"])
    row = {k: i for i, k in enumerate(gt_ids)}
    text = lambda x: x.decode() if isinstance(x, bytes) else x
    ids = [text(x) for x in s["/images/id"][:]]
    status = [text(x) for x in s["/images/status"][:]]
    mask = s["/topology/mask"][:].astype(bool)
    raw, aligned = [], []
    for i, id_ in enumerate(ids):
        if status[i] != "ok" or id_ not in row:
            continue
        a = s["/maps/albedo"][i].astype(np.float64)[:, mask]
        t = g["albedo_uv"][row[id_]].astype(np.float64)[:, mask]
        raw.append(np.abs(a - t).mean())
        gain = (a * t).sum(1, keepdims=True) / np.maximum((a * a).sum(1, keepdims=True), 1e-12)
        aligned.append(np.abs(gain * a - t).mean())
    if not raw:
        sys.exit(f"{shard_path}: no ok image with ground truth in {gt_path}")
    print(f"albedo L1 vs ground truth: raw {np.mean(raw):.4f} (median {np.median(raw):.4f}), per-channel gain "
          f"aligned {np.mean(aligned):.4f} (median {np.median(aligned):.4f}), {len(raw)} images")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])

#!/usr/bin/env python3
"""Independent reader check: h5py (not facebatch's own HDF5 code) reads a fit
shard, a model file and a synthetic ground-truth file, and checks them against
the machine-readable schemas in schemas/*.schema.json.

usage: check_h5py.py SCHEMAS_DIR SHARD.h5 MANIFEST.jsonl MODEL.h5 GROUND_TRUTH.h5
Exit 0 when every check passes, 1 with the failures listed, 77 without h5py.
"""
import json
import math
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # ctest maps 77 to "skipped"
    print(f"skipped: {e}")
    sys.exit(77)

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def attr_str(obj, name):
    v = obj.attrs[name]
    return v.decode() if isinstance(v, bytes) else str(v)


def dims_of(shape_spec, symbols):
    return [symbols[s] if isinstance(s, str) else s for s in shape_spec]


def check_shard(schema_path, shard_path, manifest_path):
    schema = json.load(open(schema_path))
    f = h5py.File(shard_path, "r")
    check(attr_str(f, "format") == schema["format"], "shard: format attribute")
    check(int(f.attrs["schema_version"]) == schema["version"], "shard: schema_version")
    for name in schema["root_attributes"]:
        check(name in f.attrs, f"shard: root attribute {name} missing")
    n = int(f.attrs["num_images"])
    symbols = {
        "n": n, "N": int(f.attrs["num_vertices"]), "F": int(f.attrs["num_triangles"]),
        "U": int(f.attrs["uv_rows"]), "V": int(f.attrs["uv_cols"]),
        "lS": int(f.attrs["latent_shape"]), "lA": int(f.attrs["latent_albedo"]),
        "T": len([t for t in attr_str(f, "fit_terms").split(",") if t]),
    }
    outputs = set(attr_str(f, "outputs").split(","))
    dtype = attr_str(f, "dtype")
    for path, spec in schema["datasets"].items():
        if "if_output" in spec and spec["if_output"] not in outputs:
            continue
        check(path in f, f"shard: dataset {path} missing")
        if path not in f:
            continue
        ds = f[path]
        want = dims_of(spec["shape"], symbols)
        check(list(ds.shape) == want, f"shard: {path} shape {list(ds.shape)} != {want}")
        kind = dtype if spec["dtype"] == "dtype" else spec["dtype"]
        if kind == "string":
            check(h5py.check_string_dtype(ds.dtype) is not None, f"shard: {path} is not a string dataset")
        else:
            check(ds.dtype == np.dtype(kind), f"shard: {path} dtype {ds.dtype} != {kind}")
        if spec.get("per_image", True):
            check(ds.chunks is not None and ds.chunks[0] == 1, f"shard: {path} not chunked one image per chunk")
            check(ds.compression == "gzip" and ds.shuffle, f"shard: {path} lacks shuffle + deflate")
        if "enum" in spec:
            values = [v.decode() if isinstance(v, bytes) else v for v in ds[()]]
            check(all(v in spec["enum"] for v in values), f"shard: {path} values {set(values)} outside {spec['enum']}")

    # Content: ids are the manifest's ok items, every ok fit is finite and plausible.
    items = [json.loads(line) for line in open(manifest_path)][1:]
    ok_ids = sorted(i["id"] for i in items if i.get("status", "ok") == "ok")
    ids = sorted(v.decode() if isinstance(v, bytes) else v for v in f["/images/id"][()])
    check(ids == ok_ids, f"shard: ids {ids} != manifest ok ids {ok_ids}")
    status = [v.decode() if isinstance(v, bytes) else v for v in f["/images/status"][()]]
    tri = f["/topology/triangles"][()]
    check(tri.min() >= 0 and tri.max() < symbols["N"], "shard: triangle indices out of range")
    for i, s in enumerate(status):
        if s != "ok":
            continue
        for path in ("/latents/f_shape", "/latents/projection", "/latents/lighting", "/metrics/photometric_l21"):
            check(np.all(np.isfinite(f[path][i])), f"shard: {path}[{i}] not finite")
        if "vertices" in outputs:
            v = f["/vertices/image"][i].astype(np.float64)
            check(np.all(np.isfinite(v)), f"shard: /vertices/image[{i}] not finite")
        l21 = float(f["/metrics/photometric_l21"][i])
        check(0.0 <= l21 <= math.sqrt(3.0), f"shard: photometric l2,1 {l21} outside [0, sqrt(3)]")
    print(f"shard ok: {n} images, outputs {sorted(outputs)}")


def check_model(model_path):
    f = h5py.File(model_path, "r")
    check(attr_str(f, "format") == "facebatch-model", "model: format attribute")
    check(int(f.attrs["version"]) >= 1, "model: version")
    check("weights" in f and len(f["weights"]) > 0, "model: no weights group")
    n = 0
    for name, ds in f["weights"].items():
        if isinstance(ds, h5py.Dataset):
            n += ds.size
            check(np.all(np.isfinite(ds[()])), f"model: weights/{name} not finite")
    check(n > 100000, f"model: only {n} weight values")
    print(f"model ok: {n} weight values")


def check_ground_truth(schema_path, gt_path):
    schema = json.load(open(schema_path))
    f = h5py.File(gt_path, "r")
    check(attr_str(f, "format") == schema["format"], "ground truth: format attribute")
    check(int(f.attrs["version"]) == schema["version"], "ground truth: version")
    ids = json.loads(attr_str(f, "ids_json"))
    symbols = {"N": len(ids), "U": int(f.attrs["uv_rows"]), "V": int(f.attrs["uv_cols"])}
    for path, spec in schema["datasets"].items():
        if not spec.get("required", True) and path not in f:
            continue
        check(path in f, f"ground truth: dataset {path} missing")
        if path in f:
            want = dims_of(spec["shape"], symbols)
            check(list(f[path].shape) == want, f"ground truth: {path} shape {list(f[path].shape)} != {want}")
    a = f["albedo_uv"][()]
    check(a.min() >= 0 and a.max() <= 1, "ground truth: albedo outside [0, 1]")
    print(f"ground truth ok: {len(ids)} images")


def main():
    schemas, shard, manifest, model, gt = sys.argv[1:6]
    for step in (lambda: check_shard(f"{schemas}/shard.schema.json", shard, manifest),
                 lambda: check_model(model),
                 lambda: check_ground_truth(f"{schemas}/ground_truth.schema.json", gt)):
        try:
            step()
        except Exception as e:  # a reader error is a failure, not a crash
            failures.append(f"{type(e).__name__}: {e}")
    for what in failures:
        print("FAIL", what)
    print(f"{'0' if not failures else len(failures)} failures")
    sys.exit(1 if failures else 0)


main()

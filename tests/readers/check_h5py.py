#!/usr/bin/env python3
"""Independent reader check: h5py (not facebatch's own HDF5 code) reads a fit
shard, a model file and a synthetic ground-truth file, and checks them against
the machine-readable schemas in schemas/*.schema.json.

usage: check_h5py.py SCHEMAS_DIR SHARD.h5 MANIFEST.jsonl MODEL.h5 GROUND_TRUTH.h5
       check_h5py.py --merged SCHEMAS_DIR MERGED.h5 MANIFEST.jsonl SHARD.h5...
(--merged: a `facebatch merge` file of every shard: the shard schema, virtual
datasets with relative source paths, content = the shards concatenated in order)
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
        if spec.get("per_image", True) and ds.is_virtual:
            # A merged file (schemas/merge.md): virtual rows from shard files named relative to it.
            for src in ds.virtual_sources():
                check(not src.file_name.startswith("/"), f"merged: {path} source {src.file_name} is not relative")
        elif spec.get("per_image", True):
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
    version = int(f.attrs["version"])
    check(version in schema["root_attributes"]["version"]["enum"], f"ground truth: version {version}")
    ids = json.loads(attr_str(f, "ids_json"))
    symbols = {"N": len(ids), "U": int(f.attrs["uv_rows"]), "V": int(f.attrs["uv_cols"])}
    for path, spec in schema["datasets"].items():
        if not spec.get("required", True) and path not in f:
            check(version < spec.get("since_version", 1), f"ground truth: {path} missing in a version {version} file")
            continue
        check(path in f, f"ground truth: dataset {path} missing")
        if path in f:
            want = dims_of(spec["shape"], symbols)
            check(list(f[path].shape) == want, f"ground truth: {path} shape {list(f[path].shape)} != {want}")
    a = f["albedo_uv"][()]
    check(a.min() >= 0 and a.max() <= 1, "ground truth: albedo outside [0, 1]")
    print(f"ground truth ok: {len(ids)} images")


def check_merged(merged_path, shard_paths):
    m = h5py.File(merged_path, "r")
    shards = [h5py.File(p, "r") for p in shard_paths]
    check(int(m.attrs["merged_version"]) == 1, "merged: merged_version")
    check(int(m.attrs["merged_num_shards"]) == len(shards), "merged: merged_num_shards")
    check(attr_str(m, "merged_missing") == "", "merged: merged_missing not empty")
    n = 0

    def visit(name, obj):
        nonlocal n
        if not isinstance(obj, h5py.Dataset) or name.startswith("topology"):
            return
        want = np.concatenate([s[name][()] for s in shards], axis=0)
        got = obj[()]
        check(got.shape == want.shape, f"merged: {name} shape {got.shape} != {want.shape}")
        if got.shape == want.shape:
            if got.dtype.kind == "f":
                check(np.array_equal(got, want, equal_nan=True), f"merged: {name} differs from the shards")
            else:
                check(np.array_equal(got, want), f"merged: {name} differs from the shards")
        n += 1

    m.visititems(visit)
    for name in ("topology/triangles", "topology/vertex_uv", "topology/mask"):
        check(np.array_equal(m[name][()], shards[0][name][()]), f"merged: {name} differs")
    check(n > 20, f"merged: only {n} per-image datasets")
    print(f"merged ok: {int(m.attrs['num_images'])} images, {n} datasets = the {len(shards)} shards concatenated")


def main():
    if sys.argv[1] == "--merged":
        schemas, merged, manifest = sys.argv[2:5]
        for step in (lambda: check_shard(f"{schemas}/shard.schema.json", merged, manifest),
                     lambda: check_merged(merged, sys.argv[5:])):
            try:
                step()
            except Exception as e:
                failures.append(f"{type(e).__name__}: {e}")
        for what in failures:
            print("FAIL", what)
        print(f"{'0' if not failures else len(failures)} failures")
        sys.exit(1 if failures else 0)
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

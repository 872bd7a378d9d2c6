#!/usr/bin/env python3
"""Converts MediaPipe's canonical face model into samples/template/canonical_face.obj.

Inputs (unpacked npm tarballs, see scripts/import-template.sh):
  --mediapipe DIR  package/ of @mediapipe/face_mesh@0.4.1657299874 (Apache-2.0)
  --human DIR      package/ of @vladmandic/human@3.3.6 (MIT), for VTX68
Python 3 standard library only; the protobuf wire format is decoded here.

Conversion (documented in docs/render.md, "Template"):
  1. geometry_pipeline_metadata_landmarks.binarypb = bytes [start, end) of
     face_mesh_solution_packed_assets.data (offsets read from the loader .js);
     field 1 = canonical_mesh (Mesh3d): field 3 vertex_buffer (float, 468 x
     (x, y, z, u, v)), field 4 index_buffer (uint32, 898 x 3).
  2. Mirror pairs from the 3D positions (x -> -x; exact in the source).
  3. UVs made exactly left-right symmetric (u' = 0.5 + (u - u_mirror) / 2,
     v' = (v + v_mirror) / 2), flipped to v-up (OBJ), then scaled about the
     centre so they span [MARGIN, 1 - MARGIN] in u and v.
  4. Positions kept as given (centimetres; x right, y up, z towards the camera).
"""
import argparse
import math
import re
import struct
import sys

MARGIN = 0.01


def varint(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


def fields(b):
    """Decodes one protobuf message into (field, wire_type, value) triples."""
    i, out = 0, []
    while i < len(b):
        key, i = varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = varint(b, i)
        elif w == 1:
            v, i = b[i:i + 8], i + 8
        elif w == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif w == 5:
            v, i = b[i:i + 4], i + 4
        else:
            sys.exit(f"unsupported protobuf wire type {w}")
        out.append((f, w, v))
    return out


def packed_or_repeated(entries, wire_float):
    vals = []
    for _, w, v in entries:
        if wire_float:
            if w == 5:
                vals.append(struct.unpack('<f', v)[0])
            else:  # packed
                vals.extend(struct.unpack(f'<{len(v) // 4}f', v))
        else:
            if w == 0:
                vals.append(v)
            else:
                j = 0
                while j < len(v):
                    x, j = varint(v, j)
                    vals.append(x)
    return vals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--mediapipe', required=True)
    ap.add_argument('--human', required=True)
    ap.add_argument('--out', required=True)
    a = ap.parse_args()

    loader = open(f'{a.mediapipe}/face_mesh_solution_packed_assets_loader.js').read()
    m = re.search(r'"filename":\s*"[^"]*geometry_pipeline_metadata_landmarks\.binarypb",\s*"start":\s*(\d+),\s*"end":\s*(\d+)', loader)
    if not m:
        sys.exit('geometry_pipeline_metadata_landmarks.binarypb not found in the loader')
    start, end = int(m.group(1)), int(m.group(2))
    data = open(f'{a.mediapipe}/face_mesh_solution_packed_assets.data', 'rb').read()[start:end]
    top = [e for e in fields(data) if e[0] == 1]
    if len(top) != 1:
        sys.exit('expected one canonical_mesh (field 1)')
    mesh = fields(top[0][2])
    vb = packed_or_repeated([e for e in mesh if e[0] == 3], True)
    ib = packed_or_repeated([e for e in mesh if e[0] == 4], False)
    if len(vb) != 468 * 5 or len(ib) != 898 * 3:
        sys.exit(f'unexpected sizes: {len(vb)} floats, {len(ib)} indices')
    n = 468
    P = [vb[5 * k:5 * k + 3] for k in range(n)]
    UV = [vb[5 * k + 3:5 * k + 5] for k in range(n)]
    T = [ib[3 * k:3 * k + 3] for k in range(898)]

    mirror = []
    worst = 0.0
    for k in range(n):
        x, y, z = P[k]
        best, bd = -1, 1e30
        for j in range(n):
            d = (P[j][0] + x) ** 2 + (P[j][1] - y) ** 2 + (P[j][2] - z) ** 2
            if d < bd:
                best, bd = j, d
        mirror.append(best)
        worst = max(worst, math.sqrt(bd))
    if worst > 1e-4 or any(mirror[mirror[k]] != k for k in range(n)):
        sys.exit(f'positions are not mirror symmetric (worst {worst})')
    du = max(abs((UV[k][0] + UV[mirror[k]][0]) / 2 - 0.5) for k in range(n))
    dv = max(abs(UV[k][1] - UV[mirror[k]][1]) for k in range(n))
    print(f'raw UV asymmetry: max |(u + u_mirror)/2 - 0.5| = {du:.6f}, max |v - v_mirror| = {dv:.6f}')

    us = [0.5 + (UV[k][0] - UV[mirror[k]][0]) / 2 for k in range(n)]
    vs = [1.0 - (UV[k][1] + UV[mirror[k]][1]) / 2 for k in range(n)]  # v up
    hu = max(abs(u - 0.5) for u in us)
    vmin, vmax = min(vs), max(vs)
    su = (0.5 - MARGIN) / hu
    sv = (1 - 2 * MARGIN) / (vmax - vmin)
    us = [0.5 + (u - 0.5) * su for u in us]
    vs = [MARGIN + (v - vmin) * sv for v in vs]

    src = open(f'{a.human}/src/face/facemeshcoords.ts').read()
    m = re.search(r'export const VTX68[^=]*=\s*\[(.*?)\];', src, re.S)
    if not m:
        sys.exit('VTX68 not found')
    vtx68 = [int(t) for t in re.findall(r'\b\d+\b', re.sub(r'/\*.*?\*/', '', m.group(1), flags=re.S))]
    if len(vtx68) != 68:
        sys.exit(f'VTX68 has {len(vtx68)} entries')

    with open(a.out, 'w') as f:
        f.write('# facebatch default face template: MediaPipe canonical face model, converted by\n')
        f.write('# scripts/import-template.sh (do not edit). Format: docs/render.md "Template".\n')
        f.write('# Source: @mediapipe/face_mesh@0.4.1657299874, geometry_pipeline_metadata_landmarks.binarypb\n')
        f.write('#   Copyright Google LLC. Licensed under the Apache License, Version 2.0 (LICENSE-APACHE-2.0).\n')
        f.write('#   Modified: UVs symmetrised, v flipped to point up, UVs rescaled to [0.01, 0.99].\n')
        f.write('# Landmarks: VTX68 from @vladmandic/human@3.3.6 src/face/facemeshcoords.ts\n')
        f.write('#   Copyright (c) Vladimir Mandic. MIT License (LICENSE-MIT).\n')
        f.write('# facebatch-template 1\n')
        f.write('# units cm; x right, y up, z towards the camera\n')
        f.write('# landmarks68 ' + ' '.join(str(i) for i in vtx68) + '\n')
        f.write('# mirror ' + ' '.join(str(i) for i in mirror) + '\n')
        for p in P:
            f.write('v %.6f %.6f %.6f\n' % tuple(p))
        for u, v in zip(us, vs):
            f.write('vt %.6f %.6f\n' % (u, v))
        for t in T:
            f.write('f %d/%d %d/%d %d/%d\n' % (t[0] + 1, t[0] + 1, t[1] + 1, t[1] + 1, t[2] + 1, t[2] + 1))
    print(f'wrote {a.out}: {n} vertices, {len(T)} triangles, 68 landmarks')


if __name__ == '__main__':
    main()

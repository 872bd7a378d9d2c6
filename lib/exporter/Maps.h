#pragma once
// UV-map export (`facebatch export maps`): 16-bit PNG with the value range
// recorded, or 32-bit float OpenEXR, and the SH shading map.
//
// 16-bit PNG encoding (docs/export.md "Maps"): an RGBA 16-bit PNG of V x U
// pixels (texel row r = UV row r, row 0 at the top, as the texture PNGs of
// Mesh.h). Channel c (x, y, z of shape maps; R, G, B of albedo maps, LINEAR,
// not sRGB: these are data) stores q = round((value - min_c) / (max_c - min_c) * 65535)
// where [min_c, max_c] is the channel's range over the face mask; alpha is
// 65535 inside the mask, 0 outside (colour 0 there). Decoding:
// value = min_c + q / 65535 * (max_c - min_c) (error <= (max_c - min_c) / 131070).
// The ranges are in export.json and in a PNG tEXt chunk with keyword
// "facebatch" holding JSON {"format": "facebatch-map", "schema_version": 1,
// "map": name, "min": [..], "max": [..]}. A constant channel has min = max (q = 0).
// EXR: float32 RGBA (A = mask), the raw values (OpenCV's OpenEXR codec).
#include <ATen/Tensor.h>

#include <array>
#include <string>
#include <vector>

#include "render/Topology.h"

namespace facebatch::exporter {

using ChannelRanges = std::vector<std::array<double, 2>>;  ///< per channel [min, max]

/// Writes map [3, U, V] float with mask [U, V] bool; returns the channel ranges.
ChannelRanges WriteMapPng16(const std::string& path, const std::string& name, const at::Tensor& map,
                            const at::Tensor& mask);

struct DecodedMap {
  std::string name;
  at::Tensor map;   ///< [3, U, V] float32 (0 outside the mask)
  at::Tensor mask;  ///< [U, V] bool (alpha)
  ChannelRanges ranges;
};
/// Reads a map written by WriteMapPng16 (range from its tEXt chunk); InputError naming the file.
DecodedMap ReadMapPng16(const std::string& path);

/// Writes map [3, U, V] as float32 RGBA OpenEXR (A = mask). Throws UsageError
/// when this OpenCV build cannot write EXR.
void WriteMapExr(const std::string& path, const at::Tensor& map, const at::Tensor& mask);

/// SH shading (eq. 3's lighting, render::SHShading) of the shape map's
/// vertex normals rotated into the view frame by render::ViewRotation(M):
/// shape_map [3, U, V], M [2, 4], L [27] -> [3, U, V] (0 outside the mask).
at::Tensor ShadingMap(const render::FaceTopology& topology, const at::Tensor& shape_map, const at::Tensor& M,
                      const at::Tensor& L);

}  // namespace facebatch::exporter

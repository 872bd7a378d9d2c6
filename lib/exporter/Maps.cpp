#include "exporter/Maps.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/Error.h"
#include "render/Lighting.h"
#include "render/Projection.h"

namespace facebatch::exporter {
namespace {

uint32_t Get32(const std::string& s, size_t at) {
  return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
         (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}
void Put32(std::string& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
}

std::string ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "cannot open");
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Inserts a tEXt chunk right after IHDR (PNG spec: tEXt may appear anywhere before IEND).
// Kept by hand (issue 17): OpenCV encodes the 16-bit pixels but cannot write text chunks, and
// one chunk (length, type, data, zlib's CRC-32) is less code than a second PNG library.
std::string WithTextChunk(const std::string& png, const std::string& path, const std::string& keyword,
                          const std::string& text) {
  if (png.size() < 33 || png.compare(12, 4, "IHDR") != 0) throw InputError(path, "OpenCV wrote no PNG header");
  const size_t after_ihdr = 8 + 12 + Get32(png, 8);
  std::string data = keyword;
  data.push_back('\0');
  data += text;
  std::string chunk;
  Put32(chunk, static_cast<uint32_t>(data.size()));
  chunk += "tEXt" + data;
  Put32(chunk, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(chunk.data() + 4),
                                           static_cast<uInt>(chunk.size() - 4))));
  return png.substr(0, after_ihdr) + chunk + png.substr(after_ihdr);
}

std::string FindText(const std::string& png, const std::string& keyword) {
  size_t at = 8;
  while (at + 12 <= png.size()) {
    const uint32_t len = Get32(png, at);
    const std::string type = png.substr(at + 4, 4);
    if (at + 12 + len > png.size()) break;
    if (type == "tEXt") {
      const std::string data = png.substr(at + 8, len);
      const size_t z = data.find('\0');
      if (z != std::string::npos && data.substr(0, z) == keyword) return data.substr(z + 1);
    }
    if (type == "IEND") break;
    at += 12 + len;
  }
  return {};
}

// [3, U, V] float tensor + mask -> 4-channel OpenCV image (BGRA order) of `depth`.
cv::Mat ToBgra(const at::Tensor& chw, const at::Tensor& alpha, int cv_type) {
  auto hwc = torch::cat({chw.flip(0), alpha.unsqueeze(0)}, 0).permute({1, 2, 0}).contiguous();
  const int U = static_cast<int>(hwc.size(0)), V = static_cast<int>(hwc.size(1));
  if (cv_type == CV_16UC4) {
    auto q = hwc.round().clamp(0, 65535).to(torch::kInt32).contiguous();
    cv::Mat m(U, V, CV_16UC4);
    const int32_t* src = q.data_ptr<int32_t>();
    for (int r = 0; r < U; ++r) {
      auto* row = m.ptr<uint16_t>(r);
      for (int k = 0; k < 4 * V; ++k) row[k] = static_cast<uint16_t>(src[int64_t(r) * 4 * V + k]);
    }
    return m;
  }
  cv::Mat m(U, V, CV_32FC4);
  std::memcpy(m.data, hwc.to(torch::kFloat).contiguous().data_ptr<float>(), sizeof(float) * 4 * U * V);
  return m;
}

}  // namespace

ChannelRanges WriteMapPng16(const std::string& path, const std::string& name, const at::Tensor& map_in,
                            const at::Tensor& mask) {
  auto map = map_in.to(torch::kDouble);
  auto m = mask.to(torch::kBool);
  if (map.dim() != 3 || map.size(1) != m.size(0) || map.size(2) != m.size(1))
    throw Error("exporter::WriteMapPng16: map must be [C, U, V] with the mask's U x V");
  const int64_t C = map.size(0);
  ChannelRanges ranges;
  auto q = torch::zeros_like(map);
  for (int64_t c = 0; c < C; ++c) {
    auto vals = map[c].masked_select(m);
    if (vals.numel() == 0 || !torch::isfinite(vals).all().item<bool>())
      throw Error(fmt::format("map {} has non-finite values inside the face mask", name));
    const double lo = vals.min().item<double>(), hi = vals.max().item<double>();
    ranges.push_back({lo, hi});
    if (hi > lo) q[c] = (map[c] - lo) / (hi - lo) * 65535.0;
  }
  q = torch::where(m.unsqueeze(0), q, torch::zeros_like(q));
  cv::Mat img = ToBgra(q, m.to(torch::kDouble) * 65535.0, CV_16UC4);
  std::vector<uchar> buf;
  if (!cv::imencode(".png", img, buf)) throw InputError(path, "OpenCV could not encode the 16-bit PNG");
  nlohmann::json meta = {{"format", "facebatch-map"}, {"schema_version", 1}, {"map", name},
                         {"min", nlohmann::json::array()}, {"max", nlohmann::json::array()}};
  for (const auto& r : ranges) meta["min"].push_back(r[0]), meta["max"].push_back(r[1]);
  const std::string png = WithTextChunk(std::string(buf.begin(), buf.end()), path, "facebatch", meta.dump());
  std::ofstream f(path, std::ios::binary);
  f.write(png.data(), static_cast<std::streamsize>(png.size()));
  if (!f) throw InputError(path, "cannot write");
  return ranges;
}

DecodedMap ReadMapPng16(const std::string& path) {
  const std::string bytes = ReadBytes(path);
  const std::string text = FindText(bytes, "facebatch");
  if (text.empty()) throw InputError(path, "no facebatch tEXt chunk (not a map written by `facebatch export maps`)");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw InputError(path, std::string("bad facebatch tEXt chunk: ") + e.what());
  }
  if (meta.value("format", "") != "facebatch-map" || meta.value("schema_version", 0) != 1)
    throw InputError(path, "facebatch tEXt chunk of an unknown format or schema version");
  cv::Mat img = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data())),
                             cv::IMREAD_UNCHANGED);
  if (img.empty() || img.type() != CV_16UC4) throw InputError(path, "not a 16-bit RGBA PNG");
  DecodedMap d;
  d.name = meta.value("map", "");
  const int U = img.rows, V = img.cols;
  auto t = torch::empty({U, V, 4}, torch::kFloat);
  float* dst = t.data_ptr<float>();
  for (int r = 0; r < U; ++r) {
    const auto* row = img.ptr<uint16_t>(r);
    for (int k = 0; k < 4 * V; ++k) dst[int64_t(r) * 4 * V + k] = row[k];
  }
  t = t.permute({2, 0, 1});  // B, G, R, A
  d.mask = t[3] > 32767;
  const auto& mins = meta.at("min");
  const auto& maxs = meta.at("max");
  if (mins.size() != 3 || maxs.size() != 3) throw InputError(path, "facebatch tEXt chunk needs 3 channel ranges");
  d.map = torch::zeros({3, U, V}, torch::kFloat);
  for (int c = 0; c < 3; ++c) {
    const double lo = mins[c].get<double>(), hi = maxs[c].get<double>();
    d.ranges.push_back({lo, hi});
    d.map[c] = torch::where(d.mask, t[2 - c].to(torch::kDouble) / 65535.0 * (hi - lo) + lo, torch::zeros({}, torch::kDouble))
                   .to(torch::kFloat);
  }
  return d;
}

void WriteMapExr(const std::string& path, const at::Tensor& map, const at::Tensor& mask) {
  if (!cv::haveImageWriter(".exr"))
    throw UsageError("this OpenCV build cannot write OpenEXR (use --map-format png16)");
  cv::Mat img = ToBgra(map.to(torch::kFloat), mask.to(torch::kFloat), CV_32FC4);
  std::vector<int> params = {cv::IMWRITE_EXR_TYPE, cv::IMWRITE_EXR_TYPE_FLOAT};
  bool ok = false;
  try {
    ok = cv::imwrite(path, img, params);
  } catch (const cv::Exception& e) {
    throw InputError(path, std::string("OpenCV could not write the EXR file: ") + e.what());
  }
  if (!ok) throw InputError(path, "OpenCV could not write the EXR file");
}

at::Tensor ShadingMap(const render::FaceTopology& topology, const at::Tensor& shape_map, const at::Tensor& M,
                      const at::Tensor& L) {
  auto verts = render::VerticesFromUVMap(topology, shape_map.to(torch::kFloat).unsqueeze(0));  // [1, N, 3]
  auto normals = render::VertexNormals(topology, verts);                                       // model frame
  auto R = render::ViewRotation(M.to(torch::kFloat).view({1, 2, 4}));                          // [1, 3, 3]
  auto view_normals = normals.matmul(R.transpose(1, 2));
  auto shading = render::SHShading(view_normals, L.to(torch::kFloat).view({1, 27}));           // [1, N, 3]
  return render::UVMapFromVertices(topology, shading)[0];
}

}  // namespace facebatch::exporter

#include "render/Png.h"

#include "render/Colour.h"

#include <torch/torch.h>
#include <zlib.h>

#include <fstream>
#include <vector>

#include "core/Error.h"

namespace facebatch::render {

namespace {

void Put32(std::vector<unsigned char>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}

void Chunk(std::vector<unsigned char>& out, const char* type, const std::vector<unsigned char>& data) {
  Put32(out, static_cast<uint32_t>(data.size()));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  Put32(out, static_cast<uint32_t>(crc32(0, out.data() + start, static_cast<uInt>(out.size() - start))));
}

}  // namespace

void WritePng(const std::string& path, const at::Tensor& image_in, bool srgb) {
  if (!image_in.defined() || image_in.dim() != 3 || image_in.size(0) != 3)
    throw Error("render::WritePng: image must be [3, H, W]");
  auto img = image_in.detach().to(at::kCPU, at::kFloat).clamp(0, 1);
  if (srgb) img = LinearToSrgb(img);
  auto bytes = (img * 255 + 0.5).clamp(0, 255).to(at::kByte).permute({1, 2, 0}).contiguous();
  const int64_t H = bytes.size(0), W = bytes.size(1);
  std::vector<unsigned char> raw;
  raw.reserve(static_cast<size_t>(H * (3 * W + 1)));
  const unsigned char* p = bytes.data_ptr<unsigned char>();
  for (int64_t r = 0; r < H; ++r) {
    raw.push_back(0);  // filter: none
    raw.insert(raw.end(), p + r * 3 * W, p + (r + 1) * 3 * W);
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::vector<unsigned char> z(zlen);
  if (compress2(z.data(), &zlen, raw.data(), static_cast<uLong>(raw.size()), 9) != Z_OK)
    throw InputError(path, "PNG compression failed");
  z.resize(zlen);
  std::vector<unsigned char> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<unsigned char> ihdr;
  Put32(ihdr, static_cast<uint32_t>(W));
  Put32(ihdr, static_cast<uint32_t>(H));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit, RGB
  Chunk(out, "IHDR", ihdr);
  Chunk(out, "IDAT", z);
  Chunk(out, "IEND", {});
  std::ofstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "cannot write PNG");
  f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
  if (!f) throw InputError(path, "write failed");
}

}  // namespace facebatch::render

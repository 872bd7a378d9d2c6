#include "io/Image.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>
#include <vector>

#include "core/Colour.h"
#include "core/Error.h"
#include "io/Item.h"

namespace facebatch::io {
namespace {

uint32_t Be16(const unsigned char* p) { return (uint32_t(p[0]) << 8) | p[1]; }
uint32_t Be32(const unsigned char* p) { return (Be16(p) << 16) | Be16(p + 2); }

std::optional<ImageHeader> PeekJpeg(std::ifstream& in) {
  // Walk the JPEG markers to the first SOFn segment (height, width at offsets 3, 5).
  unsigned char b[9];
  in.seekg(2);
  for (int guard = 0; guard < 1000; ++guard) {
    if (!in.read(reinterpret_cast<char*>(b), 2)) return std::nullopt;
    if (b[0] != 0xFF) return std::nullopt;
    unsigned char marker = b[1];
    while (marker == 0xFF) {
      if (!in.read(reinterpret_cast<char*>(&marker), 1)) return std::nullopt;
    }
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) continue;
    if (!in.read(reinterpret_cast<char*>(b), 2)) return std::nullopt;
    uint32_t len = Be16(b);
    if (len < 2) return std::nullopt;
    bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (!in.read(reinterpret_cast<char*>(b), 5)) return std::nullopt;
      return ImageHeader{static_cast<int>(Be16(b + 3)), static_cast<int>(Be16(b + 1))};
    }
    in.seekg(len - 2, std::ios::cur);
  }
  return std::nullopt;
}

}  // namespace

std::optional<ImageHeader> PeekImageHeader(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  unsigned char h[26] = {};
  in.read(reinterpret_cast<char*>(h), sizeof h);
  size_t n = static_cast<size_t>(in.gcount());
  in.clear();
  if (n >= 24 && h[0] == 0x89 && h[1] == 'P' && h[2] == 'N' && h[3] == 'G')
    return ImageHeader{static_cast<int>(Be32(h + 16)), static_cast<int>(Be32(h + 20))};
  if (n >= 4 && h[0] == 0xFF && h[1] == 0xD8) return PeekJpeg(in);
  if (n >= 26 && h[0] == 'B' && h[1] == 'M') {
    auto le32 = [&](int o) {
      return int32_t(uint32_t(h[o]) | uint32_t(h[o + 1]) << 8 | uint32_t(h[o + 2]) << 16 |
                     uint32_t(h[o + 3]) << 24);
    };
    int32_t w = le32(18), hh = le32(22);
    return ImageHeader{w, hh < 0 ? -hh : hh};
  }
  return std::nullopt;
}

cv::Mat LoadImageBgr(const std::string& path, int64_t max_pixels) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw ItemError(reason::kMissingImage, path, "image file is missing");
  if (auto hdr = PeekImageHeader(path)) {
    int64_t pixels = int64_t(hdr->width) * int64_t(hdr->height);
    if (pixels > max_pixels)
      throw ItemError(reason::kImageTooLarge, path,
                      "image is " + std::to_string(hdr->width) + "x" + std::to_string(hdr->height) +
                          " pixels, more than the limit of " + std::to_string(max_pixels) +
                          " (--max-pixels)");
  }
  cv::Mat img;
  try {
    img = cv::imread(path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw ItemError(reason::kCorruptImage, path, std::string("cannot decode the image: ") + e.what());
  }
  if (img.empty()) throw ItemError(reason::kCorruptImage, path, "cannot decode the image (corrupt or unsupported format)");
  if (int64_t(img.cols) * img.rows > max_pixels)
    throw ItemError(reason::kImageTooLarge, path,
                    "image is " + std::to_string(img.cols) + "x" + std::to_string(img.rows) +
                        " pixels, more than the limit of " + std::to_string(max_pixels) + " (--max-pixels)");
  if (img.depth() == CV_16U) {
    img.convertTo(img, CV_8U, 1.0 / 257.0);
  } else if (img.depth() == CV_32F || img.depth() == CV_64F) {
    img.convertTo(img, CV_8U, 255.0);
  } else if (img.depth() != CV_8U) {
    throw ItemError(reason::kCorruptImage, path, "unsupported pixel depth");
  }
  cv::Mat out;
  switch (img.channels()) {
    case 1: cv::cvtColor(img, out, cv::COLOR_GRAY2BGR); break;
    case 3: out = img; break;
    case 4: {
      std::vector<cv::Mat> ch;
      cv::split(img, ch);
      cv::Mat alpha;
      ch[3].convertTo(alpha, CV_32F, 1.0 / 255.0);
      for (int c = 0; c < 3; ++c) {
        cv::Mat f;
        ch[c].convertTo(f, CV_32F);
        f = f.mul(alpha);
        f.convertTo(ch[c], CV_8U);
      }
      ch.pop_back();
      cv::merge(ch, out);
      break;
    }
    default:
      throw ItemError(reason::kCorruptImage, path, "unsupported channel count " + std::to_string(img.channels()));
  }
  return out;
}

cv::Mat BgrToLinearRgb(const cv::Mat& bgr) {
  if (bgr.type() != CV_8UC3) throw Error("BgrToLinearRgb: need an 8-bit 3-channel image");
  static const cv::Mat lut = [] {
    cv::Mat t(1, 256, CV_32F);
    for (int i = 0; i < 256; ++i) t.at<float>(i) = static_cast<float>(SrgbToLinear(i / 255.0));
    return t;
  }();
  cv::Mat rgb, f;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  cv::LUT(rgb, lut, f);  // one table for all channels; the result has the table's depth (float32)
  return f;
}

}  // namespace facebatch::io

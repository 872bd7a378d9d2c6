#pragma once
// Image loading and validation (OpenCV). Every loaded image is 8-bit, 3-channel
// BGR (OpenCV order): grayscale is replicated, 16-bit is scaled to 8-bit (/257),
// alpha is dropped (composited on black). Images larger than a pixel limit are
// refused from the file header, before decoding (bounded memory).
#include <opencv2/core.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "core/Error.h"

namespace facebatch::io {

/// An InputError with a machine-readable reason code (io::reason::k*), so that a
/// batch can record `status = failed, reason_code, reason = what()`.
class ItemError : public InputError {
 public:
  ItemError(std::string code, const std::string& path, const std::string& problem)
      : InputError(path, problem), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

/// Default limit of --max-pixels: 100 megapixels (a 10000 x 10000 image).
inline constexpr int64_t kDefaultMaxPixels = 100'000'000;

struct ImageHeader {
  int width = 0, height = 0;
};

/// Width and height from a PNG/JPEG/BMP header without decoding; nullopt for
/// other formats or unreadable headers.
std::optional<ImageHeader> PeekImageHeader(const std::string& path);

/// Loads an image as 8-bit BGR. Throws ItemError: kMissingImage (no file),
/// kCorruptImage (cannot be decoded), kImageTooLarge (width*height > max_pixels).
cv::Mat LoadImageBgr(const std::string& path, int64_t max_pixels = kDefaultMaxPixels);

/// 8-bit sRGB-encoded BGR -> float32 LINEAR RGB in [0, 1], the model's input
/// convention (core/Colour.h): renders are linear, so pixels are decoded before
/// they are compared with them.
cv::Mat BgrToLinearRgb(const cv::Mat& bgr);

}  // namespace facebatch::io

#pragma once
// The sRGB transfer function (IEC 61966-2-1), scalar form.
//
// facebatch's colour convention (README "Colour"): albedo, shading and every
// render are LINEAR RGB in [0, 1] (eq. 2 multiplies albedo by SH shading, which is
// only physical in linear light). Image files are sRGB-encoded: pixels are decoded
// to linear when they enter the model (io::BgrToLinearRgb), and renders, textures
// and pictures are encoded back to sRGB when they are written. The Table 1 metric
// is measured on the sRGB values, i.e. on the images' own [0, 1] pixel values
// (fit::ImageL21).
#include <algorithm>
#include <cmath>

namespace facebatch {

/// sRGB-encoded value in [0, 1] -> linear value in [0, 1].
inline double SrgbToLinear(double v) {
  v = std::clamp(v, 0.0, 1.0);
  return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
}

/// Linear value (clamped to [0, 1]) -> sRGB-encoded value in [0, 1].
inline double LinearToSrgb(double v) {
  v = std::clamp(v, 0.0, 1.0);
  return v <= 0.0031308 ? 12.92 * v : 1.055 * std::pow(v, 1 / 2.4) - 0.055;
}

}  // namespace facebatch

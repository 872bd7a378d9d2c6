#pragma once
// Small sample corpora in the real layouts (300W-LP, AFLW2000-3D, CelebA, folder),
// written by facebatch itself: `facebatch make-samples --out DIR --seed S`.
// Images are simple drawn faces (skin ellipse, eyes, brows, nose, mouth placed at
// the landmark positions); .mat files are MAT v5 with zlib-compressed variables of
// the classes the real corpora use. A later issue swaps the drawing for rendered
// synthetic faces through the same writers.
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "io/Item.h"

namespace facebatch::io {

/// A drawn face-like image (8-bit BGR, w x h) with its features at `lm68`.
cv::Mat DrawFace(int width, int height, const std::vector<Point2>& lm68, std::mt19937_64& rng,
                 const cv::Mat& background = cv::Mat());

/// 68 landmarks of a random face pose: CanonicalFace68() under a similarity with
/// the face about `face_width` pixels wide, roll in +-0.25 rad, a yaw-like squeeze
/// and centre near (cx, cy). `yaw` (radians, |yaw| < 0.6) is returned.
std::vector<Point2> RandomFace68(double cx, double cy, double face_width, std::mt19937_64& rng,
                                 double* roll = nullptr, double* yaw = nullptr);

/// Mirrors 68 landmarks for an image flipped left-right (x -> width-1-x, iBUG partners swapped).
std::vector<Point2> FlipLandmarks68(const std::vector<Point2>& lm, int width);

struct SampleOptions {
  std::string out;        ///< --out DIR (required): writes DIR/{300W-LP,AFLW2000,CelebA,folder}
  uint64_t seed = 1;      ///< --seed: the same seed gives the same files
  std::string corpora = "all";  ///< --corpora all|300w-lp|aflw2000|celeba|folder (comma list)
  void Check() const;
};

struct SampleSummary {
  std::map<std::string, int> images;  ///< images written per corpus directory
  std::string ToString() const;
};

SampleSummary MakeSamples(const SampleOptions& options);

/// Individual writers (root = the corpus directory itself).
int Write300wLpSample(const std::string& root, std::mt19937_64& rng);
int WriteAflw2000Sample(const std::string& root, std::mt19937_64& rng);
int WriteCelebaSample(const std::string& root, std::mt19937_64& rng);
int WriteFolderSample(const std::string& root, std::mt19937_64& rng);

}  // namespace facebatch::io

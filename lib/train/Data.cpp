#include "train/Data.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <opencv2/imgproc.hpp>

#include "core/Error.h"
#include "core/Log.h"
#include "io/Image.h"
#include "metrics/Metrics.h"

namespace facebatch::train {
namespace {

namespace fs = std::filesystem;

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A uniform draw in [-1, 1) from a splitmix64 state.
double Symmetric(uint64_t& state) { return static_cast<double>(SplitMix64(state) >> 11) * 0x1.0p-52 - 1.0; }

}  // namespace

void Augmentation::Check() const {
  const std::initializer_list<std::pair<const char*, std::pair<double, double>>> limits = {
      {"shift", {shift, 0.5}}, {"scale", {scale, 0.5}}, {"rotation", {rotation, 90}}, {"gain", {gain, 0.9}}};
  for (const auto& [name, v] : limits)
    if (!(v.first >= 0 && v.first <= v.second))
      throw UsageError(std::string("--augment.") + name + " must be in [0, " + fmt::format("{:g}", v.second) + "]");
}

void Dataset::SetAugmentation(const Augmentation& augmentation, uint64_t seed) {
  augmentation.Check();
  augmentation_ = augmentation;
  augmentation_seed_ = seed;
}

at::Tensor ProjectionToCrop(const at::Tensor& M, const cv::Matx23d& T) {
  auto A = torch::tensor({T(0, 0), T(0, 1), T(1, 0), T(1, 1)}, torch::kDouble).view({2, 2});
  auto out = torch::matmul(A, M.to(torch::kDouble));
  out.index_put_({0, 3}, out.index({0, 3}) + T(0, 2));
  out.index_put_({1, 3}, out.index({1, 3}) + T(1, 2));
  return out.to(M.scalar_type());
}

Dataset::Dataset(const io::Manifest& manifest, std::vector<io::Item> items, int uv_rows, int uv_cols,
                 bool use_ground_truth, int image_size)
    : root_(manifest.header.root), uv_rows_(uv_rows), uv_cols_(uv_cols), image_size_(image_size) {
  io::LandmarkConvention conv = io::LandmarkConvention::kNone;
  for (auto& item : items) {
    if (!item.ok() || item.landmarks.empty()) continue;
    if (conv == io::LandmarkConvention::kNone) conv = item.landmarks.convention;
    if (item.landmarks.convention != conv)
      throw UsageError("train: the manifest mixes landmark conventions (" + std::string(io::ToString(conv)) +
                       " and " + io::ToString(item.landmarks.convention) + "); use one corpus per manifest");
    items_.push_back(std::move(item));
  }
  landmark_count_ = conv == io::LandmarkConvention::kFive ? 5 : 68;
  const std::string gt_path = (fs::path(root_) / kGroundTruthFileName).string();
  if (use_ground_truth && fs::exists(gt_path)) {
    gt_ = std::make_shared<GroundTruth>(synth::ReadGroundTruth(gt_path));
    gt_path_ = gt_path;
    if (gt_->uv_rows != uv_rows || gt_->uv_cols != uv_cols)
      throw InputError(gt_path, "ground-truth UV size " + std::to_string(gt_->uv_rows) + "x" +
                                    std::to_string(gt_->uv_cols) + " differs from the model's " +
                                    std::to_string(uv_rows) + "x" + std::to_string(uv_cols));
  }
}

Sample Dataset::Load(int64_t i, int64_t position) const {
  const io::Item& item = items_.at(static_cast<size_t>(i));
  Sample s;
  s.id = item.id;
  cv::Mat bgr = io::LoadImageBgr((fs::path(root_) / item.image).string());
  io::Crop crop = io::CropFace(bgr, item.landmarks, image_size_);
  const bool augment = augmentation_.enabled() && position >= 0;
  at::Tensor gains;  // [3] per-channel gains of the augmented image (and of L's channels)
  if (augment) {
    uint64_t state = augmentation_seed_ * 0x9e3779b97f4a7c15ull ^ (static_cast<uint64_t>(position) + 0x5851f42d4c957f2dull);
    const auto& a = augmentation_;
    const double S = image_size_, c = (S - 1) / 2;
    const double scale = 1 + a.scale * Symmetric(state), degrees = a.rotation * Symmetric(state);
    const double tx = a.shift * S * Symmetric(state), ty = a.shift * S * Symmetric(state);
    gains = torch::tensor({1 + a.gain * Symmetric(state), 1 + a.gain * Symmetric(state), 1 + a.gain * Symmetric(state)},
                          torch::kFloat);
    // J = s R(degrees) about the crop centre, then a translation; the crop becomes J T.
    // (OpenCV's angle turns the other way round: -degrees keeps the default model's draws.)
    cv::Matx23d J = cv::getRotationMatrix2D(cv::Point2f(float(c), float(c)), -degrees, scale);
    J(0, 2) += tx, J(1, 2) += ty;
    const cv::Matx23d& T = crop.original_to_crop;
    const cv::Matx23d JT = J * cv::Matx33d(T(0, 0), T(0, 1), T(0, 2), T(1, 0), T(1, 1), T(1, 2), 0, 0, 1);
    crop.original_to_crop = JT;
    crop.crop_to_original = io::InvertAffine(JT);
    cv::warpAffine(bgr, crop.image, cv::Mat(JT), cv::Size(image_size_, image_size_), cv::INTER_LINEAR,
                   cv::BORDER_CONSTANT, cv::Scalar::all(0));
    for (io::Point2& p : crop.landmarks.points) p = io::Apply(J, p);
  }
  cv::Mat rgb = io::BgrToLinearRgb(crop.image);
  if (!rgb.isContinuous()) rgb = rgb.clone();
  s.image = torch::from_blob(rgb.data, {image_size_, image_size_, 3}, torch::kFloat).permute({2, 0, 1}).clone();
  if (augment && augmentation_.gain > 0) s.image *= gains.view({3, 1, 1});
  std::vector<float> pts;
  for (const auto& p : crop.landmarks.points) pts.push_back(static_cast<float>(p.x)), pts.push_back(static_cast<float>(p.y));
  s.landmarks = torch::tensor(pts).view({-1, 2});
  const int64_t row = gt_ ? gt_->Find(item.id) : -1;
  s.has_ground_truth = row >= 0;
  if (row >= 0) {
    s.shape_uv = TargetShape(row);
    s.albedo_uv = gt_->albedo_uv[row];
    s.M = TargetProjection(row, crop.original_to_crop);
    s.L = gt_->L[row];
    if (augment && augmentation_.gain > 0) s.L = s.L * gains.repeat_interleave(9).to(s.L.scalar_type());
  } else {
    s.shape_uv = torch::zeros({3, uv_rows_, uv_cols_});
    s.albedo_uv = torch::zeros({3, uv_rows_, uv_cols_});
    s.M = torch::zeros({2, 4});
    s.L = torch::zeros({27});
  }
  return s;
}

void Dataset::NormaliseShapeTargets(const at::Tensor& reference_shape, const at::Tensor& mask) {
  if (!gt_) return;
  torch::NoGradGuard no_grad;
  const auto m = mask.to(torch::kCPU).to(torch::kBool).flatten();
  const auto idx = m.nonzero().squeeze(1);
  auto vertices = [&](const at::Tensor& maps) {  // [B, 3, U, V] -> [B, n, 3]
    return maps.to(torch::kCPU).flatten(2).index_select(2, idx).transpose(1, 2).to(torch::kDouble);
  };
  const auto ref = vertices(reference_shape.unsqueeze(0));
  const int64_t N = gt_->size();
  std::vector<at::Tensor> sc, rot, tr;
  for (int64_t b = 0; b < N; b += 256) {  // bounded memory for large corpora
    const int64_t e = std::min(N, b + 256);
    auto V = vertices(gt_->shape_uv.slice(0, b, e));
    auto T = metrics::EstimateSimilarity(V, ref.expand({e - b, -1, -1}));
    sc.push_back(T.scale), rot.push_back(T.rotation), tr.push_back(T.translation);
  }
  norm_scale_ = torch::cat(sc), norm_rotation_ = torch::cat(rot), norm_translation_ = torch::cat(tr);
  norm_mask_ = mask.to(torch::kCPU).to(torch::kBool);
  log::Info("train: shape targets similarity-normalised onto the mean shape (scale {:.3f} - {:.3f})",
            norm_scale_.min().item<double>(), norm_scale_.max().item<double>());
}

at::Tensor Dataset::TargetShape(int64_t row) const {
  const at::Tensor S = gt_->shape_uv[row];
  if (!norm_scale_.defined()) return S;
  const auto R = norm_rotation_[row], t = norm_translation_[row];
  const double s = norm_scale_[row].item<double>();
  // x' = s R x + t per pixel, on the masked pixels (0 elsewhere, as in the file).
  auto flat = S.to(torch::kDouble).reshape({3, -1});
  auto moved = s * R.matmul(flat) + t.unsqueeze(1);
  return torch::where(norm_mask_.flatten().unsqueeze(0), moved, torch::zeros_like(moved))
      .view_as(S)
      .to(S.scalar_type());
}

at::Tensor Dataset::TargetProjection(int64_t row, const cv::Matx23d& original_to_crop) const {
  at::Tensor M = ProjectionToCrop(gt_->M[row], original_to_crop);
  if (!norm_scale_.defined()) return M;
  // M S = A S + m with S = R^T (S' - t) / s: A' = A R^T / s, m' = m - A' t.
  const auto Md = M.to(torch::kDouble);
  const auto A = Md.slice(1, 0, 3).matmul(norm_rotation_[row].t()) / norm_scale_[row].item<double>();
  const auto m = Md.select(1, 3) - A.matmul(norm_translation_[row]);
  return torch::cat({A, m.unsqueeze(1)}, 1).to(M.scalar_type());
}

Batch Collate(const std::vector<Sample>& samples, int64_t step) {
  Batch b;
  b.step = step;
  std::vector<at::Tensor> im, lm, su, au, m, l;
  std::vector<float> has;
  for (const auto& s : samples) {
    b.ids.push_back(s.id);
    im.push_back(s.image), lm.push_back(s.landmarks), su.push_back(s.shape_uv), au.push_back(s.albedo_uv);
    m.push_back(s.M), l.push_back(s.L), has.push_back(s.has_ground_truth ? 1.f : 0.f);
  }
  b.images = torch::stack(im), b.landmarks = torch::stack(lm), b.shape_uv = torch::stack(su);
  b.albedo_uv = torch::stack(au), b.M = torch::stack(m), b.L = torch::stack(l);
  b.has_ground_truth = torch::tensor(has);
  return b;
}

std::vector<int64_t> EpochPermutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[static_cast<size_t>(i)] = i;
  uint64_t state = seed * 0x2545f4914f6cdd1dull + static_cast<uint64_t>(epoch) * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(SplitMix64(state) % static_cast<uint64_t>(i + 1));
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  return perm;
}

BatchStream::BatchStream(const Dataset& dataset, int64_t batch_size, uint64_t seed, int64_t start_step, int threads,
                         int prefetch)
    : dataset_(dataset), batch_size_(batch_size), seed_(seed), prefetch_(std::max(1, prefetch)),
      next_to_load_(start_step), next_to_return_(start_step) {
  if (dataset.size() == 0) throw UsageError("train: no usable items (status ok with landmarks) in the manifest");
  for (int t = 0; t < std::max(1, threads); ++t) workers_.emplace_back([this] { Worker(); });
}

BatchStream::~BatchStream() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) w.join();
}

std::vector<int64_t> BatchStream::Indices(int64_t step) const {
  std::vector<int64_t> out;
  const int64_t n = dataset_.size();
  int64_t cached_epoch = -1;
  std::vector<int64_t> perm;
  for (int64_t k = 0; k < batch_size_; ++k) {
    const int64_t p = step * batch_size_ + k;
    if (p / n != cached_epoch) cached_epoch = p / n, perm = EpochPermutation(n, seed_, cached_epoch);
    out.push_back(perm[static_cast<size_t>(p % n)]);
  }
  return out;
}

void BatchStream::Worker() {
  for (;;) {
    int64_t step;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || next_to_load_ < next_to_return_ + prefetch_; });
      if (stop_) return;
      step = next_to_load_++;
    }
    try {
      std::vector<Sample> samples;
      std::string last_error;
      const auto indices = Indices(step);
      for (size_t k = 0; k < indices.size(); ++k) {
        const int64_t i = indices[k];
        try {
          samples.push_back(dataset_.Load(i, step * batch_size_ + static_cast<int64_t>(k)));
        } catch (const std::exception& e) {  // one bad item: skipped with a warning, the run goes on
          last_error = e.what();
          log::Warn("train: skipping item {}: {}", dataset_.item(i).id, last_error);
        }
      }
      if (samples.empty()) throw Error("every item of the batch of step " + std::to_string(step) + " failed; last: " + last_error);
      Batch b = Collate(samples, step);
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(step, std::move(b));
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error_.empty()) error_ = e.what();
    }
    cv_.notify_all();
  }
}

Batch BatchStream::Next() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return !error_.empty() || ready_.count(next_to_return_) > 0; });
  if (!error_.empty()) throw Error("train: loading a batch failed: " + error_);
  Batch b = std::move(ready_.at(next_to_return_));
  ready_.erase(next_to_return_);
  ++next_to_return_;
  lock.unlock();
  cv_.notify_all();
  return b;
}

}  // namespace facebatch::train

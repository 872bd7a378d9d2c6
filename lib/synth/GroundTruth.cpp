#include "synth/GroundTruth.h"

#include <opencv2/imgproc.hpp>
#include <cmath>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "core/Error.h"
#include "io/Hdf5.h"

namespace facebatch::synth {

namespace {

namespace h5 = io::hdf5;

h5::Array ToArray(const at::Tensor& t) {
  auto c = t.detach().cpu().contiguous();
  h5::Array a;
  if (c.scalar_type() == at::kFloat) a.dtype = h5::DType::kFloat32;
  else if (c.scalar_type() == at::kByte) a.dtype = h5::DType::kUInt8;
  else throw Error("ground truth: unsupported tensor dtype");
  for (int64_t d : c.sizes()) a.dims.push_back(d);
  a.bytes.resize(c.numel() * c.element_size());
  if (!a.bytes.empty()) std::memcpy(a.bytes.data(), c.data_ptr(), a.bytes.size());
  return a;
}

at::Tensor FromArray(const h5::Array& a, h5::DType want, const std::string& path, const std::string& name) {
  if (a.dtype != want)
    throw InputError(path, name + ": element type " + h5::DTypeName(a.dtype) + ", expected " + h5::DTypeName(want));
  auto t = torch::empty(a.dims, want == h5::DType::kFloat32 ? torch::kFloat : torch::kUInt8);
  if (!a.bytes.empty()) std::memcpy(t.data_ptr(), a.bytes.data(), a.bytes.size());
  return t;
}

void CheckDims(const at::Tensor& t, std::vector<int64_t> dims, const std::string& name) {
  if (!t.defined()) throw Error("ground truth: " + name + " is missing");
  if (t.sizes().vec() != dims) {
    std::string want, got;
    for (auto d : dims) want += (want.empty() ? "" : "x") + std::to_string(d);
    for (auto d : t.sizes()) got += (got.empty() ? "" : "x") + std::to_string(d);
    throw Error("ground truth: " + name + " has dims " + got + ", expected " + want);
  }
}

}  // namespace

int64_t GroundTruth::Find(const std::string& id) const {
  auto it = std::find(ids.begin(), ids.end(), id);
  return it == ids.end() ? -1 : it - ids.begin();
}

void GroundTruth::Validate() const {
  const int64_t N = size(), U = uv_rows, V = uv_cols;
  CheckDims(shape_uv, {N, 3, U, V}, "shape_uv");
  CheckDims(albedo_uv, {N, 3, U, V}, "albedo_uv");
  CheckDims(M, {N, 2, 4}, "M");
  CheckDims(L, {N, 27}, "L");
  CheckDims(landmarks, {N, 68, 2}, "landmarks");
  CheckDims(pose, {N, 3}, "pose");
  CheckDims(visible, {N, 68}, "visible");
  if (occluder.defined()) CheckDims(occluder, {N, 6}, "occluder");
  CheckDims(template_mask, {U, V}, "template/mask");
}

namespace {
void WriteAttributes(h5::Group& root, const GroundTruth& gt);
}

void WriteGroundTruth(const std::string& path, const GroundTruth& gt) {
  gt.Validate();
  auto file = h5::File::Create(path);
  auto root = file.root();
  WriteAttributes(root, gt);
  root.WriteDataset("shape_uv", ToArray(gt.shape_uv.to(at::kFloat)));
  root.WriteDataset("albedo_uv", ToArray(gt.albedo_uv.to(at::kFloat)));
  root.WriteDataset("M", ToArray(gt.M.to(at::kFloat)));
  root.WriteDataset("L", ToArray(gt.L.to(at::kFloat)));
  root.WriteDataset("landmarks", ToArray(gt.landmarks.to(at::kFloat)));
  root.WriteDataset("pose", ToArray(gt.pose.to(at::kFloat)));
  root.WriteDataset("visible", ToArray(gt.visible.to(at::kByte)));
  root.WriteDataset("occluder", ToArray(gt.occluder.defined() ? gt.occluder.to(at::kFloat)
                                                               : torch::zeros({gt.size(), 6}, at::kFloat)));
  root.CreateGroup("template").WriteDataset("mask", ToArray(gt.template_mask.to(at::kByte)));
  file.Close();
}

namespace {
void WriteAttributes(h5::Group& root, const GroundTruth& gt) {
  root.SetAttribute("format", std::string(kGroundTruthFormat));
  root.SetAttribute("version", kGroundTruthVersion);
  root.SetAttribute("corpus", gt.corpus);
  root.SetAttribute("generator", gt.generator);
  root.SetAttribute("seed", static_cast<int64_t>(gt.seed));
  root.SetAttribute("uv_rows", static_cast<int64_t>(gt.uv_rows));
  root.SetAttribute("uv_cols", static_cast<int64_t>(gt.uv_cols));
  root.SetAttribute("created", gt.created);
  root.SetAttribute("facebatch_version", gt.facebatch_version);
  root.SetAttribute("ids_json", nlohmann::json(gt.ids).dump());
}
}  // namespace

struct GroundTruthWriter::Impl {
  std::mutex mutex;
  h5::File file;
  std::vector<uint8_t> written;
  int64_t U = 0, V = 0;
};

GroundTruthWriter::GroundTruthWriter(const std::string& path, const GroundTruth& gt) : impl_(std::make_unique<Impl>()) {
  const int64_t N = gt.size(), U = gt.uv_rows, V = gt.uv_cols;
  CheckDims(gt.template_mask, {U, V}, "template/mask");
  impl_->U = U;
  impl_->V = V;
  impl_->written.assign(N, 0);
  impl_->file = h5::File::Create(path);
  auto root = impl_->file.root();
  WriteAttributes(root, gt);
  root.CreateDataset("shape_uv", h5::DType::kFloat32, {N, 3, U, V});
  root.CreateDataset("albedo_uv", h5::DType::kFloat32, {N, 3, U, V});
  root.CreateDataset("M", h5::DType::kFloat32, {N, 2, 4});
  root.CreateDataset("L", h5::DType::kFloat32, {N, 27});
  root.CreateDataset("landmarks", h5::DType::kFloat32, {N, 68, 2});
  root.CreateDataset("pose", h5::DType::kFloat32, {N, 3});
  root.CreateDataset("visible", h5::DType::kUInt8, {N, 68});
  root.CreateDataset("occluder", h5::DType::kFloat32, {N, 6});
  root.CreateGroup("template").WriteDataset("mask", ToArray(gt.template_mask.to(at::kByte)));
}

GroundTruthWriter::~GroundTruthWriter() = default;

void GroundTruthWriter::WriteRow(int64_t row, const at::Tensor& shape_uv, const at::Tensor& albedo_uv,
                                 const at::Tensor& M, const at::Tensor& L, const at::Tensor& landmarks,
                                 const at::Tensor& pose, const at::Tensor& visible, const at::Tensor& occluder) {
  const int64_t U = impl_->U, V = impl_->V;
  CheckDims(shape_uv, {3, U, V}, "shape_uv");
  CheckDims(albedo_uv, {3, U, V}, "albedo_uv");
  CheckDims(M, {2, 4}, "M");
  CheckDims(L, {27}, "L");
  CheckDims(landmarks, {68, 2}, "landmarks");
  CheckDims(pose, {3}, "pose");
  CheckDims(visible, {68}, "visible");
  CheckDims(occluder, {6}, "occluder");
  auto arrays = std::vector<std::pair<const char*, h5::Array>>{
      {"shape_uv", ToArray(shape_uv.to(at::kFloat).unsqueeze(0))}, {"albedo_uv", ToArray(albedo_uv.to(at::kFloat).unsqueeze(0))},
      {"M", ToArray(M.to(at::kFloat).unsqueeze(0))}, {"L", ToArray(L.to(at::kFloat).unsqueeze(0))},
      {"landmarks", ToArray(landmarks.to(at::kFloat).unsqueeze(0))}, {"pose", ToArray(pose.to(at::kFloat).unsqueeze(0))},
      {"visible", ToArray(visible.to(at::kByte).unsqueeze(0))},
      {"occluder", ToArray(occluder.to(at::kFloat).unsqueeze(0))}};
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (row < 0 || row >= static_cast<int64_t>(impl_->written.size())) throw Error("ground truth: row out of range");
  auto root = impl_->file.root();
  for (auto& [name, a] : arrays) root.WriteRows(name, row, a);
  impl_->written[row] = 1;
}

void GroundTruthWriter::Close() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (size_t i = 0; i < impl_->written.size(); ++i)
    if (!impl_->written[i]) throw Error("ground truth: row " + std::to_string(i) + " was never written");
  impl_->file.Close();
}

cv::Mat OccluderMask(const at::Tensor& occluder, int height, int width) {
  cv::Mat mask = cv::Mat::zeros(height, width, CV_8U);
  auto o = occluder.to(torch::kCPU, torch::kDouble).contiguous();
  if (o.numel() != 6) throw Error("OccluderMask: occluder must have 6 values");
  const double* p = o.data_ptr<double>();
  const int kind = static_cast<int>(std::lround(p[0]));
  auto fx = [](double v) { return static_cast<int>(std::lround(v * 16)); };  // 4 fractional bits
  if (kind == 1)
    cv::ellipse(mask, cv::Point(fx(p[1]), fx(p[2])), cv::Size(fx(p[3]), fx(p[4])), p[5], 0, 360, cv::Scalar(255),
                cv::FILLED, cv::LINE_8, 4);
  else if (kind == 2)
    cv::rectangle(mask, cv::Point(fx(p[1] - p[3]), fx(p[2] - p[4])), cv::Point(fx(p[1] + p[3]), fx(p[2] + p[4])),
                  cv::Scalar(255), cv::FILLED, cv::LINE_8, 4);
  return mask;
}

GroundTruth ReadGroundTruth(const std::string& path) {
  auto file = h5::File::OpenRead(path);
  auto root = file.root();
  if (!root.HasAttribute("format") || root.GetStringAttribute("format") != kGroundTruthFormat)
    throw InputError(path, std::string("not a facebatch ground-truth file (attribute format is not '") +
                               kGroundTruthFormat + "')");
  const int64_t version = root.GetIntAttribute("version");
  if (version != 1 && version != kGroundTruthVersion)
    throw InputError(path, "unsupported ground-truth version " + std::to_string(version) +
                               " (this facebatch reads versions 1 and " + std::to_string(kGroundTruthVersion) + ")");
  GroundTruth gt;
  gt.corpus = root.GetStringAttribute("corpus");
  gt.generator = root.GetStringAttribute("generator");
  gt.seed = static_cast<uint64_t>(root.GetIntAttribute("seed"));
  gt.uv_rows = static_cast<int>(root.GetIntAttribute("uv_rows"));
  gt.uv_cols = static_cast<int>(root.GetIntAttribute("uv_cols"));
  gt.created = root.GetStringAttribute("created");
  gt.facebatch_version = root.GetStringAttribute("facebatch_version");
  try {
    gt.ids = nlohmann::json::parse(root.GetStringAttribute("ids_json")).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path, std::string("ids_json: not a JSON array of strings: ") + e.what());
  }
  using h5::DType;
  gt.shape_uv = FromArray(root.ReadDataset("shape_uv"), DType::kFloat32, path, "shape_uv");
  gt.albedo_uv = FromArray(root.ReadDataset("albedo_uv"), DType::kFloat32, path, "albedo_uv");
  gt.M = FromArray(root.ReadDataset("M"), DType::kFloat32, path, "M");
  gt.L = FromArray(root.ReadDataset("L"), DType::kFloat32, path, "L");
  gt.landmarks = FromArray(root.ReadDataset("landmarks"), DType::kFloat32, path, "landmarks");
  gt.pose = FromArray(root.ReadDataset("pose"), DType::kFloat32, path, "pose");
  gt.visible = FromArray(root.ReadDataset("visible"), DType::kUInt8, path, "visible");
  gt.occluder = version >= 2 ? FromArray(root.ReadDataset("occluder"), DType::kFloat32, path, "occluder")
                             : torch::full({static_cast<int64_t>(gt.ids.size()), 6}, -1.0f);  // unknown
  gt.template_mask = FromArray(root.OpenGroup("template").ReadDataset("mask"), DType::kUInt8, path, "template/mask");
  try {
    gt.Validate();
  } catch (const Error& e) {
    throw InputError(path, e.what());
  }
  return gt;
}

}  // namespace facebatch::synth

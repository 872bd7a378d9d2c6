// The model file (schemas/model.md): one HDF5 file per model.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/Error.h"
#include "core/Log.h"
#include "facebatch/Version.h"
#include "io/Hdf5.h"
#include "model/FaceModelImpl.h"
#include "render/Topology.h"

namespace facebatch::model {
namespace h5 = io::hdf5;
namespace {

h5::Array ToArray(const at::Tensor& t) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  h5::Array a;
  switch (c.scalar_type()) {
    case at::kFloat: a.dtype = h5::DType::kFloat32; break;
    case at::kDouble: a.dtype = h5::DType::kFloat64; break;
    case at::kLong: a.dtype = h5::DType::kInt64; break;
    case at::kInt: a.dtype = h5::DType::kInt32; break;
    case at::kBool: c = c.to(at::kByte); [[fallthrough]];
    case at::kByte: a.dtype = h5::DType::kUInt8; break;
    default: throw Error(std::string("model file: cannot store tensor type ") + c10::toString(c.scalar_type()));
  }
  a.dims.assign(c.sizes().begin(), c.sizes().end());
  a.bytes.resize(c.numel() * c.element_size());
  if (c.numel()) std::memcpy(a.bytes.data(), c.data_ptr(), a.bytes.size());
  return a;
}

at::ScalarType TorchType(h5::DType t) {
  switch (t) {
    case h5::DType::kFloat32: return at::kFloat;
    case h5::DType::kFloat64: return at::kDouble;
    case h5::DType::kInt32: return at::kInt;
    case h5::DType::kInt64: return at::kLong;
    case h5::DType::kUInt8: return at::kByte;
    case h5::DType::kFloat16:
    case h5::DType::kString: break;  // the tree API refuses to read these (io/Hdf5.h)
  }
  throw Error(std::string("model file: no tensor type for HDF5 element type ") + h5::DTypeName(t));
}

at::Tensor FromArray(const h5::Array& a) {
  auto t = torch::empty(std::vector<int64_t>(a.dims.begin(), a.dims.end()), TorchType(a.dtype));
  if (t.numel()) std::memcpy(t.data_ptr(), a.bytes.data(), a.bytes.size());
  return t;
}

std::string Shape(const std::vector<int64_t>& d) { return fmt::format("[{}]", fmt::join(d, ", ")); }

// Reads a dataset, checking dtype and shape (-1 = any); InputError otherwise.
at::Tensor ReadChecked(const h5::Group& g, const std::string& name, h5::DType dtype, std::vector<int64_t> shape) {
  auto info = g.DatasetInfo(name);  // "missing dataset" names the object
  bool ok = info.dims.size() == shape.size();
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || shape[i] == info.dims[i];
  std::string obj = (g.name() == "/" ? "/" : g.name() + "/") + name;
  if (!ok)
    throw InputError(g.file_path(), fmt::format("{}: shape {} but the configuration expects {} (-1: any)", obj,
                                                Shape(info.dims), Shape(shape)));
  if (info.dtype != dtype)
    throw InputError(g.file_path(), fmt::format("{}: element type {}, expected {}", obj, h5::DTypeName(info.dtype),
                                                h5::DTypeName(dtype)));
  return FromArray(g.ReadDataset(name));
}

std::string OptString(const h5::Group& g, const char* attr) {
  return g.HasAttribute(attr) ? g.GetStringAttribute(attr) : std::string();
}

}  // namespace

void FaceModel::Save(const std::string& path) const {
  const auto& m = *impl_;
  Provenance prov = m.provenance;
  if (prov.created.empty()) prov.created = log::UtcTimestamp();
  prov.facebatch_version = FACEBATCH_VERSION;
  std::string tmp = fmt::format("{}.tmp-{}", path, ::getpid());
  try {
    auto file = h5::File::Create(tmp);
    auto root = file.root();
    root.SetAttribute("format", std::string(kModelFormat));
    root.SetAttribute("version", int64_t{kModelFormatVersion});
    root.SetAttribute("kind", std::string(KindName(m.config.kind)));
    root.SetAttribute("configuration", m.config.ToJson());
    root.SetAttribute("created", prov.created);
    root.SetAttribute("facebatch_version", prov.facebatch_version);
    root.SetAttribute("command", prov.command);
    root.SetAttribute("training_data", prov.training_data);
    root.SetAttribute("training_steps", prov.training_steps);
    root.SetAttribute("parent_hash", prov.parent_hash);
    root.SetAttribute("weights_sha256", WeightsHash());

    const auto& t = m.face_template;
    auto tg = root.CreateGroup("template");
    tg.SetAttribute("source", t.source);
    tg.SetAttribute("region_names", std::string("left_eye,right_eye,nose,mouth"));
    tg.WriteDataset("mask", ToArray(t.topology.mask.to(at::kByte)));
    tg.WriteDataset("mean_shape", ToArray(t.mean_shape));
    tg.WriteDataset("mean_albedo", ToArray(t.mean_albedo));
    std::vector<int32_t> regions(4 * render::kNumRegions);
    for (int i = 0; i < render::kNumRegions; ++i) {
      const auto& b = t.topology.regions[i];
      regions[4 * i] = b.row0, regions[4 * i + 1] = b.col0, regions[4 * i + 2] = b.rows, regions[4 * i + 3] = b.cols;
    }
    tg.WriteDataset("regions", h5::MakeArray(regions, {render::kNumRegions, 4}));
    const auto& tp = t.topology;
    const std::pair<const char*, const at::Tensor*> optional[] = {
        {"landmarks68", &tp.landmarks68},         {"landmarks68_uv", &t.landmarks68_uv},
        {"vertex_of_pixel", &tp.vertex_of_pixel}, {"pixel_of_vertex", &tp.pixel_of_vertex},
        {"vertex_uv", &tp.vertex_uv},             {"triangles", &tp.triangles},
        {"flip", &tp.flip}};
    for (const auto& [name, tensor] : optional)
      if (tensor->defined()) tg.WriteDataset(name, ToArray(*tensor));

    auto ng = root.CreateGroup("normalisation");
    ng.WriteDataset("m_mean", ToArray(m.norm.m_mean));
    ng.WriteDataset("m_std", ToArray(m.norm.m_std));
    ng.WriteDataset("l_mean", ToArray(m.norm.l_mean));
    ng.WriteDataset("l_std", ToArray(m.norm.l_std));

    auto wg = root.CreateGroup("weights");
    for (const auto& [name, tensor] : NamedTensors()) wg.WriteDataset(name, ToArray(tensor));
    file.Close();
    std::filesystem::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

FaceModel FaceModel::Load(const std::string& path, c10::Device device) {
  InstallTorchThreadHook();
  auto file = h5::File::OpenRead(path);
  auto root = file.root();
  auto fail = [&](const std::string& problem) -> void { throw InputError(path, problem); };
  if (!root.HasAttribute("format")) fail("not a facebatch model file (HDF5 without a 'format' attribute)");
  std::string format = root.GetStringAttribute("format");
  if (format != kModelFormat) fail(fmt::format("not a facebatch model file (format '{}', expected '{}')", format, kModelFormat));
  int64_t version = root.GetIntAttribute("version");
  if (version > kModelFormatVersion)
    fail(fmt::format("model file format version {} is newer than this facebatch {} reads (up to {}); upgrade facebatch",
                     version, FACEBATCH_VERSION, kModelFormatVersion));
  if (version < 1) fail(fmt::format("unknown model file format version {}", version));

  ModelConfig config;
  try {
    config = ModelConfig::FromJson(root.GetStringAttribute("configuration"));
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {
    fail(fmt::format("bad 'configuration' attribute: {}", e.what()));
  }
  std::string kind = root.GetStringAttribute("kind");
  if (kind != KindName(config.kind))
    fail(fmt::format("attribute kind '{}' disagrees with the configuration's kind '{}'", kind, KindName(config.kind)));

  const int U = config.uv_rows, V = config.uv_cols;
  render::FaceTemplate t;
  auto tg = root.OpenGroup("template");
  t.source = OptString(tg, "source");
  t.topology.uv_rows = U, t.topology.uv_cols = V;
  t.topology.mask = ReadChecked(tg, "mask", h5::DType::kUInt8, {U, V}).to(at::kBool);
  t.mean_shape = ReadChecked(tg, "mean_shape", h5::DType::kFloat32, {3, U, V});
  t.mean_albedo = ReadChecked(tg, "mean_albedo", h5::DType::kFloat32, {3, U, V});
  auto regions = ReadChecked(tg, "regions", h5::DType::kInt32, {render::kNumRegions, 4});
  for (int i = 0; i < render::kNumRegions; ++i) {
    auto r = regions[i];
    t.topology.regions[i] = {r[0].item<int>(), r[1].item<int>(), r[2].item<int>(), r[3].item<int>()};
  }
  const int64_t N = t.topology.mask.sum().item<int64_t>();
  auto opt = [&](const char* name, h5::DType dt, std::vector<int64_t> shape) {
    return tg.HasDataset(name) ? ReadChecked(tg, name, dt, shape) : at::Tensor();
  };
  t.topology.landmarks68 = opt("landmarks68", h5::DType::kInt64, {68});
  t.landmarks68_uv = opt("landmarks68_uv", h5::DType::kFloat32, {68, 2});
  t.topology.vertex_of_pixel = opt("vertex_of_pixel", h5::DType::kInt64, {U, V});
  t.topology.pixel_of_vertex = opt("pixel_of_vertex", h5::DType::kInt64, {N});
  t.topology.vertex_uv = opt("vertex_uv", h5::DType::kFloat32, {N, 2});
  t.topology.triangles = opt("triangles", h5::DType::kInt64, {-1, 3});
  t.topology.flip = opt("flip", h5::DType::kInt64, {N});
  if ((!t.topology.triangles.defined() || !t.topology.vertex_of_pixel.defined()) && t.landmarks68_uv.defined()) {
    // A file with only the mask and landmarks: rebuild the grid topology (render::BuildTopology).
    auto regions_saved = t.topology.regions;
    t.topology = render::BuildTopology(t.topology.mask, t.landmarks68_uv);
    t.topology.regions = regions_saved;
  }

  FaceModel model = [&] {
    try {
      return Create(config, t, 0);
    } catch (const Error& e) {
      throw InputError(path, e.what());
    }
  }();
  auto& m = *model.impl_;
  {
    torch::NoGradGuard g;
    auto wg = root.OpenGroup("weights");
    auto expected = model.NamedTensors();
    std::set<std::string> names;
    for (auto& [name, tensor] : expected) {
      names.insert(name);
      if (!wg.HasDataset(name))
        fail(fmt::format("/weights/{}: missing (the file does not match its own configuration)", name));
      auto dt = tensor.scalar_type() == at::kLong ? h5::DType::kInt64 : h5::DType::kFloat32;
      auto value = ReadChecked(wg, name, dt, std::vector<int64_t>(tensor.sizes().begin(), tensor.sizes().end()));
      tensor.copy_(value);
    }
    for (const auto& name : wg.Children())
      if (!names.count(name))
        fail(fmt::format("/weights/{}: unexpected tensor (not part of the configured model; mismatched file)", name));
    auto ng = root.OpenGroup("normalisation");
    Normalisation n;
    n.m_mean = ReadChecked(ng, "m_mean", h5::DType::kFloat32, {8});
    n.m_std = ReadChecked(ng, "m_std", h5::DType::kFloat32, {8});
    n.l_mean = ReadChecked(ng, "l_mean", h5::DType::kFloat32, {27});
    n.l_std = ReadChecked(ng, "l_std", h5::DType::kFloat32, {27});
    m.norm = n;
  }
  auto& p = m.provenance;
  p.created = OptString(root, "created");
  p.facebatch_version = OptString(root, "facebatch_version");
  p.command = OptString(root, "command");
  p.training_data = OptString(root, "training_data");
  p.training_steps = root.HasAttribute("training_steps") ? root.GetIntAttribute("training_steps") : 0;
  p.parent_hash = OptString(root, "parent_hash");
  if (root.HasAttribute("weights_sha256")) {
    std::string stored = root.GetStringAttribute("weights_sha256"), actual = model.WeightsHash();
    if (stored != actual)
      fail(fmt::format("weights checksum mismatch (stored {}, computed {}): the file is corrupted", stored.substr(0, 12),
                       actual.substr(0, 12)));
  }
  model.to(device);
  return model;
}

}  // namespace facebatch::model

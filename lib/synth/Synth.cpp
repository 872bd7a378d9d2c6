#include "synth/Synth.h"

#include <fmt/format.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <torch/torch.h>

#include <facebatch/Version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <thread>
#include <tuple>

#include "core/Error.h"
#include "core/Log.h"
#include "core/Progress.h"
#include "io/Item.h"
#include "io/MatFile.h"
#include "render/Projection.h"
#include "synth/Generator.h"
#include "synth/GroundTruth.h"
#include "batch/ShardReader.h"

namespace facebatch::synth {
namespace fs = std::filesystem;

namespace {

// A fixed MAT header: the file bytes depend only on the contents.
const char* kMatHeader = "MATLAB 5.0 MAT-file, Platform: facebatch synth, Created by: facebatch synth (synthetic faces)";

// CelebA aligned crops (178 x 218): mean positions of the five points.
constexpr double kCelebaFive[5][2] = {{69.0, 111.0}, {108.0, 111.0}, {88.5, 134.0}, {72.5, 152.5}, {105.5, 152.5}};

bool ParseUv(const std::string& s, int* r, int* c) {
  auto x = s.find('x');
  if (x == std::string::npos) return false;
  try {
    size_t p1 = 0, p2 = 0;
    *r = std::stoi(s.substr(0, x), &p1);
    *c = std::stoi(s.substr(x + 1), &p2);
    return p1 == x && p2 == s.size() - x - 1;
  } catch (...) {
    return false;
  }
}

io::MatArray Mat(size_t rows, size_t cols, std::vector<double> col_major, const char* cls) {
  io::MatArray a;
  a.dims = {rows, cols};
  a.values = std::move(col_major);
  a.mat_class = cls;
  return a;
}

void WriteJpeg(const fs::path& path, const cv::Mat& img) {
  if (!cv::imwrite(path.string(), img, {cv::IMWRITE_JPEG_QUALITY, 90}))
    throw InputError(path.string(), "cannot write the image");
}

std::vector<double> Pt2d(const SynthFace& f) {  // 2 x 68 column-major: x0 y0 x1 y1 ...
  return std::vector<double>(f.landmarks.begin(), f.landmarks.end());
}

/// The 3DDFA-style parameter fields. Pose_Para from M (render::MToPosePara, BFM
/// units = 1e4 x facebatch cm); the model parameters are zeros (documented):
/// the synthetic faces do not come from the BFM.
void WriteParams(io::MatWriter& w, const SynthFace& f, int height) {
  double x0 = 1e30, y0 = 1e30, x1 = -1e30, y1 = -1e30;
  for (int i = 0; i < 68; ++i) {
    x0 = std::min<double>(x0, f.landmarks[2 * i]), x1 = std::max<double>(x1, f.landmarks[2 * i]);
    y0 = std::min<double>(y0, f.landmarks[2 * i + 1]), y1 = std::max<double>(y1, f.landmarks[2 * i + 1]);
  }
  w.Write("roi", Mat(1, 4, {std::floor(x0), std::floor(y0), std::ceil(x1), std::ceil(y1)}, "int16"));
  auto pp = render::MToPosePara(f.M.unsqueeze(0).to(torch::kDouble), height, 1e4).to(torch::kDouble).contiguous();
  std::vector<double> pose(pp.data_ptr<double>(), pp.data_ptr<double>() + 7);
  w.Write("Pose_Para", Mat(1, 7, pose, "single"));
  w.Write("Shape_Para", Mat(199, 1, std::vector<double>(199, 0.0), "double"));
  w.Write("Exp_Para", Mat(29, 1, std::vector<double>(29, 0.0), "double"));
  w.Write("Color_Para", Mat(1, 7, {1, 1, 1, 0, 0, 0, 1}, "single"));
  w.Write("Illum_Para", Mat(1, 10, std::vector<double>(10, 0.0), "double"));
  w.Write("Tex_Para", Mat(199, 1, std::vector<double>(199, 0.0), "double"));
}

void Write300wLp(const fs::path& dir, const std::string& name, const SynthFace& f, int H) {
  WriteJpeg(dir / (name + ".jpg"), f.image);
  io::MatWriter w((dir / (name + ".mat")).string(), kMatHeader);
  w.Write("pt2d", Mat(2, 68, Pt2d(f), "double"));
  WriteParams(w, f, H);
  w.Close();
}

void WriteAflw(const fs::path& root, const std::string& name, const SynthFace& f, const FaceGenerator& gen, int H) {
  WriteJpeg(root / (name + ".jpg"), f.image);
  io::MatWriter w((root / (name + ".mat")).string(), kMatHeader);
  // pt3d_68: rows x, y, z with z = -depth (pixels, larger = nearer the camera).
  const auto& topo = gen.face_template().topology;
  auto verts = render::VerticesFromUVMap(topo, f.shape_uv.unsqueeze(0)).index_select(1, topo.landmarks68);
  auto depth = render::VertexDepth(f.M.unsqueeze(0), verts)[0].contiguous();
  std::vector<double> pt3d;
  for (int i = 0; i < 68; ++i) {
    pt3d.push_back(f.landmarks[2 * i]);
    pt3d.push_back(f.landmarks[2 * i + 1]);
    pt3d.push_back(-depth[i].item<float>());
  }
  w.Write("pt3d_68", Mat(3, 68, pt3d, "double"));
  // pt2d: AFLW's 21 points (a subset of the 68 here), -1 where not visible, as AFLW2000-3D.
  static const int k21[21] = {17, 19, 21, 22, 24, 26, 36, 39, 42, 45, 31, 30, 35, 48, 51, 54, 57, 2, 8, 14, 33};
  std::vector<double> pt2d;
  for (int i : k21) {
    pt2d.push_back(f.visible[i] ? f.landmarks[2 * i] : -1.0);
    pt2d.push_back(f.visible[i] ? f.landmarks[2 * i + 1] : -1.0);
  }
  w.Write("pt2d", Mat(2, 21, pt2d, "double"));
  WriteParams(w, f, H);
  w.Close();
}

/// Least-squares similarity (closed-form 2-D Umeyama) taking `src` points to `dst`: 2 x 3.
std::array<double, 6> Similarity(const std::vector<std::array<double, 2>>& src,
                                 const std::vector<std::array<double, 2>>& dst) {
  const size_t n = src.size();
  double sx = 0, sy = 0, dx = 0, dy = 0;
  for (size_t i = 0; i < n; ++i) sx += src[i][0] / n, sy += src[i][1] / n, dx += dst[i][0] / n, dy += dst[i][1] / n;
  double a = 0, b = 0, ss = 0;
  for (size_t i = 0; i < n; ++i) {
    const double px = src[i][0] - sx, py = src[i][1] - sy, qx = dst[i][0] - dx, qy = dst[i][1] - dy;
    a += px * qx + py * qy;
    b += px * qy - py * qx;
    ss += px * px + py * py;
  }
  a /= ss, b /= ss;
  return {a, -b, dx - (a * sx - b * sy), b, a, dy - (b * sx + a * sy)};
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size()) {
    size_t b = s.find(',', a);
    if (b == std::string::npos) b = s.size();
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}
bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

int SynthOptions::UvRows() const {
  int r = 0, c = 0;
  ParseUv(uv, &r, &c);
  return r;
}
int SynthOptions::UvCols() const {
  int r = 0, c = 0;
  ParseUv(uv, &r, &c);
  return c;
}

void SynthOptions::Check() const {
  if (layout != "300w-lp" && layout != "aflw2000" && layout != "celeba")
    throw UsageError("--layout must be 300w-lp, aflw2000 or celeba (got '" + layout + "')");
  if (out.empty()) throw UsageError("--out is required");
  if (count < (from.empty() ? 1 : 0)) throw UsageError("--count must be at least 1 (0 with --from: every fit)");
  if (layout == "aflw2000" && count > 49999) throw UsageError("--count: AFLW2000 names hold at most 49999 images");
  auto sets = SplitList(subsets);
  if (sets.empty()) throw UsageError("--subsets: give at least one of AFW, HELEN, IBUG, LFPW");
  for (const auto& s : sets)
    if (s != "AFW" && s != "HELEN" && s != "IBUG" && s != "LFPW")
      throw UsageError("--subsets: unknown 300W-LP subset '" + s + "' (AFW, HELEN, IBUG, LFPW)");
  if (layout == "celeba" && count > 999999) throw UsageError("--count: CelebA names hold at most 999999 images");
  int r = 0, c = 0;
  if (!ParseUv(uv, &r, &c) || r < 16 || c < 16 || r > 1024 || c > 1024)
    throw UsageError("--uv must be RxC with 16 <= R, C <= 1024 (got '" + uv + "')");
  if (threads < 0) throw UsageError("--threads must be >= 0");
  for (auto [name, v, hi] : {std::tuple{"--yaw-max", yaw_max, 90.0}, std::tuple{"--pitch-max", pitch_max, 60.0},
                            std::tuple{"--roll-max", roll_max, 60.0}})
    if (v != -1 && (v < 0 || v > hi))
      throw UsageError(fmt::format("{} must be -1 (layout default) or in [0, {}] (got {})", name, hi, v));
  if (occluders < 0 || occluders > 1) throw UsageError("--occluders must be a probability in [0, 1]");
  if (expressions < 0 || expressions > 1) throw UsageError("--expressions must be a probability in [0, 1]");
  if (facial_hair < 0 || facial_hair > 1) throw UsageError("--facial-hair must be a probability in [0, 1]");
  if (per_identity < 1) throw UsageError("--per-identity must be at least 1");
  ParseProgressMode(progress);
}

namespace {

// The ok fits of a fit output file, and a thread-safe reader of their maps.
class FitSource {
 public:
  explicit FitSource(const std::string& path) : reader_(path) {
    for (const char* field : {"/maps/shape", "/maps/albedo"}) {
      if (!reader_.Has(field)) {
        throw InputError(path, std::string("has no ") + field + " (fit with --outputs including shape,albedo)");
      }
    }
    for (int64_t i = 0; i < reader_.size(); ++i)
      if (reader_.status(i) == "ok") rows_.push_back(i);
    if (rows_.empty()) throw InputError(path, "has no fit with status ok");
  }
  /// The UV size of the fits' maps ("RxC"): the generator is built at it.
  std::string Uv() const {
    return fmt::format("{}x{}", reader_.layout().sizes.uv_rows, reader_.layout().sizes.uv_cols);
  }
  /// The generator's template at that size must be the fits' mesh.
  void UseTemplate(const render::FaceTemplate& tmpl) {
    if (reader_.layout().sizes.num_vertices != tmpl.topology.vertex_uv.size(0)) {
      throw InputError(reader_.path(), fmt::format("fits have {} vertices but the default template at UV {} has {}: "
                                                   "not fits of a model over facebatch's template",
                                                   reader_.layout().sizes.num_vertices, Uv(),
                                                   tmpl.topology.vertex_uv.size(0)));
    }
    mask_ = tmpl.topology.mask;
  }
  int64_t size() const { return static_cast<int64_t>(rows_.size()); }
  Identity Load(int64_t k) const {
    const auto& s = reader_.layout().sizes;
    auto map = [&](const char* field) {
      auto v = reader_.Floats(field, rows_[k]);
      return torch::from_blob(v.data(), {3, s.uv_rows, s.uv_cols}, torch::kFloat).clone();
    };
    return IdentityFromFit(map("/maps/shape"), map("/maps/albedo"), mask_);
  }

 private:
  batch::ShardReader reader_;
  std::vector<int64_t> rows_;
  at::Tensor mask_;
};

}  // namespace

std::string SynthSummary::ToString() const {
  return fmt::format("synth: {} images in {} ({:.1f} s, {:.1f} images/s, {} threads)\nsynth: ground truth {}\n",
                     images, root, seconds, images_per_second, threads, ground_truth);
}

SynthSummary RunSynth(const SynthOptions& options) {
  options.Check();
  SynthOptions o = options;
  std::unique_ptr<FitSource> fits;
  if (!o.from.empty()) {  // the fits fix the UV size
    fits = std::make_unique<FitSource>(o.from);
    o.uv = fits->Uv();
    o.expressions = 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  tbb::global_control tbb_threads(tbb::global_control::max_allowed_parallelism, threads);
  const int torch_threads_before = at::get_num_threads();
  at::set_num_threads(1);  // parallel over images, not inside one small render
  struct Restore {
    int n;
    ~Restore() { at::set_num_threads(n); }
  } restore{torch_threads_before};

  const bool celeba = o.layout == "celeba", lp = o.layout == "300w-lp";
  SceneOptions scene;
  scene.yaw_max = o.yaw_max >= 0 ? o.yaw_max : (celeba ? 30 : 90);
  scene.pitch_max = o.pitch_max >= 0 ? o.pitch_max : (celeba ? 15 : 30);
  scene.roll_max = o.roll_max >= 0 ? o.roll_max : (celeba ? 0 : 20);
  scene.occluder_prob = o.occluders;
  scene.expression_prob = o.expressions;
  const int W = celeba ? 178 : 450, H = celeba ? 218 : 450;
  const fs::path root(o.out);
  fs::create_directories(root);
  if (celeba) fs::create_directories(root / "img_align_celeba");
  FaceGenerator gen(o.UvRows(), o.UvCols());
  if (fits) {
    fits->UseTemplate(gen.face_template());
    if (o.count == 0) o.count = fits->size() * o.per_identity;
    log::Info("synth: re-rendering {} fitted faces of {} ({} images each)", fits->size(), o.from, o.per_identity);
  }
  log::Info("synth: {} faces, layout {}, {}x{} images, UV {}, seed {}, {} threads", o.count, o.layout, W, H, o.uv,
            o.seed, threads);
  const int per_face = lp && o.flip ? 2 : 1;
  const int64_t n_rows = o.count * per_face;
  const std::vector<std::string> sets = SplitList(o.subsets);
  // Item names and ids are known before rendering: the ground-truth rows (sorted by id,
  // the manifest order) are streamed to the file as the images are made (bounded memory).
  auto lp_set = [&](int64_t i) -> const std::string& { return sets[i % int64_t(sets.size())]; };
  auto item_name = [&](int64_t i) {
    if (celeba) return fmt::format("{:06d}", i + 1);
    if (!lp) return fmt::format("image{:05d}", 2 * (i + 1));  // sparse, as AFLW2000-3D's names
    const int64_t ns = int64_t(sets.size());
    const std::string& set = lp_set(i);
    return set == "LFPW"   ? fmt::format("LFPW_image_train_{:05d}_0", i / ns)
           : set == "IBUG" ? fmt::format("IBUG_image_{:05d}_1_0", i / ns)
                           : fmt::format("{}_{:06d}_1_0", set, i / ns);
  };
  std::vector<std::string> ids(n_rows);  // generation order: face i -> rows per_face * i (+ 1 for the mirror)
  for (int64_t i = 0; i < o.count; ++i) {
    const std::string name = item_name(i);
    if (celeba) ids[i] = "celeba/img_align_celeba/" + name;
    else if (!lp) ids[i] = "aflw2000/" + name;
    else {
      ids[per_face * i] = "300w-lp/" + lp_set(i) + "/" + name;
      if (o.flip) ids[per_face * i + 1] = "300w-lp/" + lp_set(i) + "_Flip/" + name;
    }
  }
  std::vector<int64_t> order(n_rows), row_of(n_rows);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a] < ids[b]; });
  GroundTruth header;
  header.corpus = o.layout;
  header.generator = fmt::format(
      "facebatch synth {} ({}; yaw<={} pitch<={} roll<={} occluders={} "
      "expressions={} facial_hair={} per_identity={})",
      FACEBATCH_VERSION,
      fits ? fmt::format("fitted faces of {} re-rendered under new poses and lights", o.from)
           : std::string("procedural faces over the MediaPipe template"),
      scene.yaw_max, scene.pitch_max, scene.roll_max, o.occluders, o.expressions,
      o.facial_hair, o.per_identity);
  header.seed = o.seed;
  header.uv_rows = o.UvRows();
  header.uv_cols = o.UvCols();
  header.created = log::UtcTimestamp();
  header.facebatch_version = FACEBATCH_VERSION;
  for (int64_t k = 0; k < n_rows; ++k) {
    row_of[order[k]] = k;
    header.ids.push_back(ids[order[k]]);
  }
  header.template_mask = gen.face_template().topology.mask.to(torch::kUInt8);
  SynthSummary s;
  s.root = root.string();
  s.ground_truth = (root / kGroundTruthFileName).string();
  GroundTruthWriter writer(s.ground_truth, header);
  auto write_row = [&](int64_t gen_row, const SynthFace& f) {
    writer.WriteRow(row_of[gen_row], f.shape_uv, f.albedo_uv, f.M, f.L,
                    torch::from_blob(const_cast<double*>(f.landmarks.data()), {68, 2}, torch::kDouble).to(torch::kFloat),
                    torch::tensor({f.pose[0], f.pose[1], f.pose[2]}, torch::kFloat),
                    torch::from_blob(const_cast<uint8_t*>(f.visible.data()), {68}, torch::kUInt8).clone(),
                    torch::tensor(std::vector<float>(f.occluder.begin(), f.occluder.end())));
  };
  if (lp)  // directories first (not from several threads at once)
    for (const std::string& set : sets) {
      fs::create_directories(root / set);
      if (o.flip) fs::create_directories(root / (set + "_Flip"));
      if (o.landmark_sets == "all" || Contains(SplitList(o.landmark_sets), set))
        fs::create_directories(root / "landmarks" / set);
    }
  std::vector<std::array<double, 136>> celeba_landmarks(celeba ? o.count : 0);
  std::vector<cv::Mat> preview(o.preview.empty() ? 0 : std::min<int64_t>(24, o.count));
  Progress progress("synth", n_rows, ParseProgressMode(o.progress), "images");
  // With --from, faces go in blocks whose fitted identities are read first (the
  // HDF5 library is not thread-safe; memory stays bounded by the block).
  const int64_t block = fits ? std::max<int64_t>(1, 256 * int64_t(o.per_identity)) : std::max<int64_t>(1, o.count);
  std::map<int64_t, Identity> fitted;  // fit index -> identity, for the current block
  auto render_face = [&](int64_t i) {
    std::mt19937_64 id_rng(ItemSeed(o.seed, 1, uint64_t(i / o.per_identity)));
    std::mt19937_64 rng(ItemSeed(o.seed, 2, uint64_t(i)));
    Identity identity = fits ? fitted.at((i / o.per_identity) % fits->size()) : gen.RandomIdentity(id_rng, o.facial_hair);
    Placement place = gen.RandomPlacement(rng, W, H, scene);
    at::Tensor M = FaceGenerator::PlacementM(place);
    if (celeba) {
      // Align as CelebA did: the similarity taking the five points to their mean positions (+ jitter).
      auto lm = gen.ProjectLandmarks(identity.shape_uv, M);
      auto la = lm.accessor<float, 2>();
      std::vector<std::array<double, 2>> src(5), dst(5);
      auto mean = [&](int a, int b) {
        std::array<double, 2> p{0, 0};
        for (int k = a; k <= b; ++k) p[0] += la[k][0] / (b - a + 1), p[1] += la[k][1] / (b - a + 1);
        return p;
      };
      src = {mean(36, 41), mean(42, 47), mean(30, 30), mean(48, 48), mean(54, 54)};
      const double jx = 1.5 * Normal(rng), jy = 1.5 * Normal(rng), js = 1 + 0.03 * Normal(rng);
      for (int k = 0; k < 5; ++k)
        dst[k] = {88.5 + js * (kCelebaFive[k][0] - 88.5) + jx, 130 + js * (kCelebaFive[k][1] - 130) + jy};
      auto S = Similarity(src, dst);
      auto St = torch::tensor({S[0], S[1], S[3], S[4]}, torch::kFloat).view({2, 2});
      auto t = torch::tensor({S[2], S[5]}, torch::kFloat);
      auto M2 = torch::matmul(St, M);
      M2.select(1, 3).add_(t);
      M = M2.contiguous();
    }
    SynthFace face = gen.Render(identity, M, place, W, H, rng, scene);
    const std::string name = item_name(i);
    if (i < int64_t(preview.size())) preview[i] = face.image.clone();
    if (lp) {
      const std::string& set = lp_set(i);
      Write300wLp(root / set, name, face, H);
      if (o.landmark_sets == "all" || Contains(SplitList(o.landmark_sets), set)) {
        // landmarks/<SET>/<name>_pts.mat: pts_2d and pts_3d, 68 x 2 (both the GT landmarks here).
        std::vector<double> cols(136);
        for (int k = 0; k < 68; ++k) cols[k] = face.landmarks[2 * k], cols[68 + k] = face.landmarks[2 * k + 1];
        io::MatWriter w((root / "landmarks" / set / (name + "_pts.mat")).string(), kMatHeader);
        w.Write("pts_2d", Mat(68, 2, cols, "double"));
        w.Write("pts_3d", Mat(68, 2, cols, "double"));
        w.Close();
      }
      write_row(per_face * i, face);
      if (o.flip) {
        SynthFace mirrored = gen.Mirror(face, W);
        Write300wLp(root / (set + "_Flip"), name, mirrored, H);
        write_row(per_face * i + 1, mirrored);
      }
    } else if (celeba) {
      WriteJpeg(root / "img_align_celeba" / (name + ".jpg"), face.image);
      celeba_landmarks[i] = face.landmarks;
      write_row(i, face);
    } else {
      WriteAflw(root, name, face, gen, H);
      write_row(i, face);
    }
    progress.Add(per_face);
  };
  for (int64_t i0 = 0; i0 < o.count; i0 += block) {
    const int64_t i1 = std::min(o.count, i0 + block);
    if (fits) {
      fitted.clear();
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t k = (i / o.per_identity) % fits->size();
        if (!fitted.count(k)) fitted.emplace(k, fits->Load(k));
      }
    }
    tbb::parallel_for(i0, i1, render_face);
  }
  progress.Finish();

  if (celeba) {  // the list files, in image order
    std::ofstream lmf(root / "list_landmarks_align_celeba.txt"), part(root / "list_eval_partition.txt"),
        ident(root / "identity_CelebA.txt");
    // Partitions as CelebA (about 80 / 10 / 10 %): the last tenth test, the tenth before it val.
    const int64_t n_eval = o.count >= 3 ? std::max<int64_t>(1, o.count / 10) : 0;
    const int64_t n_train = o.count - 2 * n_eval, n_val = n_eval;
    lmf << o.count << "\n";
    lmf << "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y \n";
    for (int64_t i = 0; i < o.count; ++i) {
      const std::array<double, 136>& lm = celeba_landmarks[i];
      auto mean = [&](int a, int b, int c) {
        double s = 0;
        for (int k = a; k <= b; ++k) s += lm[2 * k + c] / (b - a + 1);
        return s;
      };
      const std::string name = fmt::format("{:06d}.jpg", i + 1);
      lmf << name;
      const double five[5][2] = {{mean(36, 41, 0), mean(36, 41, 1)}, {mean(42, 47, 0), mean(42, 47, 1)},
                                 {lm[60], lm[61]}, {lm[96], lm[97]}, {lm[108], lm[109]}};
      for (const auto& p : five) lmf << fmt::format(" {:>4} {:>4}", std::lround(p[0]), std::lround(p[1]));
      lmf << "\n";
      const int partition = i < n_train ? 0 : i < n_train + n_val ? 1 : 2;
      part << name << " " << partition << "\n";
      ident << name << " " << (i / o.per_identity + 1) << "\n";
    }
    if (!lmf || !part || !ident) throw InputError(root.string(), "cannot write the CelebA list files");
  }

  if (!o.preview.empty()) {  // a grid of the first images (in generation order), 6 per row
    const int n = int(preview.size()), cols = std::min(6, n), cell = 150;
    const int grid_rows = (n + cols - 1) / cols;
    cv::Mat grid(grid_rows * cell, cols * cell, CV_8UC3, cv::Scalar(255, 255, 255));
    for (int k = 0; k < n; ++k) {
      const cv::Mat& img = preview[k];  // originals, not the _Flip mirrors
      const double sc = double(cell) / std::max(img.cols, img.rows);
      cv::Mat small;
      cv::resize(img, small, cv::Size(), sc, sc, cv::INTER_AREA);
      small.copyTo(grid(cv::Rect((k % cols) * cell + (cell - small.cols) / 2, (k / cols) * cell + (cell - small.rows) / 2,
                                 small.cols, small.rows)));
    }
    if (fs::path(o.preview).has_parent_path()) fs::create_directories(fs::path(o.preview).parent_path());
    if (!cv::imwrite(o.preview, grid)) throw InputError(o.preview, "cannot write the preview image");
  }

  writer.Close();
  s.images = n_rows;
  s.threads = threads;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.images_per_second = s.images / std::max(1e-9, s.seconds);
  log::Info("synth: {} images in {:.1f} s ({:.1f} images/s)", s.images, s.seconds, s.images_per_second);
  return s;
}

}  // namespace facebatch::synth

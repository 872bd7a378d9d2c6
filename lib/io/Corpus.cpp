#include "io/Corpus.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "core/Error.h"
#include "core/Log.h"
#include "io/Detect.h"
#include "io/Landmarks.h"
#include "io/MatFile.h"

namespace facebatch::io {
namespace fs = std::filesystem;

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool IsImageFile(const fs::path& p) {
  static const char* kExt[] = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"};
  std::string e = Lower(p.extension().string());
  for (const char* k : kExt)
    if (e == k) return true;
  return false;
}

std::string Rel(const fs::path& p, const fs::path& root) { return p.lexically_relative(root).generic_string(); }

std::string IdFor(const char* corpus, const std::string& rel) {
  fs::path r(rel);
  return std::string(corpus) + "/" + r.replace_extension().generic_string();
}

bool Is300wSubset(const std::string& name) {
  static const std::regex re("^(AFW|HELEN|IBUG|LFPW)(_Flip)?$");
  return std::regex_match(name, re);
}

bool IsAflwImage(const fs::path& p) {
  std::string n = p.filename().string();
  return n.rfind("image", 0) == 0 && Lower(p.extension().string()) == ".jpg";
}

void RequireDirectory(const std::string& root) {
  std::error_code ec;
  if (!fs::exists(root, ec)) throw InputError(root, "corpus root does not exist");
  if (!fs::is_directory(root, ec)) throw InputError(root, "corpus root is not a directory");
}

std::vector<std::string> SplitWs(const std::string& line) {
  std::istringstream ss(line);
  std::vector<std::string> out;
  std::string t;
  while (ss >> t) out.push_back(t);
  return out;
}

/// A CelebA-style list: "<count>\n<column names>\n<name> v1 v2 ...". Rows with the
/// wrong number of values or non-numbers are kept with an error message.
struct ListRow {
  std::vector<double> values;
  std::string error;  ///< "" when the row is well formed
};

std::map<std::string, ListRow> ReadCelebaList(const fs::path& path, size_t expected_values) {
  std::ifstream in(path);
  if (!in) throw InputError(path.string(), "cannot open the list file");
  std::string line;
  std::map<std::string, ListRow> rows;
  if (!std::getline(in, line)) throw InputError(path.string(), "empty list file");
  long count = -1;
  try {
    count = std::stol(line);
  } catch (const std::exception&) {
    throw InputError(path.string(), "line 1 must be the item count, got '" + line + "'");
  }
  if (!std::getline(in, line)) throw InputError(path.string(), "line 2 (column names) is missing");
  size_t line_no = 2;
  while (std::getline(in, line)) {
    ++line_no;
    auto tok = SplitWs(line);
    if (tok.empty()) continue;
    ListRow row;
    for (size_t i = 1; i < tok.size() && row.error.empty(); ++i) {
      try {
        size_t used = 0;
        double v = std::stod(tok[i], &used);
        if (used != tok[i].size()) throw std::invalid_argument(tok[i]);
        row.values.push_back(v);
      } catch (const std::exception&) {
        row.error = fmt::format("{} line {}: '{}' is not a number", path.string(), line_no, tok[i]);
      }
    }
    if (row.error.empty() && row.values.size() != expected_values)
      row.error = fmt::format("{} line {}: {} values for {}, expected {}", path.string(), line_no,
                              row.values.size(), tok[0], expected_values);
    if (row.error.empty())
      for (double v : row.values)
        if (!std::isfinite(v)) {
          row.error = fmt::format("{} line {}: NaN/infinite value for {}", path.string(), line_no, tok[0]);
          break;
        }
    rows[tok[0]] = std::move(row);
  }
  if (count >= 0 && static_cast<size_t>(count) != rows.size())
    log::Warn("{}: line 1 says {} rows, found {}", path.string(), count, rows.size());
  return rows;
}

/// Images of a 300W-LP / AFLW2000-3D directory, plus "<stem>.jpg" for every .mat whose
/// image is missing (so that the item is recorded as missing_image, not silently dropped).
template <typename Accept>
std::vector<fs::path> ImagesWithOrphanMats(const fs::path& dir, Accept accept) {
  std::set<std::string> stems_with_image;
  std::vector<fs::path> images, mats;
  for (const auto& f : fs::directory_iterator(dir)) {
    if (!f.is_regular_file() || !accept(f.path())) continue;
    if (IsImageFile(f.path())) {
      images.push_back(f.path());
      stems_with_image.insert(f.path().stem().string());
    } else if (Lower(f.path().extension().string()) == ".mat") {
      mats.push_back(f.path());
    }
  }
  for (const fs::path& m : mats)
    if (!stems_with_image.count(m.stem().string())) images.push_back(fs::path(m).replace_extension(".jpg"));
  return images;
}

std::vector<Candidate> List300wLp(const fs::path& root) {
  std::vector<Candidate> out;
  for (const auto& sub : fs::directory_iterator(root)) {
    if (!sub.is_directory() || !Is300wSubset(sub.path().filename().string())) continue;
    std::string subset = sub.path().filename().string();
    for (const fs::path& image : ImagesWithOrphanMats(sub.path(), [](const fs::path&) { return true; })) {
      Candidate c;
      c.item.image = Rel(image, root);
      c.item.id = IdFor("300w-lp", c.item.image);
      c.item.corpus = "300w-lp";
      c.item.subset = subset;
      c.metadata = fs::path(image).replace_extension(".mat").string();
      fs::path lm = root / "landmarks" / subset / (image.stem().string() + "_pts.mat");
      std::error_code ec;
      if (fs::is_regular_file(lm, ec)) c.extra_metadata = lm.string();
      out.push_back(std::move(c));
    }
  }
  return out;
}

std::vector<Candidate> ListAflw(const fs::path& root) {
  std::vector<Candidate> out;
  auto is_aflw = [](const fs::path& p) { return p.filename().string().rfind("image", 0) == 0; };
  for (const fs::path& image : ImagesWithOrphanMats(root, is_aflw)) {
    if (!IsAflwImage(image)) continue;
    Candidate c;
    c.item.image = Rel(image, root);
    c.item.id = IdFor("aflw2000", c.item.image);
    c.item.corpus = "aflw2000";
    c.metadata = fs::path(image).replace_extension(".mat").string();
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<Candidate> ListCeleba(const fs::path& root, const ReadOptions& opts) {
  std::error_code ec;
  bool aligned = fs::is_directory(root / "img_align_celeba", ec) ||
                 !fs::is_directory(root / "img_celeba", ec);
  fs::path img_dir = root / (aligned ? "img_align_celeba" : "img_celeba");
  fs::path lm_path = root / (aligned ? "list_landmarks_align_celeba.txt" : "list_landmarks_celeba.txt");
  if (!fs::is_directory(img_dir, ec)) throw InputError(img_dir.string(), "CelebA image directory is missing");
  if (!fs::is_regular_file(lm_path, ec))
    throw InputError(lm_path.string(), "CelebA landmark list is missing");
  auto landmarks = ReadCelebaList(lm_path, 10);
  std::map<std::string, ListRow> partition, identity, bbox;
  fs::path part_path = root / "list_eval_partition.txt";
  if (fs::is_regular_file(part_path, ec)) {
    // No count/header lines: "000001.jpg 0".
    std::ifstream in(part_path);
    std::string line;
    while (std::getline(in, line)) {
      auto tok = SplitWs(line);
      if (tok.size() >= 2) partition[tok[0]].values = {std::atof(tok[1].c_str())};
    }
  } else if (opts.partition != "all") {
    throw InputError(part_path.string(), "--partition " + opts.partition + " needs this file, which is missing");
  }
  fs::path id_path = root / "identity_CelebA.txt";
  if (fs::is_regular_file(id_path, ec)) {
    std::ifstream in(id_path);
    std::string line;
    while (std::getline(in, line)) {
      auto tok = SplitWs(line);
      if (tok.size() >= 2) identity[tok[0]].values = {std::atof(tok[1].c_str())};
    }
  }
  fs::path bbox_path = root / "list_bbox_celeba.txt";
  if (!aligned && fs::is_regular_file(bbox_path, ec)) bbox = ReadCelebaList(bbox_path, 4);

  std::map<std::string, bool> names;  // name -> listed in the landmark file
  for (const auto& [n, row] : landmarks) names[n] = true;
  for (const auto& f : fs::directory_iterator(img_dir))
    if (f.is_regular_file() && IsImageFile(f.path())) names.emplace(f.path().filename().string(), false);

  static const char* kPartitions[] = {"train", "val", "test"};
  std::vector<Candidate> out;
  for (const auto& [name, listed] : names) {
    Candidate c;
    c.item.image = Rel(img_dir / name, root);
    c.item.id = IdFor("celeba", c.item.image);
    c.item.corpus = "celeba";
    c.item.subset = aligned ? "aligned" : "wild";
    if (auto p = partition.find(name); p != partition.end()) {
      int k = static_cast<int>(p->second.values[0]);
      if (k >= 0 && k <= 2) c.item.partition = kPartitions[k];
    }
    if (opts.partition != "all" && c.item.partition != opts.partition) continue;
    if (auto p = identity.find(name); p != identity.end()) c.item.identity = static_cast<long>(p->second.values[0]);
    if (auto b = bbox.find(name); b != bbox.end() && b->second.error.empty()) {
      const auto& v = b->second.values;  // x_1 y_1 width height
      double o = opts.landmark_origin;
      c.item.bbox = {v[0] - o, v[1] - o, v[0] - o + v[2], v[1] - o + v[3]};
    }
    c.item.landmarks.convention = LandmarkConvention::kFive;
    c.item.landmarks.origin = opts.landmark_origin;
    if (!listed) {
      c.item.landmarks.convention = LandmarkConvention::kNone;
      c.item.Fail(reason::kNoLandmarks, lm_path.string() + ": no landmark row for " + name);
    } else {
      const ListRow& row = landmarks.at(name);
      if (!row.error.empty()) {
        c.item.Fail(reason::kBadLandmarks, row.error);
      } else {
        for (int i = 0; i < 5; ++i)
          c.item.landmarks.points.push_back(
              {row.values[2 * i] - opts.landmark_origin, row.values[2 * i + 1] - opts.landmark_origin});
      }
    }
    c.metadata = lm_path.string();
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<Candidate> ListFolder(const fs::path& root) {
  std::vector<Candidate> out;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    if (!it->is_regular_file() || !IsImageFile(it->path())) continue;
    Candidate c;
    c.item.image = Rel(it->path(), root);
    c.item.id = IdFor("folder", c.item.image);
    c.item.corpus = "folder";
    fs::path pts = fs::path(it->path()).replace_extension(".pts");
    std::error_code ec;
    if (fs::is_regular_file(pts, ec)) c.metadata = pts.string();
    out.push_back(std::move(c));
  }
  return out;
}

/// A parameter vector of `n` numbers stored as 1 x n or n x 1 (kept as stored).
void ReadParam(MatFile& mat, const std::string& name, size_t n, Item& it) {
  if (!mat.Has(name)) return;
  MatArray a = mat.Read(name);
  bool ok = a.dims.size() == 2 && ((a.dims[0] == 1 && a.dims[1] == n) || (a.dims[0] == n && a.dims[1] == 1));
  if (!ok)
    throw ItemError(reason::kBadMetadata, mat.path(),
                    fmt::format("variable '{}' has {} values in a {}x{} array, expected 1x{} or {}x1", name,
                                a.size(), a.rows(), a.cols(), n, n));
  it.ground_truth[name] = std::move(a);
}

void ReadParameters(MatFile& mat, Item& it) {
  ReadParam(mat, "Pose_Para", 7, it);
  ReadParam(mat, "Shape_Para", 199, it);
  ReadParam(mat, "Exp_Para", 29, it);
  ReadParam(mat, "Color_Para", 7, it);
  ReadParam(mat, "Illum_Para", 10, it);
  ReadParam(mat, "Tex_Para", 199, it);
  ReadParam(mat, "roi", 4, it);
}

/// Landmarks from rows 0 (x) and 1 (y) of a 2xN or 3xN column-major array.
Landmarks FromRows(const MatArray& a, int origin) {
  Landmarks l;
  l.convention = LandmarkConvention::kIbug68;
  l.origin = origin;
  for (size_t j = 0; j < a.cols(); ++j) l.points.push_back({a.at(0, j) - origin, a.at(1, j) - origin});
  return l;
}

void CheckInsideImage(const Landmarks& l, int w, int h, const std::string& path) {
  for (size_t i = 0; i < l.points.size(); ++i) {
    const Point2& p = l.points[i];
    if (p.x < -0.5 * w || p.x > 1.5 * w || p.y < -0.5 * h || p.y > 1.5 * h)
      throw ItemError(reason::kBadLandmarks, path,
                      fmt::format("landmark {} at ({:.1f}, {:.1f}) lies far outside the {}x{} image", i, p.x,
                                  p.y, w, h));
  }
}

std::unique_ptr<MatFile> OpenMetaPtr(const std::string& path) {
  std::error_code ec;
  if (path.empty() || !fs::is_regular_file(path, ec))
    throw ItemError(reason::kMissingMetadata, path, "the .mat file beside the image is missing");
  try {
    return std::make_unique<MatFile>(path);
  } catch (const InputError& e) {
    throw ItemError(reason::kBadMetadata, path, e.problem());
  }
}

std::vector<Item> LoadChecked(const Candidate& c, const std::string& root, const ReadOptions& opts) {
  Item it = c.item;
  std::string img_path = (fs::path(root) / it.image).string();
  cv::Mat img = LoadImageBgr(img_path, opts.max_pixels);
  it.width = img.cols;
  it.height = img.rows;
  if (it.corpus == "300w-lp" || it.corpus == "aflw2000") {
    auto mat = OpenMetaPtr(c.metadata);
    try {
      if (it.corpus == "300w-lp") {
        MatArray pt2d = mat->ReadShape("pt2d", 2, 68, /*allow_transpose=*/true);
        it.landmarks = FromRows(pt2d, opts.landmark_origin);
      } else {
        MatArray pt3d = mat->ReadShape("pt3d_68", 3, 68, /*allow_transpose=*/true);
        it.landmarks = FromRows(pt3d, opts.landmark_origin);
        it.ground_truth["pt3d_68"] = std::move(pt3d);
      }
      ReadParameters(*mat, it);
      if (!c.extra_metadata.empty()) {
        auto lm = OpenMetaPtr(c.extra_metadata);
        for (const char* name : {"pts_2d", "pts_3d"})
          if (lm->Has(name)) it.ground_truth[name] = lm->ReadShape(name, 68, 2, /*allow_transpose=*/true);
      }
    } catch (const ItemError&) {
      throw;
    } catch (const InputError& e) {
      throw ItemError(reason::kBadMetadata, e.path(), e.problem());
    }
    CheckLandmarks(it.landmarks, c.metadata);
    CheckInsideImage(it.landmarks, it.width, it.height, c.metadata);
    return {it};
  }
  if (it.corpus == "celeba") {
    CheckLandmarks(it.landmarks, c.metadata);
    CheckInsideImage(it.landmarks, it.width, it.height, c.metadata);
    return {it};
  }
  // folder
  std::vector<Landmarks> faces;
  std::vector<std::vector<double>> boxes;
  if (!c.metadata.empty()) {
    faces = ReadPtsFile(c.metadata, opts.landmark_origin);
    for (const Landmarks& l : faces) {
      CheckLandmarks(l, c.metadata);
      CheckInsideImage(l, it.width, it.height, c.metadata);
    }
  } else if (opts.detect) {
    if (!opts.detector) throw Error("LoadCandidate: --detect dlib without a detector");
    for (DetectedFace& f : opts.detector->Detect(img)) {
      faces.push_back(std::move(f.landmarks));
      boxes.push_back(std::move(f.bbox));
    }
    if (faces.empty()) throw ItemError(reason::kNoFace, img_path, "no face found by the dlib face detector");
  } else {
    throw ItemError(reason::kNoLandmarks, img_path,
                    "no landmark file " + fs::path(img_path).replace_extension(".pts").filename().string() +
                        " beside the image (or use --detect dlib)");
  }
  std::vector<Item> out;
  for (size_t k = 0; k < faces.size(); ++k) {
    Item f = it;
    f.face = static_cast<int>(k);
    if (k > 0) f.id += "#" + std::to_string(k);
    f.landmarks = faces[k];
    if (k < boxes.size()) f.bbox = boxes[k];
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

const char* ToString(CorpusKind k) {
  switch (k) {
    case CorpusKind::k300wLp: return "300w-lp";
    case CorpusKind::kAflw2000: return "aflw2000";
    case CorpusKind::kCeleba: return "celeba";
    default: return "folder";
  }
}

CorpusKind ParseCorpusKind(const std::string& s) {
  std::string l = Lower(s);
  if (l == "300w-lp" || l == "300wlp" || l == "300w_lp") return CorpusKind::k300wLp;
  if (l == "aflw2000" || l == "aflw2000-3d") return CorpusKind::kAflw2000;
  if (l == "celeba") return CorpusKind::kCeleba;
  if (l == "folder") return CorpusKind::kFolder;
  throw UsageError("--corpus: unknown corpus '" + s + "' (expected 300w-lp, aflw2000, celeba, folder or auto)");
}

CorpusKind DetectCorpusKind(const std::string& root) {
  RequireDirectory(root);
  fs::path r(root);
  std::error_code ec;
  bool any_image_top = false;
  for (const auto& e : fs::directory_iterator(r)) {
    std::string name = e.path().filename().string();
    if (e.is_directory() && Is300wSubset(name)) return CorpusKind::k300wLp;
    if (e.is_directory() && (name == "img_align_celeba" || name == "img_celeba")) return CorpusKind::kCeleba;
    if (e.is_regular_file() && name.rfind("list_landmarks", 0) == 0 && name.find("celeba") != std::string::npos)
      return CorpusKind::kCeleba;
    if (e.is_regular_file() && IsAflwImage(e.path()) &&
        fs::is_regular_file(fs::path(e.path()).replace_extension(".mat"), ec))
      return CorpusKind::kAflw2000;
    if (e.is_regular_file() && IsImageFile(e.path())) any_image_top = true;
  }
  if (any_image_top) return CorpusKind::kFolder;
  for (auto it = fs::recursive_directory_iterator(r, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it)
    if (it->is_regular_file() && IsImageFile(it->path())) return CorpusKind::kFolder;
  throw InputError(root,
                   "not a corpus: no 300W-LP subsets (AFW, HELEN, IBUG, LFPW[_Flip]), no AFLW2000-3D "
                   "image*.jpg + .mat, no CelebA img_align_celeba/, and no images for a folder corpus");
}

std::vector<Candidate> ListCandidates(CorpusKind kind, const std::string& root, const ReadOptions& opts) {
  RequireDirectory(root);
  fs::path r(root);
  std::vector<Candidate> out;
  switch (kind) {
    case CorpusKind::k300wLp: out = List300wLp(r); break;
    case CorpusKind::kAflw2000: out = ListAflw(r); break;
    case CorpusKind::kCeleba: out = ListCeleba(r, opts); break;
    case CorpusKind::kFolder: out = ListFolder(r); break;
  }
  if (out.empty()) {
    const char* expect = kind == CorpusKind::k300wLp    ? "AFW/HELEN/IBUG/LFPW[_Flip]/*.jpg"
                         : kind == CorpusKind::kAflw2000 ? "image*.jpg"
                         : kind == CorpusKind::kCeleba   ? "images in img_align_celeba/ (for this --partition)"
                                                         : "image files";
    throw InputError(root, fmt::format("empty {} corpus: no {} found", ToString(kind), expect));
  }
  std::sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) { return a.item.id < b.item.id; });
  return out;
}

std::vector<Item> LoadCandidate(const Candidate& c, const std::string& root, const ReadOptions& opts) {
  if (!c.item.ok()) return {c.item};
  try {
    return LoadChecked(c, root, opts);
  } catch (const ItemError& e) {
    Item it = c.item;
    it.Fail(e.code(), e.what());
    return {it};
  } catch (const std::exception& e) {
    Item it = c.item;
    it.Fail(reason::kError, e.what());
    return {it};
  }
}

std::vector<Item> ReadCorpus(CorpusKind kind, const std::string& root, const ReadOptions& opts) {
  std::vector<Item> items;
  for (const Candidate& c : ListCandidates(kind, root, opts))
    for (Item& it : LoadCandidate(c, root, opts)) items.push_back(std::move(it));
  return items;
}

}  // namespace facebatch::io

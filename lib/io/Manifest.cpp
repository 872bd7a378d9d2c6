#include "io/Manifest.h"

#include <facebatch/Version.h>
#include <fmt/format.h>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/Error.h"
#include "core/Log.h"

namespace facebatch::io {
namespace {

using nlohmann::json;

json NumberOrNull(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double NumberFrom(const json& j) {
  return j.is_null() ? std::numeric_limits<double>::quiet_NaN() : j.get<double>();
}

}  // namespace

std::vector<const Item*> Manifest::OkItems() const {
  std::vector<const Item*> out;
  for (const Item& it : items)
    if (it.ok()) out.push_back(&it);
  return out;
}

std::string ItemToLine(const Item& item) {
  json j;
  j["id"] = item.id;
  j["image"] = item.image;
  j["width"] = item.width;
  j["height"] = item.height;
  j["face"] = item.face;
  json lm;
  lm["convention"] = ToString(item.landmarks.convention);
  lm["origin"] = item.landmarks.origin;
  json pts = json::array();
  for (const Point2& p : item.landmarks.points) pts.push_back({NumberOrNull(p.x), NumberOrNull(p.y)});
  lm["points"] = std::move(pts);
  j["landmarks"] = std::move(lm);
  json bbox = json::array();
  for (double v : item.bbox) bbox.push_back(NumberOrNull(v));
  j["bbox"] = std::move(bbox);
  json gt = json::object();
  for (const auto& [name, a] : item.ground_truth) {
    json v = json::array();
    for (double x : a.values) v.push_back(NumberOrNull(x));
    gt[name] = {{"class", a.mat_class}, {"dims", a.dims}, {"values", std::move(v)}};
  }
  j["ground_truth"] = std::move(gt);
  j["partition"] = item.partition;
  j["identity"] = item.identity;
  j["corpus"] = item.corpus;
  j["subset"] = item.subset;
  j["status"] = ToString(item.status);
  j["reason_code"] = item.reason_code;
  j["reason"] = item.reason;
  return j.dump();
}

Item ItemFromLine(const std::string& line, const std::string& path, size_t line_no) {
  auto bad = [&](const std::string& what) {
    return InputError(path, fmt::format("line {}: {}", line_no, what));
  };
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    throw bad(std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) throw bad("an item line must be a JSON object");
  try {
    Item it;
    it.id = j.at("id").get<std::string>();
    it.image = j.at("image").get<std::string>();
    it.width = j.value("width", 0);
    it.height = j.value("height", 0);
    it.face = j.value("face", 0);
    if (j.contains("landmarks")) {
      const json& lm = j.at("landmarks");
      it.landmarks.convention = ParseLandmarkConvention(lm.value("convention", "none"));
      it.landmarks.origin = lm.value("origin", 0);
      for (const json& p : lm.at("points")) {
        if (!p.is_array() || p.size() != 2) throw bad("a landmark point must be [x, y]");
        it.landmarks.points.push_back({NumberFrom(p[0]), NumberFrom(p[1])});
      }
    }
    if (j.contains("bbox"))
      for (const json& v : j.at("bbox")) it.bbox.push_back(NumberFrom(v));
    if (j.contains("ground_truth")) {
      for (const auto& [name, g] : j.at("ground_truth").items()) {
        MatArray a;
        a.mat_class = g.value("class", "double");
        a.dims = g.at("dims").get<std::vector<size_t>>();
        for (const json& v : g.at("values")) a.values.push_back(NumberFrom(v));
        size_t n = 1;
        for (size_t d : a.dims) n *= d;
        if (n != a.values.size()) throw bad("ground truth '" + name + "' dims do not match its values");
        it.ground_truth[name] = std::move(a);
      }
    }
    it.partition = j.value("partition", "");
    it.identity = j.value("identity", -1L);
    it.corpus = j.value("corpus", "");
    it.subset = j.value("subset", "");
    std::string status = j.value("status", "ok");
    if (status == "ok") it.status = ItemStatus::kOk;
    else if (status == "failed") it.status = ItemStatus::kFailed;
    else throw bad("unknown item status '" + status + "'");
    it.reason_code = j.value("reason_code", "");
    it.reason = j.value("reason", "");
    return it;
  } catch (const json::exception& e) {
    throw bad(std::string("bad item (") + e.what() + ")");
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {
    throw bad(e.what());
  }
}

uint64_t Fnv1a64(const std::string& bytes, uint64_t state) {
  for (unsigned char c : bytes) {
    state ^= c;
    state *= 1099511628211ull;
  }
  return state;
}

std::string ItemsHash(const std::vector<Item>& items) {
  uint64_t h = kFnvOffset;
  for (const Item& it : items) h = Fnv1a64(ItemToLine(it) + "\n", h);
  return fmt::format("fnv1a64:{:016x}", h);
}

std::map<std::string, int64_t> CountItems(const std::vector<Item>& items) {
  std::map<std::string, int64_t> c{{"total", 0}, {"ok", 0}, {"failed", 0}};
  for (const Item& it : items) {
    ++c["total"];
    if (it.ok()) {
      ++c["ok"];
    } else {
      ++c["failed"];
      ++c["failed:" + it.reason_code];
    }
  }
  return c;
}

void WriteManifest(const std::string& path, Manifest& m) {
  std::string body;
  uint64_t h = kFnvOffset;
  for (const Item& it : m.items) {
    std::string line = ItemToLine(it) + "\n";
    h = Fnv1a64(line, h);
    body += line;
  }
  m.header.format = kManifestFormat;
  m.header.version = kManifestVersion;
  m.header.items_hash = fmt::format("fnv1a64:{:016x}", h);
  m.header.counts = CountItems(m.items);
  m.header.created = log::UtcTimestamp();
  m.header.facebatch_version = FACEBATCH_VERSION;
  json hj;
  hj["format"] = m.header.format;
  hj["version"] = m.header.version;
  hj["corpus"] = m.header.corpus;
  hj["root"] = m.header.root;
  hj["created"] = m.header.created;
  hj["facebatch_version"] = m.header.facebatch_version;
  hj["counts"] = m.header.counts;
  hj["items_hash"] = m.header.items_hash;
  hj["options"] = m.header.options;
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError(path, "cannot write the manifest");
    out << hj.dump() << "\n" << body;
    out.flush();
    if (!out) throw InputError(path, "cannot write the manifest (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw InputError(path, "cannot move the manifest into place: " + ec.message());
}

Manifest ReadManifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path, "cannot open the manifest (missing or unreadable)");
  std::string line;
  if (!std::getline(in, line)) throw InputError(path, "empty file, not a facebatch manifest");
  json hj;
  try {
    hj = json::parse(line);
  } catch (const json::exception&) {
    throw InputError(path, "not a facebatch manifest (line 1 is not a JSON header)");
  }
  if (!hj.is_object() || hj.value("format", "") != kManifestFormat)
    throw InputError(path, std::string("not a facebatch manifest (header format is not '") +
                               kManifestFormat + "')");
  if (!hj.contains("version") || !hj["version"].is_number_integer())
    throw InputError(path, "manifest header has no integer version");
  int version = hj["version"].get<int>();
  if (version != kManifestVersion)
    throw InputError(path, fmt::format("unsupported manifest version {} (this facebatch reads version {})",
                                       version, kManifestVersion));
  Manifest m;
  try {
    m.header.version = version;
    m.header.corpus = hj.value("corpus", "");
    m.header.root = hj.value("root", "");
    m.header.created = hj.value("created", "");
    m.header.facebatch_version = hj.value("facebatch_version", "");
    if (hj.contains("counts")) m.header.counts = hj["counts"].get<std::map<std::string, int64_t>>();
    m.header.items_hash = hj.value("items_hash", "");
    if (hj.contains("options")) m.header.options = hj["options"].get<std::map<std::string, std::string>>();
  } catch (const json::exception& e) {
    throw InputError(path, std::string("bad manifest header (") + e.what() + ")");
  }
  uint64_t h = kFnvOffset;
  size_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    h = Fnv1a64(line + "\n", h);
    m.items.push_back(ItemFromLine(line, path, line_no));
  }
  std::string hash = fmt::format("fnv1a64:{:016x}", h);
  if (!m.header.items_hash.empty() && hash != m.header.items_hash)
    throw InputError(path, "items do not match the header's items_hash " + m.header.items_hash +
                               " (got " + hash + "): the manifest was truncated or edited");
  m.header.items_hash = hash;
  return m;
}

}  // namespace facebatch::io

#include "batch/Status.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "batch/ShardFile.h"
#include "batch/ShardWriter.h"
#include "core/Error.h"
#include "io/Hdf5Rows.h"
#include "io/Manifest.h"
#include "io/Shard.h"

namespace facebatch::batch {
namespace fs = std::filesystem;

namespace {

// shard-IIIII-of-NNNNN followed by one of the fit job's suffixes.
const std::regex& ShardNameRegex() {
  static const std::regex re(R"(^shard-(\d{5,})-of-(\d{5,})(\.h5|\.done\.json|\.parts|\.lock|\.h5\.tmp)$)");
  return re;
}

struct NameInfo {
  int index = -1, count = 0;
  std::string suffix;
};

bool ParseShardName(const std::string& name, NameInfo* out) {
  std::smatch m;
  if (!std::regex_match(name, m, ShardNameRegex())) return false;
  out->index = std::stoi(m[1]);
  out->count = std::stoi(m[2]);
  out->suffix = m[3];
  return true;
}

// True when another process holds the flock (a live `facebatch fit`).
bool LockHeld(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool held = false;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd, LOCK_UN);
  } else {
    held = errno == EWOULDBLOCK;
  }
  ::close(fd);
  return held;
}

// Closed parts (not .tmp) of a shard and the number of images in them.
int64_t ImagesInParts(const std::string& parts_dir, std::string* problem) {
  int64_t n = 0;
  std::error_code ec;
  if (!fs::is_directory(parts_dir, ec)) return 0;
  for (const auto& e : fs::directory_iterator(parts_dir, ec)) {
    const auto name = e.path().filename().string();
    if (name.rfind("part-", 0) != 0 || e.path().extension() != ".h5") continue;
    try {
      n += static_cast<int64_t>(ReadShardIds(e.path().string()).size());
    } catch (const std::exception& ex) {
      if (problem) *problem = ex.what();
    }
  }
  return n;
}

std::string FormatName(int index, int count) { return fmt::format("shard-{:05d}-of-{:05d}", index, count); }

}  // namespace

const char* ShardStateName(ShardState s) {
  switch (s) {
    case ShardState::kDone: return "done";
    case ShardState::kRunning: return "running";
    case ShardState::kFailed: return "failed";
    case ShardState::kMissing: return "missing";
  }
  return "?";
}

std::vector<int> FitDirScan::Indices(ShardState s) const {
  std::vector<int> out;
  for (const auto& sh : shards) {
    if (sh.state == s) out.push_back(sh.index);
  }
  return out;
}

std::map<std::string, int64_t> FitDirScan::ImageCounts() const {
  std::map<std::string, int64_t> c;
  c["total"] = 0;
  for (const auto& sh : shards) {
    if (sh.state != ShardState::kDone) continue;
    for (const auto& [k, v] : sh.counts) c[k] += v;
    c["total"] += std::max<int64_t>(sh.images, 0);
  }
  return c;
}

std::string VerifyCompleteShard(const std::string& file, const std::string& marker, std::map<std::string, int64_t>* counts,
                                int64_t* images) {
  if (!fs::exists(file)) return "no shard file " + fs::path(file).filename().string();
  if (!fs::exists(marker)) return "no completion marker (" + fs::path(marker).filename().string() + ")";
  nlohmann::json j;
  try {
    std::ifstream in(marker);
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    return "unreadable completion marker: " + std::string(e.what());
  }
  if (!j.is_object() || j.value("format", "") != "facebatch-shard-done") return "the completion marker has another format";
  if (j.value("schema_version", -1) != kShardSchemaVersion)
    return fmt::format("completion marker schema_version {} is not supported (this build reads {})", j.value("schema_version", -1),
                       kShardSchemaVersion);
  if (j.value("file", "") != fs::path(file).filename().string()) return "the completion marker names another file";
  try {
    io::hdf5::RowReader r(file);
    if (!r.HasAttr("/", "format") || r.StringAttr("/", "format") != kShardFormat) return "not a facebatch shard file";
    const int64_t version = r.IntAttr("/", "schema_version");
    if (version != kShardSchemaVersion)
      return fmt::format("shard schema_version {} is not supported (this build reads {})", version, kShardSchemaVersion);
    const int64_t n = r.IntAttr("/", "num_images");
    const int64_t marker_n = j.value("num_images", int64_t{-1});
    if (marker_n != n) return fmt::format("the marker counts {} images, the file {}", marker_n, n);
    const auto layout = LayoutOfFile(r);
    for (const auto& f : layout.fields) {
      if (!r.Exists(f.path)) return "missing dataset " + f.path;
      const auto info = r.Describe(f.path);
      if (info.dims.empty() || info.dims[0] != n) return fmt::format("{} has {} rows, num_images is {}", f.path, info.dims.empty() ? 0 : info.dims[0], n);
    }
    const auto ids = r.Read("/images/id").strings;
    if (IdsHash(ids) != j.value("ids_hash", "")) return "the ids in the file do not match the marker's ids_hash";
    if (counts || images) {
      const auto status = r.Read("/images/status").strings;
      const auto codes = r.Read("/images/reason_code").strings;
      std::map<std::string, int64_t> c;
      for (size_t i = 0; i < status.size(); ++i) {
        ++c[status[i]];
        if (status[i] != "ok") ++c["failed:" + codes[i]];
      }
      if (counts) *counts = c;
      if (images) *images = n;
    }
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

std::string CompactRanges(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  std::string out;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += j == i ? std::to_string(v[i]) : fmt::format("{}-{}", v[i], v[j]);
    i = j + 1;
  }
  return out;
}

FitDirScan ScanShards(const std::vector<std::string>& inputs, int num_shards, bool probe_locks) {
  if (inputs.empty()) throw UsageError("no fit output directory or shard files given");
  // base paths seen, by index; explicit files restrict the shard set.
  std::map<int, std::string> bases;
  std::set<int> counts_seen;
  bool any_dir = false;
  std::vector<std::string> dirs;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      any_dir = true;
      dirs.push_back(in);
      for (const auto& e : fs::directory_iterator(in, ec)) {
        NameInfo ni;
        if (!ParseShardName(e.path().filename().string(), &ni)) continue;
        if (num_shards > 0 && ni.count != num_shards) continue;  // another run's files in the same dir
        counts_seen.insert(ni.count);
        bases[ni.index] = (fs::path(in) / FormatName(ni.index, ni.count)).string();
      }
      if (ec) throw InputError(in, "cannot list the directory: " + ec.message());
    } else {
      NameInfo ni;
      const auto name = fs::path(in).filename().string();
      if (!ParseShardName(name, &ni) || ni.suffix != ".h5")
        throw InputError(in, "not a fit output directory or a shard file named shard-IIIII-of-NNNNN.h5");
      if (!fs::exists(in)) throw InputError(in, "no such file");
      counts_seen.insert(ni.count);
      const auto base = (fs::path(in).parent_path() / FormatName(ni.index, ni.count)).string();
      auto [it, fresh] = bases.emplace(ni.index, base);
      if (!fresh && it->second != base) throw UsageError(fmt::format("shard {} is given twice ({} and {})", ni.index, it->second, base));
    }
  }
  FitDirScan scan;
  if (num_shards > 0) {
    scan.num_shards = num_shards;
  } else {
    if (counts_seen.empty())
      throw UsageError(fmt::format("no shard files in {}: give the number of shards (--num-shards N)", fmt::format("{}", inputs.front())));
    if (counts_seen.size() > 1)
      throw UsageError(fmt::format("shard files of {} different shard counts ({}..{}): pick one with --num-shards", counts_seen.size(),
                                   *counts_seen.begin(), *counts_seen.rbegin()));
    scan.num_shards = *counts_seen.begin();
  }
  for (auto c : counts_seen) {
    if (c != scan.num_shards)
      throw UsageError(fmt::format("a shard file of {} shards is given, but the shard count is {}", c, scan.num_shards));
  }
  for (int i = 0; i < scan.num_shards; ++i) {
    ShardStatus s;
    s.index = i;
    auto it = bases.find(i);
    if (it == bases.end()) {
      s.state = ShardState::kMissing;
      s.reason = any_dir ? "no files of this shard" : "not among the inputs";
      if (any_dir) s.base = (fs::path(dirs.front()) / FormatName(i, scan.num_shards)).string();
      scan.shards.push_back(std::move(s));
      continue;
    }
    s.base = it->second;
    const auto paths = ShardPaths{s.base};
    std::string parts_problem;
    if (probe_locks && LockHeld(paths.lock())) {
      s.state = ShardState::kRunning;
      s.images_in_parts = ImagesInParts(paths.parts(), &parts_problem);
    } else if (fs::exists(paths.done())) {
      auto problem = VerifyCompleteShard(paths.file(), paths.done(), &s.counts, &s.images);
      if (problem.empty()) {
        s.state = ShardState::kDone;
      } else {
        s.state = ShardState::kFailed;
        s.reason = "completion marker does not verify: " + problem;
      }
    } else {
      s.state = ShardState::kFailed;
      s.images_in_parts = ImagesInParts(paths.parts(), &parts_problem);
      if (fs::exists(paths.file()))
        s.reason = "shard file without completion marker (stopped while consolidating)";
      else if (s.images_in_parts > 0)
        s.reason = fmt::format("stopped with {} image(s) in closed parts", s.images_in_parts);
      else
        s.reason = "stopped before any part was closed";
    }
    if (!parts_problem.empty() && s.reason.empty()) s.reason = "unreadable part: " + parts_problem;
    scan.shards.push_back(std::move(s));
  }
  return scan;
}

void StatusOptions::Check() const {
  if (dir.empty()) throw UsageError("status: a fit output directory is required");
  if (num_shards < 0) throw UsageError("status: --num-shards must be >= 1");
}

std::string StatusSummary::ToText() const {
  std::string s;
  const int n = scan.num_shards;
  auto line = [&](ShardState st) {
    auto idx = scan.Indices(st);
    s += fmt::format("{:<8} {:>6} / {}{}\n", ShardStateName(st), idx.size(), n, idx.empty() ? "" : "   " + CompactRanges(idx));
  };
  s += fmt::format("shards: {}\n", n);
  for (auto st : {ShardState::kDone, ShardState::kRunning, ShardState::kFailed, ShardState::kMissing}) line(st);
  for (const auto& sh : scan.shards) {
    if (sh.state == ShardState::kDone) continue;
    std::string progress;
    if (sh.state != ShardState::kMissing)
      progress = sh.images >= 0 ? fmt::format(" ({} of {} images in closed parts)", sh.images_in_parts, sh.images)
                                : fmt::format(" ({} images in closed parts)", sh.images_in_parts);
    s += fmt::format("  shard {:>5}: {}{}{}\n", sh.index, ShardStateName(sh.state), progress, sh.reason.empty() ? "" : ": " + sh.reason);
  }
  s += "images of done shards:\n";
  for (const auto& [k, v] : scan.ImageCounts()) s += fmt::format("  {:<28} {}\n", k, v);
  if (complete)
    s += "complete: every shard is done\n";
  else if (!resubmit.empty())
    s += fmt::format("resubmit: --array={}\n", resubmit);
  else
    s += "nothing to resubmit (shards still running)\n";
  return s;
}

std::string StatusSummary::ToJson() const {
  nlohmann::json j;
  j["format"] = "facebatch-status";
  j["schema_version"] = 1;
  j["num_shards"] = scan.num_shards;
  j["complete"] = complete;
  j["resubmit"] = resubmit;
  nlohmann::json states = nlohmann::json::object();
  for (auto st : {ShardState::kDone, ShardState::kRunning, ShardState::kFailed, ShardState::kMissing})
    states[ShardStateName(st)] = scan.Indices(st);
  j["states"] = states;
  j["images"] = scan.ImageCounts();
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& sh : scan.shards) {
    nlohmann::json o;
    o["index"] = sh.index;
    o["state"] = ShardStateName(sh.state);
    o["reason"] = sh.reason;
    o["images"] = sh.images;
    o["images_in_parts"] = sh.images_in_parts;
    o["counts"] = sh.counts;
    shards.push_back(o);
  }
  j["shards"] = shards;
  return j.dump(2) + "\n";
}

StatusSummary RunStatus(const StatusOptions& o) {
  o.Check();
  if (!fs::is_directory(o.dir)) throw InputError(o.dir, "not a directory (expected a fit output directory)");
  StatusSummary out;
  out.scan = ScanShards({o.dir}, o.num_shards);
  // Shard sizes of unfinished shards from the manifest (given, or recorded in any shard/part file).
  std::string manifest = o.manifest;
  if (manifest.empty()) {
    for (const auto& sh : out.scan.shards) {
      if (sh.base.empty() || !manifest.empty()) continue;
      std::vector<std::string> candidates{sh.file()};
      std::error_code ec;
      if (fs::is_directory(sh.base + ".parts", ec))
        for (const auto& e : fs::directory_iterator(sh.base + ".parts", ec))
          if (e.path().extension() == ".h5") candidates.push_back(e.path().string());
      for (const auto& c : candidates) {
        try {
          if (!fs::exists(c)) continue;
          io::hdf5::RowReader r(c);
          auto m = r.StringAttr("/", "manifest_path");
          if (fs::exists(m)) {
            manifest = m;
            break;
          }
        } catch (const std::exception&) {
        }
      }
    }
  }
  if (!manifest.empty()) {
    const auto m = io::ReadManifest(manifest);
    size_t ok = 0;
    for (const auto& it : m.items) ok += it.ok() ? 1 : 0;
    for (auto& sh : out.scan.shards) {
      if (sh.state == ShardState::kDone) continue;
      sh.images = static_cast<int64_t>(io::ShardPositions(ok, io::ShardSpec{sh.index, out.scan.num_shards}).size());
    }
  }
  auto todo = out.scan.Indices(ShardState::kFailed);
  for (int i : out.scan.Indices(ShardState::kMissing)) todo.push_back(i);
  out.resubmit = CompactRanges(todo);
  out.complete = static_cast<int>(out.scan.Indices(ShardState::kDone).size()) == out.scan.num_shards;
  return out;
}

}  // namespace facebatch::batch

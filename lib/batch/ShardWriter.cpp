#include "batch/ShardWriter.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/Disk.h"
#include "core/Error.h"
#include "core/Log.h"
#include "io/Manifest.h"

namespace facebatch::batch {
namespace fs = std::filesystem;

ShardPaths MakeShardPaths(const std::string& out_dir, const io::ShardSpec& spec) {
  return {(fs::path(out_dir) / fmt::format("shard-{:05d}-of-{:05d}", spec.index, spec.count)).string()};
}

ShardLock::ShardLock(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw InputError(path, std::string("cannot open the lock file: ") + std::strerror(errno) + DiskDiagnosis(path));
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
    held_ = true;
    return;
  }
  // The kernel releases an flock when its holder dies (SIGKILL included), so a
  // held lock always means a live process: never write beside it.
  ::close(fd_);
  fd_ = -1;
  throw Error(path + ": this shard is locked by another running process (a second `facebatch fit` on the "
                     "same shard); wait for it or stop it (a killed process's lock is released by itself)");
}

ShardLock::~ShardLock() {
  if (fd_ >= 0) {
    if (held_) ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

std::string IdsHash(const std::vector<std::string>& ids) {
  uint64_t h = io::kFnvOffset;
  for (const auto& id : ids) h = io::Fnv1a64(id + "\n", h);
  return fmt::format("fnv1a64:{:016x}", h);
}

ShardWriter::ShardWriter(ShardPaths paths, ShardHeader header, ShardLayout layout, int part_size)
    : paths_(std::move(paths)), header_(std::move(header)), layout_(std::move(layout)), part_size_(part_size) {}

ShardWriter::~ShardWriter() {
  if (consolidation_) CancelConsolidation();  // an interrupted or failed run: a rerun begins it again
}

bool ShardWriter::Complete() const { return fs::exists(paths_.file()) && fs::exists(paths_.done()); }

void ShardWriter::RemoveAll() {
  CancelConsolidation();
  std::error_code ec;
  fs::remove(paths_.done(), ec);
  fs::remove(paths_.file(), ec);
  fs::remove_all(paths_.parts(), ec);
  next_part_ = 0;
}

std::vector<std::string> ShardWriter::PartFiles() const {
  std::vector<std::string> out;
  if (!fs::exists(paths_.parts())) return out;
  for (const auto& e : fs::directory_iterator(paths_.parts())) {
    auto name = e.path().filename().string();
    if (name.rfind("part-", 0) == 0 && e.path().extension() == ".h5") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::set<std::string> ShardWriter::DoneIds() {
  std::set<std::string> done;
  if (!fs::exists(paths_.parts())) return done;
  for (const auto& e : fs::directory_iterator(paths_.parts())) {
    if (e.path().extension() == ".tmp") fs::remove(e.path());  // an unfinished part of a killed run
  }
  for (const auto& part : PartFiles()) {
    auto stem = fs::path(part).stem().string();  // part-000012
    next_part_ = std::max(next_part_, std::stoi(stem.substr(5)) + 1);
    for (auto& id : ReadShardIds(part)) {
      if (!done.insert(id).second) throw InputError(part, "image '" + id + "' is also in another part");
    }
  }
  return done;
}

void ShardWriter::Add(ImageRecord record) {
  buffer_.push_back(std::move(record));
  if (static_cast<int>(buffer_.size()) >= part_size_) Flush();
}

void ShardWriter::Flush() {
  if (buffer_.empty()) return;
  fs::create_directories(paths_.parts());
  const auto final_path = (fs::path(paths_.parts()) / fmt::format("part-{:06d}.h5", next_part_)).string();
  const auto tmp = final_path + ".tmp";
  auto write_part = [&] {
    try {
      WriteShardFile(tmp, header_, layout_, buffer_);
      io::hdf5::AtomicRename(tmp, final_path);
    } catch (...) {
      // A failed write (a full disk) leaves no part file behind; the records stay buffered, so
      // a later Flush retries the same part.
      std::error_code ec;
      fs::remove(tmp, ec);
      throw;
    }
  };
  try {
    write_part();
  } catch (const std::exception& e) {
    if (!consolidation_) throw;
    // The parts come first: the shard file's copy beside the fit holds the same images
    // again, so it is given up to free its space (Finish consolidates at the end), and the
    // part is written once more.
    AbandonConsolidation(std::string("a part could not be written: ") + e.what());
    write_part();
  }
  ++next_part_;
  written_ += static_cast<int64_t>(buffer_.size());
  log::Debug("wrote {} ({} images)", final_path, buffer_.size());
  buffer_.clear();
  if (consolidation_) {
    try {
      consolidation_->Add(final_path);
    } catch (const std::exception& e) {
      AbandonConsolidation(e.what());
    }
  }
}

void ShardWriter::BeginConsolidation(const std::vector<std::string>& shard_ids) {
  CancelConsolidation();  // and a .tmp left by a killed run: rebuilt from the parts
  std::map<std::string, int64_t> order;
  for (size_t i = 0; i < shard_ids.size(); ++i) order[shard_ids[i]] = static_cast<int64_t>(i);
  try {
    consolidation_ = std::make_unique<ShardConsolidation>(paths_.file() + ".tmp", header_, layout_, std::move(order));
    consolidation_ids_ = shard_ids;
    for (const auto& part : PartFiles()) consolidation_->Add(part);
  } catch (const std::exception& e) {
    AbandonConsolidation(e.what());
  }
}

void ShardWriter::CancelConsolidation() {
  consolidation_.reset();
  std::error_code ec;
  fs::remove(paths_.file() + ".tmp", ec);
}

void ShardWriter::AbandonConsolidation(const std::string& why) {
  log::Warn("{}: consolidating the parts beside the fit failed ({}); they are kept and consolidated at the end",
            paths_.file(), why);
  CancelConsolidation();
}

std::map<std::string, int64_t> ShardWriter::Finish(const std::vector<std::string>& shard_ids) {
  Flush();
  std::map<std::string, int64_t> order;
  for (size_t i = 0; i < shard_ids.size(); ++i) order[shard_ids[i]] = static_cast<int64_t>(i);
  const auto parts = PartFiles();
  const auto tmp = paths_.file() + ".tmp";
  try {
    // What was consolidated beside the fit is used when it was begun for these ids and holds
    // every one of them (each part added once: the parts hold nothing else); otherwise (never
    // begun, abandoned, other ids) all of it is done now.
    const bool incremental = consolidation_ && consolidation_ids_ == shard_ids &&
                             consolidation_->rows_added() == consolidation_->rows();
    bool done = false;
    if (incremental) {
      try {
        consolidation_->Close();
        done = true;
      } catch (const std::exception& e) {
        log::Warn("{}: closing the shard file consolidated beside the fit failed ({}); consolidating the parts again",
                  tmp, e.what());
      }
    }
    consolidation_.reset();
    if (!done) {
      std::error_code ec;
      fs::remove(tmp, ec);
      ConsolidateShardFiles(tmp, header_, layout_, parts, order);
    }
    io::hdf5::AtomicRename(tmp, paths_.file());
  } catch (...) {
    CancelConsolidation();  // the parts stay: a rerun consolidates them again
    throw;
  }
  // Counts by status from the consolidated file.
  std::map<std::string, int64_t> counts;
  io::hdf5::RowReader r(paths_.file());
  auto ids = r.Read("/images/id").strings;
  if (ids != shard_ids) throw InputError(paths_.file(), "consolidated ids differ from the shard's ids");
  auto status = r.Read("/images/status").strings;
  auto reasons = r.Read("/images/reason_code").strings;
  for (size_t i = 0; i < status.size(); ++i) {
    ++counts[status[i]];
    if (status[i] != "ok") ++counts["failed:" + reasons[i]];
  }
  nlohmann::json j;
  j["format"] = "facebatch-shard-done";
  j["schema_version"] = kShardSchemaVersion;
  j["file"] = fs::path(paths_.file()).filename().string();
  j["num_images"] = ids.size();
  j["counts"] = counts;
  j["ids_hash"] = IdsHash(ids);
  for (const auto& k : {"shard", "manifest_hash", "model_sha256"}) {
    auto it = header_.string_attrs.find(k);
    if (it != header_.string_attrs.end()) j[k] = it->second;
  }
  const auto done_tmp = paths_.done() + ".tmp";
  {
    std::ofstream f(done_tmp);
    f << j.dump(2) << "\n";
    if (!f) throw InputError(done_tmp, "cannot write the completion marker");
  }
  io::hdf5::AtomicRename(done_tmp, paths_.done());
  std::error_code ec;
  fs::remove_all(paths_.parts(), ec);
  return counts;
}

}  // namespace facebatch::batch

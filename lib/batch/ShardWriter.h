#pragma once
// Crash-safe, resumable writing of one shard (issue 7, "Resume and safety").
//
// Files of shard i of N in the output directory (base = shard-0000i-of-0000N):
//   base.lock                  flock(2) held while a process works on the shard
//   base.parts/part-KKKKKK.h5  closed part files of at most `part_size` images,
//                              written as part-KKKKKK.h5.tmp, fsynced, renamed
//   base.h5                    the consolidated shard (written as .tmp, renamed)
//   base.done.json             completion marker (counts by status, ids hash), written LAST
// Consolidation runs beside the fit: once the shard's ids are known
// (BeginConsolidation), every part is copied into base.h5.tmp as it closes, so
// on completion only the last part is left to copy. Order on completion:
// consolidate -> rename base.h5 -> write base.done.json -> delete base.parts.
// A kill at any moment loses at most the unflushed images:
// on restart the ids of every closed part are skipped; a base.h5 without its
// marker is rebuilt from the parts (which still exist then).
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "batch/ShardFile.h"
#include "io/Shard.h"

namespace facebatch::batch {

struct ShardPaths {
  std::string base;  ///< <out>/shard-00003-of-00016
  std::string file() const { return base + ".h5"; }
  std::string done() const { return base + ".done.json"; }
  std::string parts() const { return base + ".parts"; }
  std::string lock() const { return base + ".lock"; }
};
ShardPaths MakeShardPaths(const std::string& out_dir, const io::ShardSpec& spec);

/// An exclusive flock on a lock file (released by the destructor).
class ShardLock {
 public:
  /// Throws Error ("... is locked by another running process ...") when another
  /// process holds it. There is no override: flock(2) locks die with their
  /// process, so a held lock is always a live writer.
  explicit ShardLock(const std::string& path);
  ~ShardLock();
  ShardLock(const ShardLock&) = delete;
  ShardLock& operator=(const ShardLock&) = delete;
  bool held() const { return fd_ >= 0 && held_; }

 private:
  int fd_ = -1;
  bool held_ = false;
};

/// "fnv1a64:<hex>" over the ids, each followed by '\n'.
std::string IdsHash(const std::vector<std::string>& ids);

class ShardWriter {
 public:
  ShardWriter(ShardPaths paths, ShardHeader header, ShardLayout layout, int part_size);
  ~ShardWriter();  ///< an unfinished consolidation's base.h5.tmp is removed
  /// True when base.h5 and base.done.json exist (nothing left to do).
  bool Complete() const;
  /// Removes every output of the shard (parts, file, marker).
  void RemoveAll();
  /// Scans the closed parts (deleting stray .tmp files) and returns their ids.
  std::set<std::string> DoneIds();
  /// Buffers a record; writes a part when part_size records are buffered.
  void Add(ImageRecord record);
  /// Writes the buffered records (if any) as a closed part.
  void Flush();
  /// Opens base.h5.tmp for the shard's images in the order of `shard_ids` and copies
  /// every closed part into it; from then on each part is copied as it closes. Best
  /// effort: a failure (logged) leaves the parts as they are and Finish consolidates
  /// them all at the end instead.
  void BeginConsolidation(const std::vector<std::string>& shard_ids);
  /// Stops consolidating beside the fit and removes base.h5.tmp (an interrupted or
  /// failed run: its parts are what a rerun resumes from).
  void CancelConsolidation();
  /// Consolidates every part into base.h5 in the order of `shard_ids` (which
  /// must all be done; what BeginConsolidation already copied is not copied
  /// again), writes the marker, deletes the parts. Returns counts by status.
  std::map<std::string, int64_t> Finish(const std::vector<std::string>& shard_ids);
  int64_t written() const { return written_; }
  const ShardPaths& paths() const { return paths_; }

 private:
  std::vector<std::string> PartFiles() const;
  ShardPaths paths_;
  ShardHeader header_;
  ShardLayout layout_;
  int part_size_;
  int next_part_ = 0;
  int64_t written_ = 0;
  std::vector<ImageRecord> buffer_;
  void AbandonConsolidation(const std::string& why);
  std::unique_ptr<ShardConsolidation> consolidation_;  ///< open while parts are copied as they close
  std::vector<std::string> consolidation_ids_;         ///< the shard's ids it was opened for
};

}  // namespace facebatch::batch

#pragma once
// `facebatch status DIR` (issue 8): the state of every shard of a fit output
// directory (docs/fitjob.md, schemas/shard.md "Part files and completion marker"):
//   done     base.h5 + base.done.json, and the marker verifies against the file
//            (format, schema version, num_images = rows of every per-image
//            dataset, ids_hash over /images/id)
//   running  base.lock is flock(2)-held by a live `facebatch fit`
//   failed   started but stopped before completion (closed parts, a .h5 without
//            its marker, a marker that does not verify, or only a lock file):
//            resubmit it, the fit job resumes from its closed parts
//   missing  no trace of the shard at all: submit it
// The same scan is what `facebatch merge` verifies before it merges
// (batch/Merge.h). Output layout of --json: schemas/merge.md ("status --json").
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace facebatch::batch {

enum class ShardState { kDone, kRunning, kFailed, kMissing };
const char* ShardStateName(ShardState s);  ///< "done", "running", "failed", "missing"

struct ShardStatus {
  int index = 0;
  ShardState state = ShardState::kMissing;
  std::string reason;            ///< why failed/missing ("" when done/running)
  std::string base;              ///< <dir>/shard-IIIII-of-NNNNN (no extension)
  int64_t images = -1;           ///< images in the shard file (done) or the manifest's shard size when known, else -1
  int64_t images_in_parts = 0;   ///< images already in closed part files (running/failed)
  std::map<std::string, int64_t> counts;  ///< by status and "failed:<reason>" (done shards, from the verified file)
  std::string file() const { return base + ".h5"; }
  std::string marker() const { return base + ".done.json"; }
};

struct FitDirScan {
  int num_shards = 0;
  std::vector<ShardStatus> shards;  ///< index 0..N-1
  std::vector<int> Indices(ShardState s) const;
  std::map<std::string, int64_t> ImageCounts() const;  ///< summed counts of done shards ("total" included)
};

/// Scans `inputs` (fit output directories and/or shard files shard-IIIII-of-NNNNN.h5).
/// N = num_shards when > 0, else from the file names (all must agree; UsageError
/// when there is nothing to tell N). With explicit files, shards not given are
/// missing ("not among the inputs"). `probe_locks`: test the lock files with a
/// non-blocking shared flock (released at once) to tell running from failed.
FitDirScan ScanShards(const std::vector<std::string>& inputs, int num_shards, bool probe_locks = true);

/// Verifies a shard file against its completion marker; returns "" when they
/// agree, else the problem. Counts by status are stored into `counts`.
std::string VerifyCompleteShard(const std::string& file, const std::string& marker,
                                std::map<std::string, int64_t>* counts = nullptr, int64_t* images = nullptr);

/// Compact SLURM --array list: {0,1,2,3,7,9,10,11} -> "0-3,7,9-11" ("" when empty).
std::string CompactRanges(std::vector<int> indices);

struct StatusOptions {
  std::string dir;           ///< fit output directory (positional, required)
  int num_shards = 0;        ///< --num-shards N (0 = from the file names / attributes)
  std::string manifest;      ///< --manifest: shard sizes for the progress of running/failed shards ("" = the
                             ///< files' manifest_path attribute when that file still exists)
  bool json = false;         ///< --json: machine-readable output (schemas/merge.md)
  void Check() const;        ///< UsageError
};

struct StatusSummary {
  FitDirScan scan;
  std::string resubmit;      ///< --array= list of failed + missing shards
  bool complete = false;     ///< every shard done
  std::string ToText() const;
  std::string ToJson() const;
};

StatusSummary RunStatus(const StatusOptions& options);

}  // namespace facebatch::batch

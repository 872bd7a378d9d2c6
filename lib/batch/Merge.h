#pragma once
// `facebatch merge` (issue 8): one HDF5 view over the completed shard files of
// a fit, in the shard schema (schemas/shard.md; merged-file specifics in
// schemas/merge.md), so every reader of a shard reads it unchanged.
//
// Default: every per-image dataset is an HDF5 virtual dataset (VDS, HDF5 >=
// 1.10) mapping the rows of the shards, concatenated in shard-index order
// (rows of shard 0, then shard 1, ...). Source file names are stored RELATIVE
// to the merged file's directory (HDF5 resolves a relative VDS source against
// the directory of the virtual file), so the directory can move with its
// shards. `--copy` writes one self-contained file (chunked, shuffle + deflate,
// like a shard) with the same content.
//
// Before merging, every shard is verified (batch/Status.h ScanShards: the
// completion marker against the file: num_images, rows of every dataset,
// ids_hash) and the shards must agree (format, schema version, layout,
// manifest_hash, model_sha256, shard count; no id twice). Missing or
// incomplete shards are listed by index and the merge refuses (Error, exit 1)
// unless allow_missing, which records them in the root attributes.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace facebatch::batch {

struct MergeOptions {
  std::vector<std::string> inputs;  ///< positional: fit output directories and/or shard files
  std::string out;                  ///< --out merged file (required; written as .tmp and renamed)
  int num_shards = 0;               ///< --num-shards N (0 = from the file names)
  bool allow_missing = false;       ///< --allow-missing: merge the complete shards, record the others
  bool copy = false;                ///< --copy: one self-contained file instead of virtual datasets
  std::string command;              ///< recorded in the file (set by the CLI)
  void Check() const;               ///< UsageError
};

struct MergeSummary {
  std::string out;
  int num_shards = 0;
  std::vector<int> merged;     ///< shard indices in the file (row order)
  std::vector<int> missing;    ///< shards not merged (missing, failed or running), with allow_missing
  std::map<int, std::string> missing_reasons;
  int64_t num_images = 0;
  std::map<std::string, int64_t> counts;  ///< by status and "failed:<reason>"
  bool copy = false;
  std::string ToString() const;
};

MergeSummary RunMerge(const MergeOptions& options);

}  // namespace facebatch::batch

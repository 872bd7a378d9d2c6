#pragma once
// Sharding a manifest for SLURM array jobs / several workers.
//
// Rule (machine-independent, documented in docs/io.md): only items with status ok
// take part; take them in manifest order (sorted by id) and give the k-th ok item
// (k = 0, 1, ...) to shard k mod N. Every ok item is in exactly one shard, shard
// sizes differ by at most one, and because ids sort by corpus subset (e.g. 300W-LP
// AFW before HELEN, originals before _Flip), round-robin spreads every subset (and
// so image sizes, poses, per-item cost) evenly over the shards, unlike contiguous
// blocks.
#include <string>
#include <vector>

#include "io/Manifest.h"

namespace facebatch::io {

struct ShardSpec {
  int index = 0;  ///< 0-based shard index
  int count = 1;  ///< number of shards N

  /// Parses "i/N" (0 <= i < N) or "auto" (i = $SLURM_ARRAY_TASK_ID, N = num_shards,
  /// which must then be given: a resubmitted subset of an array changes
  /// SLURM_ARRAY_TASK_COUNT, so N is never taken from the environment).
  /// num_shards > 0 must agree with an explicit "/N". Throws UsageError.
  static ShardSpec Parse(const std::string& text, int num_shards = 0);
  std::string ToString() const;  ///< "i/N"
  bool Contains(size_t ok_position) const { return static_cast<int>(ok_position % count) == index; }
};

/// Positions (into the list of ok items) that shard `spec` owns, ascending.
std::vector<size_t> ShardPositions(size_t num_ok_items, const ShardSpec& spec);
/// The ok items of shard `spec`, in manifest order.
std::vector<const Item*> SelectShard(const Manifest& manifest, const ShardSpec& spec);

struct ShardPlanRow {
  int shard = 0;
  size_t count = 0;
  std::string first_id, last_id;  ///< "" for an empty shard
};
std::vector<ShardPlanRow> PlanShards(const Manifest& manifest, int num_shards);

/// `facebatch shards`: print the shard plan of a manifest, or the ids of one shard.
struct ShardsOptions {
  std::string manifest;  ///< --manifest (required)
  int num_shards = 1;    ///< --num-shards N (>= 1)
  std::string shard;     ///< --shard i/N|auto: list that shard's item ids instead of the plan ("" = plan)
  void Check() const;    ///< throws UsageError
};
struct ShardsSummary {
  std::string items_hash;
  size_t total = 0, ok = 0;
  std::vector<ShardPlanRow> rows;   ///< the plan (when no --shard)
  std::vector<std::string> ids;     ///< the selected shard's ids (with --shard)
  std::string selected;             ///< "i/N" with --shard, else ""
  std::string ToString() const;     ///< the printed table, or one id per line
};
ShardsSummary RunShards(const ShardsOptions& options);

}  // namespace facebatch::io

#include "io/Shard.h"

#include <fmt/format.h>

#include <cctype>

#include "core/Env.h"
#include "core/Error.h"

namespace facebatch::io {
namespace {
int ParseInt(const std::string& s, const char* what) {
  if (s.empty() || s.size() > 9) throw UsageError(std::string("--shard: bad ") + what + " '" + s + "'");
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c)))
      throw UsageError(std::string("--shard: bad ") + what + " '" + s + "'");
  return std::stoi(s);
}
}  // namespace

ShardSpec ShardSpec::Parse(const std::string& text, int num_shards) {
  if (num_shards < 0) throw UsageError("--num-shards must be >= 1");
  ShardSpec s;
  if (text == "auto") {
    if (num_shards <= 0)
      throw UsageError("--shard auto needs --num-shards N (the shard count is never read from SLURM)");
    auto task = env::GetLong("SLURM_ARRAY_TASK_ID");
    if (!task) throw UsageError("--shard auto: SLURM_ARRAY_TASK_ID is not set (not in a SLURM array job?)");
    if (*task < 0 || *task >= num_shards)
      throw UsageError(fmt::format("--shard auto: SLURM_ARRAY_TASK_ID={} is outside 0..{} "
                                   "(submit with --array=0-{})", *task, num_shards - 1, num_shards - 1));
    s.index = static_cast<int>(*task);
    s.count = num_shards;
    return s;
  }
  size_t slash = text.find('/');
  if (slash == std::string::npos) {
    if (num_shards <= 0) throw UsageError("--shard '" + text + "': expected i/N or auto");
    s.index = ParseInt(text, "shard index");
    s.count = num_shards;
  } else {
    s.index = ParseInt(text.substr(0, slash), "shard index");
    s.count = ParseInt(text.substr(slash + 1), "shard count");
    if (num_shards > 0 && num_shards != s.count)
      throw UsageError(fmt::format("--shard {} disagrees with --num-shards {}", text, num_shards));
  }
  if (s.count < 1) throw UsageError("--shard " + text + ": the shard count must be >= 1");
  if (s.index >= s.count)
    throw UsageError(fmt::format("--shard {}: index must be in 0..{} (shards are 0-based)", text, s.count - 1));
  return s;
}

std::string ShardSpec::ToString() const { return fmt::format("{}/{}", index, count); }

std::vector<size_t> ShardPositions(size_t n, const ShardSpec& spec) {
  std::vector<size_t> out;
  for (size_t p = static_cast<size_t>(spec.index); p < n; p += static_cast<size_t>(spec.count)) out.push_back(p);
  return out;
}

std::vector<const Item*> SelectShard(const Manifest& m, const ShardSpec& spec) {
  std::vector<const Item*> ok = m.OkItems(), out;
  for (size_t p : ShardPositions(ok.size(), spec)) out.push_back(ok[p]);
  return out;
}

std::vector<ShardPlanRow> PlanShards(const Manifest& m, int num_shards) {
  if (num_shards < 1) throw UsageError("--num-shards must be >= 1");
  std::vector<ShardPlanRow> rows;
  for (int k = 0; k < num_shards; ++k) {
    auto items = SelectShard(m, ShardSpec{k, num_shards});
    ShardPlanRow r;
    r.shard = k;
    r.count = items.size();
    if (!items.empty()) {
      r.first_id = items.front()->id;
      r.last_id = items.back()->id;
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

void ShardsOptions::Check() const {
  if (manifest.empty()) throw UsageError("--manifest is required");
  if (num_shards < 1) throw UsageError("--num-shards must be >= 1");
  if (!shard.empty()) ShardSpec::Parse(shard, num_shards);
}

std::string ShardsSummary::ToString() const {
  if (!selected.empty()) {
    std::string s = fmt::format("# shard {}: {} of {} ok items, items_hash {}\n", selected, ids.size(), ok, items_hash);
    for (const std::string& id : ids) s += id + "\n";
    return s;
  }
  std::string s = fmt::format("# manifest items: {} ({} ok; only ok items are sharded), items_hash {}\n",
                              total, ok, items_hash);
  s += fmt::format("{:>5}  {:>8}  {:<40}  {}\n", "shard", "items", "first", "last");
  for (const auto& r : rows)
    s += fmt::format("{:>5}  {:>8}  {:<40}  {}\n", fmt::format("{}/{}", r.shard, rows.size()), r.count,
                     r.first_id.empty() ? "-" : r.first_id, r.last_id.empty() ? "-" : r.last_id);
  return s;
}

ShardsSummary RunShards(const ShardsOptions& o) {
  o.Check();
  Manifest m = ReadManifest(o.manifest);
  ShardsSummary s;
  s.items_hash = m.header.items_hash;
  s.total = m.items.size();
  s.ok = m.OkItems().size();
  if (!o.shard.empty()) {
    ShardSpec spec = ShardSpec::Parse(o.shard, o.num_shards);
    s.selected = spec.ToString();
    for (const Item* it : SelectShard(m, spec)) s.ids.push_back(it->id);
  } else {
    s.rows = PlanShards(m, o.num_shards);
  }
  return s;
}

}  // namespace facebatch::io

#include "batch/Merge.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <set>

#include "batch/ShardFile.h"
#include "batch/ShardWriter.h"
#include "batch/Status.h"
#include "core/Disk.h"
#include "core/Error.h"
#include "core/Log.h"
#include "io/Hdf5Rows.h"

namespace facebatch::batch {
namespace fs = std::filesystem;

namespace {

// Root attributes the shards must agree on (else they are not one fit).
const std::vector<std::string>& SharedStringAttrs() {
  static const std::vector<std::string> v = {"format", "manifest_hash", "model_sha256", "fit_terms", "outputs", "dtype"};
  return v;
}
const std::vector<std::string>& SharedIntAttrs() {
  static const std::vector<std::string> v = {"schema_version", "shard_count",   "image_size",   "latent_shape", "latent_albedo",
                                             "uv_rows",        "uv_cols",       "num_vertices", "num_triangles"};
  return v;
}

struct Source {
  int index = 0;
  io::hdf5::RowSource span;  ///< path as scanned; vds_name relative to the merged file's directory
  std::string ids_hash;
};

std::string DescribeBad(const FitDirScan& scan, const std::vector<int>& bad) {
  std::string s;
  for (int i : bad) {
    const auto& sh = scan.shards[i];
    s += fmt::format("\n  shard {}: {}{}", i, ShardStateName(sh.state), sh.reason.empty() ? "" : " (" + sh.reason + ")");
  }
  return s;
}

}  // namespace

void MergeOptions::Check() const {
  if (inputs.empty()) throw UsageError("merge: give the fit output directory or the shard files");
  if (out.empty()) throw UsageError("merge: --out is required");
  if (num_shards < 0) throw UsageError("merge: --num-shards must be >= 1");
  if (fs::path(out).extension() != ".h5") throw UsageError("merge: --out must name an .h5 file, got '" + out + "'");
}

std::string MergeSummary::ToString() const {
  std::string c;
  for (const auto& [k, v] : counts) c += fmt::format("{}{} {}", c.empty() ? "" : ", ", k, v);
  std::string s = fmt::format("merged {} of {} shards ({}) into {} ({}): {} images ({})", merged.size(), num_shards,
                              CompactRanges(merged), out, copy ? "self-contained copy" : "virtual datasets", num_images, c);
  if (!missing.empty()) {
    s += fmt::format("\nMISSING shards (not merged, recorded in the file): {}", CompactRanges(missing));
    for (const auto& [i, r] : missing_reasons) s += fmt::format("\n  shard {}: {}", i, r);
  }
  return s + "\n";
}

MergeSummary RunMerge(const MergeOptions& o) {
  o.Check();
  const auto scan = ScanShards(o.inputs, o.num_shards);
  MergeSummary sum;
  sum.out = o.out;
  sum.copy = o.copy;
  sum.num_shards = scan.num_shards;
  std::vector<int> bad;
  for (const auto& sh : scan.shards) {
    if (sh.state == ShardState::kDone) {
      sum.merged.push_back(sh.index);
    } else {
      bad.push_back(sh.index);
      sum.missing_reasons[sh.index] = std::string(ShardStateName(sh.state)) + (sh.reason.empty() ? "" : ": " + sh.reason);
    }
  }
  if (!bad.empty() && !o.allow_missing) {
    throw Error(fmt::format("merge refused: {} of {} shards are not complete ({}):{}\nresubmit them (sbatch --array={}), "
                            "or pass --allow-missing to merge the {} complete shard(s) and record the gaps",
                            bad.size(), scan.num_shards, CompactRanges(bad), DescribeBad(scan, bad), CompactRanges(bad),
                            sum.merged.size()));
  }
  sum.missing = bad;
  if (sum.merged.empty()) throw Error(fmt::format("merge: none of the {} shards is complete: nothing to merge", scan.num_shards));

  const fs::path out_abs = fs::absolute(o.out);
  const fs::path out_dir = out_abs.parent_path();
  fs::create_directories(out_dir);

  // Sources in shard order; the shards must agree with the first one.
  std::vector<Source> sources;
  std::set<std::string> all_ids;
  const std::string first = scan.shards[sum.merged.front()].file();
  std::map<std::string, std::string> ref_s;
  std::map<std::string, int64_t> ref_i;
  int64_t total = 0;
  for (int idx : sum.merged) {
    const auto& sh = scan.shards[idx];
    io::hdf5::RowReader r(sh.file());
    for (const auto& a : SharedStringAttrs()) {
      const auto v = r.StringAttr("/", a);
      if (idx == sum.merged.front()) ref_s[a] = v;
      else if (v != ref_s[a])
        throw InputError(sh.file(), fmt::format("root attribute {} is '{}' but '{}' in {}: these shards are not of one fit", a, v, ref_s[a], first));
    }
    for (const auto& a : SharedIntAttrs()) {
      const auto v = r.IntAttr("/", a);
      if (idx == sum.merged.front()) ref_i[a] = v;
      else if (v != ref_i[a])
        throw InputError(sh.file(), fmt::format("root attribute {} is {} but {} in {}: these shards are not of one fit", a, v, ref_i[a], first));
    }
    if (ref_i["shard_count"] != scan.num_shards || r.IntAttr("/", "shard_index") != idx)
      throw InputError(sh.file(), fmt::format("the file says it is shard {}/{}, its name says {}/{}", r.IntAttr("/", "shard_index"),
                                              r.IntAttr("/", "shard_count"), idx, scan.num_shards));
    const auto ids = r.Read("/images/id").strings;
    for (const auto& id : ids) {
      if (!all_ids.insert(id).second) throw InputError(sh.file(), "image '" + id + "' is also in an earlier shard");
    }
    Source s;
    s.index = idx;
    s.span.path = sh.file();
    s.span.vds_name = fs::relative(fs::absolute(sh.file()), out_dir).string();
    s.span.rows = static_cast<int64_t>(ids.size());
    s.span.first_row = total;
    s.ids_hash = IdsHash(ids);
    total += s.span.rows;
    sources.push_back(s);
    for (const auto& [k, v] : sh.counts) sum.counts[k] += v;
  }
  sum.num_images = total;

  // Layout of the first shard (all agree on the attributes that define it).
  ShardLayout layout;
  {
    io::hdf5::RowReader r(first);
    layout = LayoutOfFile(r);
  }

  const std::string tmp = out_abs.string() + ".tmp";
  try {
    {
      io::hdf5::RowReader src(first);
      io::hdf5::RowWriter file(tmp, /*hdf5_1_8_format=*/false);  // virtual datasets need HDF5 >= 1.10
      // Root attributes of the first shard, then the merged ones (schemas/merge.md).
      file.CopyRootAttributes(src);
      nlohmann::json js = nlohmann::json::array();
      std::vector<io::hdf5::RowSource> rows;
      for (const auto& s : sources) {
        js.push_back({{"shard", s.index}, {"file", s.span.vds_name}, {"first_row", s.span.first_row}, {"rows", s.span.rows},
                      {"ids_hash", s.ids_hash}});
        rows.push_back(s.span);
      }
      file.Attr("/", "num_images", total);
      file.Attr("/", "shard", std::string("merged"));
      file.Attr("/", "shard_index", int64_t{-1});
      file.Attr("/", "command", o.command);
      file.Attr("/", "merged_version", int64_t{1});
      file.Attr("/", "merged_storage", std::string(o.copy ? "copy" : "virtual"));
      file.Attr("/", "merged_num_shards", static_cast<int64_t>(scan.num_shards));
      file.Attr("/", "merged_shards", CompactRanges(sum.merged));
      file.Attr("/", "merged_missing", CompactRanges(sum.missing));
      file.Attr("/", "merged_sources", js.dump());
      // The topology once (a real copy: small).
      file.CopyObject(src, "/topology");
      for (const auto& f : layout.fields) {
        if (o.copy) file.CreateConcatenated(f.path, src, rows, total);
        else file.CreateVirtual(f.path, src, rows, total);
      }
      file.Close();
    }
    io::hdf5::AtomicRename(tmp, out_abs.string());
  } catch (const InputError& e) {
    // Nothing half-written stays behind (a full disk, a read-only directory): the rerun starts clean.
    const std::string why = DiskDiagnosis(tmp);  // before the removal frees the space
    std::error_code ec;
    fs::remove(tmp, ec);
    // Write failures of the HDF5 layer carry the diagnosis already.
    throw InputError(e.path(), e.problem().find(why) == std::string::npos ? e.problem() + why : e.problem());
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  log::Info("merged {} shard(s) into {} ({} images{})", sum.merged.size(), o.out, total,
            sum.missing.empty() ? "" : ", MISSING shards " + CompactRanges(sum.missing));
  return sum;
}

}  // namespace facebatch::batch

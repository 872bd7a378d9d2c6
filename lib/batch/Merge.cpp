#include "batch/Merge.h"
#include "batch/H5Id.h"

#include <hdf5.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <set>

#include "batch/H5.h"
#include "batch/ShardFile.h"
#include "batch/ShardWriter.h"
#include "batch/Status.h"
#include "core/Disk.h"
#include "core/Error.h"
#include "core/Log.h"

namespace facebatch::batch {
namespace fs = std::filesystem;

namespace {

using h5::Id;

[[noreturn]] void Fail(const std::string& file, const std::string& what) { throw InputError(file, what); }

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

struct CopyAttrContext {
  hid_t dst;
  std::string src_path;
};

herr_t CopyAttr(hid_t loc, const char* name, const H5A_info_t*, void* data) {
  auto* ctx = static_cast<CopyAttrContext*>(data);
  Id a(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
  Id type(H5Aget_type(a.id), H5Tclose);
  Id space(H5Aget_space(a.id), H5Sclose);
  const hssize_t n = std::max<hssize_t>(H5Sget_simple_extent_npoints(space.id), 1);
  std::vector<char> buf(static_cast<size_t>(n) * H5Tget_size(type.id));
  if (H5Aread(a.id, type.id, buf.data()) < 0) return -1;
  Id b(H5Acreate2(ctx->dst, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  herr_t e = b.id < 0 ? -1 : H5Awrite(b.id, type.id, buf.data());
  if (H5Tdetect_class(type.id, H5T_VLEN) > 0 || H5Tis_variable_str(type.id) > 0) H5Dvlen_reclaim(type.id, space.id, H5P_DEFAULT, buf.data());
  return e;
}

hid_t StringType() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

void SetAttr(hid_t obj, const std::string& file, const std::string& name, const std::string& value) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  Id type(StringType(), H5Tclose);
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id a(H5Acreate2(obj, name.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* p = value.c_str();
  if (a.id < 0 || H5Awrite(a.id, type.id, &p) < 0) Fail(file, "cannot write attribute " + name);
}

void SetAttr(hid_t obj, const std::string& file, const std::string& name, int64_t value) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (a.id < 0 || H5Awrite(a.id, H5T_NATIVE_INT64, &value) < 0) Fail(file, "cannot write attribute " + name);
}

struct Source {
  int index = 0;
  std::string path;      ///< as scanned
  std::string relative;  ///< relative to the merged file's directory (VDS source name)
  int64_t rows = 0;
  int64_t first_row = 0;
  std::string ids_hash;
};

std::vector<int64_t> DatasetDims(hid_t d) {
  Id space(H5Dget_space(d), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> dims(std::max(rank, 0));
  if (rank > 0) H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

// One per-image dataset as a virtual dataset over the sources' rows.
void CreateVirtual(hid_t file, const std::string& out, hid_t lcpl, const std::string& path, hid_t type,
                   const std::vector<int64_t>& row_dims, const std::vector<Source>& sources, int64_t total) {
  std::vector<hsize_t> dims{static_cast<hsize_t>(total)};
  for (auto d : row_dims) dims.push_back(static_cast<hsize_t>(d));
  const int rank = static_cast<int>(dims.size());
  Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  // Rows no source maps (never, after the checks) read as NaN rather than plausible zeros.
  if (H5Tget_class(type) == H5T_FLOAT) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    H5Pset_fill_value(dcpl.id, H5T_NATIVE_DOUBLE, &nan);
  }
  for (const auto& s : sources) {
    if (s.rows == 0) continue;
    Id vspace(H5Screate_simple(rank, dims.data(), nullptr), H5Sclose);
    std::vector<hsize_t> start(rank, 0), count = dims;
    start[0] = static_cast<hsize_t>(s.first_row);
    count[0] = static_cast<hsize_t>(s.rows);
    H5Sselect_hyperslab(vspace.id, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    Id sspace(H5Screate_simple(rank, count.data(), nullptr), H5Sclose);
    if (H5Pset_virtual(dcpl.id, vspace.id, s.relative.c_str(), path.c_str(), sspace.id) < 0)
      Fail(out, path + ": cannot map the rows of " + s.relative);
  }
  Id space(H5Screate_simple(rank, dims.data(), nullptr), H5Sclose);
  Id d(H5Dcreate2(file, path.c_str(), type, space.id, lcpl, dcpl.id, H5P_DEFAULT), H5Dclose);
  if (d.id < 0) Fail(out, path + ": cannot create the virtual dataset");
}

// One per-image dataset copied row block by row block (same storage as a shard).
void CreateCopy(hid_t file, const std::string& out, hid_t lcpl, const std::string& path, hid_t src_dcpl, hid_t type,
                const std::vector<int64_t>& row_dims, const std::vector<Source>& sources, int64_t total) {
  std::vector<hsize_t> dims{static_cast<hsize_t>(total)};
  for (auto d : row_dims) dims.push_back(static_cast<hsize_t>(d));
  const int rank = static_cast<int>(dims.size());
  auto maxdims = dims;
  maxdims[0] = H5S_UNLIMITED;
  Id space(H5Screate_simple(rank, dims.data(), maxdims.data()), H5Sclose);
  Id d(H5Dcreate2(file, path.c_str(), type, space.id, lcpl, src_dcpl, H5P_DEFAULT), H5Dclose);
  if (d.id < 0) Fail(out, path + ": cannot create the dataset");
  hsize_t row_bytes = H5Tget_size(type);
  for (size_t i = 1; i < dims.size(); ++i) row_bytes *= dims[i];
  const bool vlen = H5Tis_variable_str(type) > 0;
  const hsize_t block = std::max<hsize_t>(1, std::min<hsize_t>(64, (64u << 20) / std::max<hsize_t>(row_bytes, 1)));
  for (const auto& s : sources) {
    Id sf(H5Fopen(s.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (sf.id < 0) Fail(s.path, "cannot open");
    Id sd(H5Dopen2(sf.id, path.c_str(), H5P_DEFAULT), H5Dclose);
    if (sd.id < 0) Fail(s.path, path + ": missing dataset");
    Id sspace(H5Dget_space(sd.id), H5Sclose);
    Id dspace(H5Dget_space(d.id), H5Sclose);
    std::vector<char> buf;
    for (hsize_t r = 0; r < static_cast<hsize_t>(s.rows); r += block) {
      const hsize_t n = std::min<hsize_t>(block, s.rows - r);
      std::vector<hsize_t> start(rank, 0), count = dims;
      count[0] = n;
      start[0] = r;
      H5Sselect_hyperslab(sspace.id, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
      start[0] = static_cast<hsize_t>(s.first_row) + r;
      H5Sselect_hyperslab(dspace.id, H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
      Id mspace(H5Screate_simple(rank, count.data(), nullptr), H5Sclose);
      buf.assign(n * row_bytes, 0);
      if (H5Dread(sd.id, type, mspace.id, sspace.id, H5P_DEFAULT, buf.data()) < 0) Fail(s.path, path + ": cannot read");
      herr_t e = H5Dwrite(d.id, type, mspace.id, dspace.id, H5P_DEFAULT, buf.data());
      if (vlen) H5Dvlen_reclaim(type, mspace.id, H5P_DEFAULT, buf.data());
      if (e < 0) Fail(out, path + ": cannot write");
    }
  }
}

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
    h5::Reader r(sh.file());
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
    s.path = sh.file();
    s.relative = fs::relative(fs::absolute(sh.file()), out_dir).string();
    s.rows = static_cast<int64_t>(ids.size());
    s.first_row = total;
    s.ids_hash = IdsHash(ids);
    total += s.rows;
    sources.push_back(s);
    for (const auto& [k, v] : sh.counts) sum.counts[k] += v;
  }
  sum.num_images = total;

  // Layout of the first shard (all agree on the attributes that define it).
  ShardLayout layout;
  {
    h5::Reader r(first);
    layout = LayoutOfFile(r);
  }

  const std::string tmp = out_abs.string() + ".tmp";
  try {
    {
      Id src(H5Fopen(first.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
      if (src.id < 0) Fail(first, "cannot open");
      Id file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      if (file.id < 0) Fail(tmp, "cannot create the HDF5 file");
      Id lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
      H5Pset_create_intermediate_group(lcpl.id, 1);
      // Root attributes of the first shard, then the merged ones (schemas/merge.md).
      {
        Id sroot(H5Gopen2(src.id, "/", H5P_DEFAULT), H5Gclose);
        Id droot(H5Gopen2(file.id, "/", H5P_DEFAULT), H5Gclose);
        CopyAttrContext ctx{droot.id, first};
        if (H5Aiterate2(sroot.id, H5_INDEX_NAME, H5_ITER_INC, nullptr, CopyAttr, &ctx) < 0) Fail(tmp, "cannot copy the root attributes");
        nlohmann::json js = nlohmann::json::array();
        for (const auto& s : sources)
          js.push_back({{"shard", s.index}, {"file", s.relative}, {"first_row", s.first_row}, {"rows", s.rows}, {"ids_hash", s.ids_hash}});
        SetAttr(droot.id, tmp, "num_images", total);
        SetAttr(droot.id, tmp, "shard", std::string("merged"));
        SetAttr(droot.id, tmp, "shard_index", int64_t{-1});
        SetAttr(droot.id, tmp, "command", o.command);
        SetAttr(droot.id, tmp, "merged_version", int64_t{1});
        SetAttr(droot.id, tmp, "merged_storage", std::string(o.copy ? "copy" : "virtual"));
        SetAttr(droot.id, tmp, "merged_num_shards", static_cast<int64_t>(scan.num_shards));
        SetAttr(droot.id, tmp, "merged_shards", CompactRanges(sum.merged));
        SetAttr(droot.id, tmp, "merged_missing", CompactRanges(sum.missing));
        SetAttr(droot.id, tmp, "merged_sources", js.dump());
      }
      // The topology once (a real copy: small).
      if (H5Ocopy(src.id, "/topology", file.id, "/topology", H5P_DEFAULT, H5P_DEFAULT) < 0) Fail(tmp, "cannot copy /topology");
      for (const auto& f : layout.fields) {
        Id sd(H5Dopen2(src.id, f.path.c_str(), H5P_DEFAULT), H5Dclose);
        if (sd.id < 0) Fail(first, f.path + ": missing dataset");
        Id type(H5Dget_type(sd.id), H5Tclose);
        const auto dims = DatasetDims(sd.id);
        const std::vector<int64_t> row_dims(dims.begin() + 1, dims.end());
        if (o.copy) {
          Id dcpl(H5Dget_create_plist(sd.id), H5Pclose);
          CreateCopy(file.id, tmp, lcpl.id, f.path, dcpl.id, type.id, row_dims, sources, total);
        } else {
          CreateVirtual(file.id, tmp, lcpl.id, f.path, type.id, row_dims, sources, total);
        }
      }
      if (H5Fflush(file.id, H5F_SCOPE_GLOBAL) < 0) Fail(tmp, "cannot flush");
      const hid_t id = file.id;
      file.id = -1;
      if (H5Fclose(id) < 0) Fail(tmp, "cannot close the HDF5 file");
    }
    h5::AtomicRename(tmp, out_abs.string());
  } catch (const InputError& e) {
    // Nothing half-written stays behind (a full disk, a read-only directory): the rerun starts clean.
    const std::string why = DiskDiagnosis(tmp);  // before the removal frees the space
    std::error_code ec;
    fs::remove(tmp, ec);
    throw InputError(e.path(), e.problem() + why);
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

#include "io/Hdf5Rows.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include "core/Disk.h"
#include "core/Error.h"
#include "io/Hdf5Internal.h"

namespace facebatch::io::hdf5 {
namespace {

using detail::Fail;
using detail::Id;
using detail::Init;
using detail::NewStringType;
using detail::WriteFail;

std::vector<hsize_t> H(const std::vector<int64_t>& d) { return std::vector<hsize_t>(d.begin(), d.end()); }

// An existing attribute of that name goes first (H5Acreate2 refuses to replace one).
void DropAttr(hid_t obj, const std::string& name) {
  if (obj >= 0 && H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
}

}  // namespace

int64_t RowData::row_size() const {
  int64_t n = 1;
  for (size_t i = 1; i < dims.size(); ++i) n *= dims[i];
  return n;
}

RowWriter::RowWriter(const std::string& path, bool hdf5_1_8_format) : path_(path) {
  Init();
  Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (hdf5_1_8_format) H5Pset_libver_bounds(fapl.id, H5F_LIBVER_EARLIEST, H5F_LIBVER_V18);
  file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id);
  if (file_ < 0) WriteFail(path, "", "cannot create the HDF5 file");
}

RowWriter::~RowWriter() {
  if (file_ >= 0) H5Fclose(file_);
}

long long RowWriter::OpenDataset(const std::string& path) {
  hid_t d = H5Dopen2(file_, path.c_str(), H5P_DEFAULT);
  if (d < 0) WriteFail(path_, path, "no such dataset");
  return d;
}

void RowWriter::Group(const std::string& path) {
  std::string cur;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    cur = path.substr(0, next);
    if (H5Lexists(file_, cur.c_str(), H5P_DEFAULT) <= 0) {
      hid_t g = H5Gcreate2(file_, cur.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (g < 0) WriteFail(path_, cur, "cannot create group");
      H5Gclose(g);
    }
    pos = next + 1;
  }
}

void RowWriter::Attr(const std::string& object, const std::string& name, const std::string& value) {
  Id obj(H5Oopen(file_, object.c_str(), H5P_DEFAULT), H5Oclose);
  DropAttr(obj.id, name);
  Id type(NewStringType(), H5Tclose);
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id a(H5Acreate2(obj.id, name.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* p = value.c_str();
  if (obj.id < 0 || a.id < 0 || H5Awrite(a.id, type.id, &p) < 0) WriteFail(path_, object, "cannot write attribute " + name);
}

void RowWriter::Attr(const std::string& object, const std::string& name, int64_t value) {
  Id obj(H5Oopen(file_, object.c_str(), H5P_DEFAULT), H5Oclose);
  DropAttr(obj.id, name);
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id a(H5Acreate2(obj.id, name.c_str(), H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (obj.id < 0 || a.id < 0 || H5Awrite(a.id, H5T_NATIVE_INT64, &value) < 0)
    WriteFail(path_, object, "cannot write attribute " + name);
}

void RowWriter::Create(const std::string& path, DType dtype, const std::vector<int64_t>& dims, bool chunked) {
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) Group(path.substr(0, slash));
  auto hd = H(dims);
  auto maxd = hd;
  if (chunked) maxd[0] = H5S_UNLIMITED;
  Id space(H5Screate_simple(static_cast<int>(hd.size()), hd.data(), maxd.data()), H5Sclose);
  Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (chunked) {
    auto chunk = hd;
    chunk[0] = 1;
    for (size_t i = 1; i < chunk.size(); ++i) chunk[i] = std::max<hsize_t>(chunk[i], 1);
    H5Pset_chunk(dcpl.id, static_cast<int>(chunk.size()), chunk.data());
    H5Pset_shuffle(dcpl.id);
    H5Pset_deflate(dcpl.id, 4);
  }
  Id type(detail::NewFileType(dtype), H5Tclose);
  Id d(H5Dcreate2(file_, path.c_str(), type.id, space.id, H5P_DEFAULT, dcpl.id, H5P_DEFAULT), H5Dclose);
  if (d.id < 0) WriteFail(path_, path, "cannot create dataset");
}

void RowWriter::WriteRows(const std::string& path, int64_t row, int64_t count, const void* data) {
  if (count == 0) return;
  Id d(OpenDataset(path), H5Dclose);
  Id fspace(H5Dget_space(d.id), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(fspace.id);
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(fspace.id, dims.data(), nullptr);
  std::vector<hsize_t> start(rank, 0), cnt = dims;
  start[0] = row;
  cnt[0] = count;
  H5Sselect_hyperslab(fspace.id, H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr);
  Id mspace(H5Screate_simple(rank, cnt.data(), nullptr), H5Sclose);
  Id ftype(H5Dget_type(d.id), H5Tclose);
  hid_t mt = H5T_NATIVE_FLOAT;
  H5T_class_t cls = H5Tget_class(ftype.id);
  if (cls == H5T_INTEGER) mt = H5Tget_size(ftype.id) == 1 ? H5T_NATIVE_UINT8 : H5T_NATIVE_INT64;
  else if (cls == H5T_FLOAT && H5Tget_size(ftype.id) == 8) mt = H5T_NATIVE_DOUBLE;
  if (H5Dwrite(d.id, mt, mspace.id, fspace.id, H5P_DEFAULT, data) < 0) WriteFail(path_, path, "cannot write rows");
}

void RowWriter::WriteStrings(const std::string& path, int64_t row, const std::vector<std::string>& values) {
  if (values.empty()) return;
  std::vector<const char*> ptrs;
  for (const auto& s : values) ptrs.push_back(s.c_str());
  Id d(OpenDataset(path), H5Dclose);
  Id fspace(H5Dget_space(d.id), H5Sclose);
  hsize_t start = row, cnt = values.size();
  H5Sselect_hyperslab(fspace.id, H5S_SELECT_SET, &start, nullptr, &cnt, nullptr);
  Id mspace(H5Screate_simple(1, &cnt, nullptr), H5Sclose);
  Id type(NewStringType(), H5Tclose);
  if (H5Dwrite(d.id, type.id, mspace.id, fspace.id, H5P_DEFAULT, ptrs.data()) < 0)
    WriteFail(path_, path, "cannot write strings");
}

namespace {
// The chunk shape and filter ids of a dataset's creation property list; false if not chunked.
bool ChunkLayout(hid_t dataset, std::vector<hsize_t>& chunk, std::vector<H5Z_filter_t>& filters) {
  Id plist(H5Dget_create_plist(dataset), H5Pclose);
  if (plist.id < 0 || H5Pget_layout(plist.id) != H5D_CHUNKED) return false;
  chunk.assign(32, 0);
  const int rank = H5Pget_chunk(plist.id, 32, chunk.data());
  if (rank < 1) return false;
  chunk.resize(static_cast<size_t>(rank));
  const int n = H5Pget_nfilters(plist.id);
  filters.clear();
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0;
    size_t nelem = 0;
    filters.push_back(H5Pget_filter2(plist.id, static_cast<unsigned>(i), &flags, &nelem, nullptr, 0, nullptr, nullptr));
  }
  return true;
}
}  // namespace

bool RowWriter::CopyRowChunks(const RowReader& src, const std::string& path, const std::vector<int64_t>& dst_rows) {
  Id sd(H5Dopen2(src.file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (sd.id < 0) Fail(src.path(), path, "missing dataset");
  Id dd(OpenDataset(path), H5Dclose);
  std::vector<hsize_t> schunk, dchunk;
  std::vector<H5Z_filter_t> sfilters, dfilters;
  if (!ChunkLayout(sd.id, schunk, sfilters) || !ChunkLayout(dd.id, dchunk, dfilters)) return false;
  if (schunk != dchunk || sfilters != dfilters || schunk[0] != 1) return false;
  Id stype(H5Dget_type(sd.id), H5Tclose), dtype(H5Dget_type(dd.id), H5Tclose);
  if (H5Tequal(stype.id, dtype.id) <= 0 || H5Tis_variable_str(stype.id) > 0) return false;
  Id sspace(H5Dget_space(sd.id), H5Sclose), dspace(H5Dget_space(dd.id), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(sspace.id);
  if (rank != static_cast<int>(schunk.size()) || H5Sget_simple_extent_ndims(dspace.id) != rank) return false;
  std::vector<hsize_t> sdims(rank), ddims(rank);
  H5Sget_simple_extent_dims(sspace.id, sdims.data(), nullptr);
  H5Sget_simple_extent_dims(dspace.id, ddims.data(), nullptr);
  if (sdims[0] != dst_rows.size() || !std::equal(sdims.begin() + 1, sdims.end(), ddims.begin() + 1)) return false;
  for (const int64_t r : dst_rows)
    if (r < 0 || static_cast<hsize_t>(r) >= ddims[0]) WriteFail(path_, path, "row " + std::to_string(r) + " out of range");
  std::vector<hsize_t> from(rank, 0), to(rank, 0);
  std::vector<unsigned char> buffer;
  for (size_t i = 0; i < dst_rows.size(); ++i) {
    from[0] = i;
    unsigned mask = 0;
    haddr_t address = HADDR_UNDEF;
    hsize_t size = 0;
    if (H5Dget_chunk_info_by_coord(sd.id, from.data(), &mask, &address, &size) < 0)
      Fail(src.path(), path, "cannot read the chunk index");
    if (address == HADDR_UNDEF || size == 0) continue;  // never written: the fill value
    buffer.resize(size);
    uint32_t filter_mask = 0;
    if (H5Dread_chunk(sd.id, H5P_DEFAULT, from.data(), &filter_mask, buffer.data()) < 0)
      Fail(src.path(), path, "cannot read chunk " + std::to_string(i));
    to[0] = static_cast<hsize_t>(dst_rows[i]);
    if (H5Dwrite_chunk(dd.id, H5P_DEFAULT, filter_mask, to.data(), size, buffer.data()) < 0)
      WriteFail(path_, path, "cannot write chunk " + std::to_string(dst_rows[i]));
  }
  return true;
}

namespace {

// H5Aiterate2 callback: copies attribute `name` of `loc` to the object *data (a hid_t).
herr_t CopyAttr(hid_t loc, const char* name, const H5A_info_t*, void* data) {
  const hid_t dst = *static_cast<hid_t*>(data);
  Id a(H5Aopen(loc, name, H5P_DEFAULT), H5Aclose);
  Id type(H5Aget_type(a.id), H5Tclose);
  Id space(H5Aget_space(a.id), H5Sclose);
  const hssize_t n = std::max<hssize_t>(H5Sget_simple_extent_npoints(space.id), 1);
  std::vector<char> buf(static_cast<size_t>(n) * H5Tget_size(type.id));
  if (H5Aread(a.id, type.id, buf.data()) < 0) return -1;
  DropAttr(dst, name);
  Id b(H5Acreate2(dst, name, type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  herr_t e = b.id < 0 ? -1 : H5Awrite(b.id, type.id, buf.data());
  if (H5Tdetect_class(type.id, H5T_VLEN) > 0 || H5Tis_variable_str(type.id) > 0)
    H5Dvlen_reclaim(type.id, space.id, H5P_DEFAULT, buf.data());
  return e;
}

// A link creation property list that creates missing parent groups.
Id IntermediateGroups() {
  Id lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.id, 1);
  return lcpl;
}

// The dims of `total` rows of a dataset of `src`'s dims (dims [0] replaced).
std::vector<hsize_t> TotalDims(hid_t src, int64_t total) {
  Id space(H5Dget_space(src), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> dims(std::max(rank, 1), 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  dims[0] = static_cast<hsize_t>(total);
  return dims;
}

}  // namespace

void RowWriter::CopyRootAttributes(const RowReader& src) {
  Id sroot(H5Gopen2(src.file_, "/", H5P_DEFAULT), H5Gclose);
  Id droot(H5Gopen2(file_, "/", H5P_DEFAULT), H5Gclose);
  hid_t dst = droot.id;
  if (sroot.id < 0 || droot.id < 0 || H5Aiterate2(sroot.id, H5_INDEX_NAME, H5_ITER_INC, nullptr, CopyAttr, &dst) < 0)
    WriteFail(path_, "", "cannot copy the root attributes");
}

void RowWriter::CopyObject(const RowReader& src, const std::string& path) {
  if (H5Ocopy(src.file_, path.c_str(), file_, path.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0)
    WriteFail(path_, "", "cannot copy " + path);
}

void RowWriter::CreateVirtual(const std::string& path, const RowReader& like, const std::vector<RowSource>& sources,
                              int64_t total) {
  Id sd(H5Dopen2(like.file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (sd.id < 0) Fail(like.path(), path, "missing dataset");
  Id type(H5Dget_type(sd.id), H5Tclose);
  const std::vector<hsize_t> dims = TotalDims(sd.id, total);
  const int rank = static_cast<int>(dims.size());
  Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  // Rows no source maps (never, after the caller's checks) read as NaN rather than plausible zeros.
  if (H5Tget_class(type.id) == H5T_FLOAT) {
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
    if (H5Pset_virtual(dcpl.id, vspace.id, s.vds_name.c_str(), path.c_str(), sspace.id) < 0)
      Fail(path_, path, "cannot map the rows of " + s.vds_name);
  }
  Id lcpl = IntermediateGroups();
  Id space(H5Screate_simple(rank, dims.data(), nullptr), H5Sclose);
  Id d(H5Dcreate2(file_, path.c_str(), type.id, space.id, lcpl.id, dcpl.id, H5P_DEFAULT), H5Dclose);
  if (d.id < 0) WriteFail(path_, path, "cannot create the virtual dataset");
}

void RowWriter::CreateConcatenated(const std::string& path, const RowReader& like, const std::vector<RowSource>& sources,
                                   int64_t total) {
  Id like_d(H5Dopen2(like.file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (like_d.id < 0) Fail(like.path(), path, "missing dataset");
  Id type(H5Dget_type(like_d.id), H5Tclose);
  Id like_dcpl(H5Dget_create_plist(like_d.id), H5Pclose);
  const std::vector<hsize_t> dims = TotalDims(like_d.id, total);
  const int rank = static_cast<int>(dims.size());
  auto maxdims = dims;
  maxdims[0] = H5S_UNLIMITED;
  Id lcpl = IntermediateGroups();
  Id space(H5Screate_simple(rank, dims.data(), maxdims.data()), H5Sclose);
  Id d(H5Dcreate2(file_, path.c_str(), type.id, space.id, lcpl.id, like_dcpl.id, H5P_DEFAULT), H5Dclose);
  if (d.id < 0) WriteFail(path_, path, "cannot create the dataset");
  hsize_t row_bytes = H5Tget_size(type.id);
  for (size_t i = 1; i < dims.size(); ++i) row_bytes *= dims[i];
  const bool vlen = H5Tis_variable_str(type.id) > 0;
  // Blocks of at most 64 rows and 64 MiB.
  const hsize_t block = std::max<hsize_t>(1, std::min<hsize_t>(64, (64u << 20) / std::max<hsize_t>(row_bytes, 1)));
  for (const auto& s : sources) {
    Id sf(H5Fopen(s.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    if (sf.id < 0) Fail(s.path, "", "cannot open");
    Id sd(H5Dopen2(sf.id, path.c_str(), H5P_DEFAULT), H5Dclose);
    if (sd.id < 0) Fail(s.path, path, "missing dataset");
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
      if (H5Dread(sd.id, type.id, mspace.id, sspace.id, H5P_DEFAULT, buf.data()) < 0) Fail(s.path, path, "cannot read");
      herr_t e = H5Dwrite(d.id, type.id, mspace.id, dspace.id, H5P_DEFAULT, buf.data());
      if (vlen) H5Dvlen_reclaim(type.id, mspace.id, H5P_DEFAULT, buf.data());
      if (e < 0) WriteFail(path_, path, "cannot write");
    }
  }
}

void RowWriter::Close() {
  if (file_ < 0) return;
  herr_t e = H5Fclose(file_);
  file_ = -1;
  if (e < 0) WriteFail(path_, "", "cannot close the HDF5 file");
  SyncPath(path_);
}

RowReader::RowReader(const std::string& path) : path_(path) {
  Init();
  if (!std::filesystem::exists(path)) Fail(path, "", "no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) Fail(path, "", "not an HDF5 file");
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) Fail(path, "", "cannot open (truncated or damaged HDF5 file)");
}

RowReader::~RowReader() {
  if (file_ >= 0) H5Fclose(file_);
}

bool RowReader::Exists(const std::string& path) const {
  // Check every prefix (H5Lexists fails on missing intermediate groups).
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) next = path.size();
    if (H5Lexists(file_, path.substr(0, next).c_str(), H5P_DEFAULT) <= 0) return false;
    pos = next + 1;
  }
  return true;
}

RowInfo RowReader::Describe(const std::string& path) const {
  if (!Exists(path)) Fail(path_, path, "missing dataset");
  Id d(H5Dopen2(file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (d.id < 0) Fail(path_, path, "not a dataset");
  RowInfo info;
  Id space(H5Dget_space(d.id), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> dims(std::max(rank, 0));
  if (rank > 0) H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  info.dims.assign(dims.begin(), dims.end());
  Id type(H5Dget_type(d.id), H5Tclose);
  if (type.id < 0 || !detail::MapType(type.id, &info.dtype)) Fail(path_, path, "unsupported element type");
  Id dcpl(H5Dget_create_plist(d.id), H5Pclose);
  if (H5Pget_layout(dcpl.id) == H5D_CHUNKED) {
    info.chunked = true;
    std::vector<hsize_t> chunk(std::max(rank, 1));
    H5Pget_chunk(dcpl.id, rank, chunk.data());
    info.chunk.assign(chunk.begin(), chunk.begin() + rank);
    int n = H5Pget_nfilters(dcpl.id);
    for (int i = 0; i < n; ++i) {
      unsigned flags = 0;
      size_t nelem = 0;
      char name[64];
      unsigned config = 0;
      H5Z_filter_t f = H5Pget_filter2(dcpl.id, i, &flags, &nelem, nullptr, sizeof(name), name, &config);
      if (f == H5Z_FILTER_SHUFFLE) info.shuffle = true;
      if (f == H5Z_FILTER_DEFLATE) info.deflate = true;
    }
  }
  return info;
}

RowData RowReader::Read(const std::string& path) const {
  const RowInfo info = Describe(path);
  return ReadRows(path, 0, info.dims.empty() ? 1 : info.dims[0]);
}

RowData RowReader::ReadRows(const std::string& path, int64_t row, int64_t count) const {
  const RowInfo info = Describe(path);
  RowData out;
  out.dims = info.dims;
  out.dtype = info.dtype;
  const bool scalar = info.dims.empty();
  if (!scalar) {
    if (row < 0 || count < 0 || row + count > info.dims[0]) {
      Fail(path_, path, "rows " + std::to_string(row) + ".." + std::to_string(row + count) + " out of range (" +
                            std::to_string(info.dims[0]) + " rows)");
    }
    out.dims[0] = count;
  }
  int64_t n = 1;
  for (auto x : out.dims) n *= x;
  Id d(H5Dopen2(file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  herr_t e = 0;
  if (n == 0) return out;
  // Whole dataset: H5S_ALL; a row range: a hyperslab of the file space and a
  // matching contiguous memory space.
  hid_t file_space = H5S_ALL, mem_space = H5S_ALL;
  Id fspace(-1, H5Sclose), mspace(-1, H5Sclose);
  if (!scalar && !(row == 0 && count == info.dims[0])) {
    fspace = Id(H5Dget_space(d.id), H5Sclose);
    std::vector<hsize_t> start(info.dims.size(), 0), extent(info.dims.begin(), info.dims.end());
    start[0] = static_cast<hsize_t>(row);
    extent[0] = static_cast<hsize_t>(count);
    if (H5Sselect_hyperslab(fspace.id, H5S_SELECT_SET, start.data(), nullptr, extent.data(), nullptr) < 0) {
      Fail(path_, path, "cannot select rows");
    }
    mspace = Id(H5Screate_simple(static_cast<int>(extent.size()), extent.data(), nullptr), H5Sclose);
    file_space = fspace.id;
    mem_space = mspace.id;
  }
  switch (info.dtype) {
    case DType::kFloat16:
    case DType::kFloat32:
      out.f32.resize(n);
      e = H5Dread(d.id, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT, out.f32.data());
      break;
    case DType::kFloat64:
      out.f64.resize(n);
      e = H5Dread(d.id, H5T_NATIVE_DOUBLE, mem_space, file_space, H5P_DEFAULT, out.f64.data());
      break;
    case DType::kInt32:
    case DType::kInt64:
    case DType::kUInt8:
      out.i64.resize(n);
      e = H5Dread(d.id, H5T_NATIVE_INT64, mem_space, file_space, H5P_DEFAULT, out.i64.data());
      break;
    case DType::kString: {
      std::vector<char*> ptrs(n, nullptr);
      Id type(NewStringType(), H5Tclose);
      e = H5Dread(d.id, type.id, mem_space, file_space, H5P_DEFAULT, ptrs.data());
      if (e >= 0) {
        for (auto* p : ptrs) out.strings.emplace_back(p ? p : "");
        Id space(mem_space == H5S_ALL ? H5Dget_space(d.id) : H5Scopy(mem_space), H5Sclose);
        H5Dvlen_reclaim(type.id, space.id, H5P_DEFAULT, ptrs.data());
      }
      break;
    }
  }
  if (e < 0) Fail(path_, path, "cannot read (damaged data)");
  return out;
}

bool RowReader::HasAttr(const std::string& object, const std::string& name) const {
  return Exists(object == "/" ? "" : object) && H5Aexists_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::string> RowReader::AttrNames(const std::string& object) const {
  Id o(H5Oopen(file_, object.c_str(), H5P_DEFAULT), H5Oclose);
  if (o.id < 0) Fail(path_, object, "no such object");
  H5O_info_t info;
  if (H5Oget_info2(o.id, &info, H5O_INFO_NUM_ATTRS) < 0) Fail(path_, object, "cannot list attributes");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    const ssize_t len = H5Aget_name_by_idx(o.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) Fail(path_, object, "cannot read an attribute name");
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Aget_name_by_idx(o.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

bool RowReader::IsStringAttr(const std::string& object, const std::string& name) const {
  if (!HasAttr(object, name)) Fail(path_, object, "missing attribute " + name);
  Id a(H5Aopen_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  Id t(H5Aget_type(a.id), H5Tclose);
  return H5Tget_class(t.id) == H5T_STRING;
}

std::string RowReader::StringAttr(const std::string& object, const std::string& name) const {
  if (!HasAttr(object, name)) Fail(path_, object, "missing attribute " + name);
  Id a(H5Aopen_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  Id ftype(H5Aget_type(a.id), H5Tclose);
  if (H5Tget_class(ftype.id) != H5T_STRING) Fail(path_, object, "attribute " + name + " is not a string");
  if (H5Tis_variable_str(ftype.id) > 0) {
    Id type(NewStringType(), H5Tclose);
    char* p = nullptr;
    if (H5Aread(a.id, type.id, &p) < 0) Fail(path_, object, "cannot read attribute " + name);
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  size_t size = H5Tget_size(ftype.id);
  std::string s(size, '\0');
  Id mtype(H5Tcopy(ftype.id), H5Tclose);
  if (H5Aread(a.id, mtype.id, s.data()) < 0) Fail(path_, object, "cannot read attribute " + name);
  s.resize(strnlen(s.c_str(), size));
  return s;
}

int64_t RowReader::IntAttr(const std::string& object, const std::string& name) const {
  if (!HasAttr(object, name)) Fail(path_, object, "missing attribute " + name);
  Id a(H5Aopen_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  Id ftype(H5Aget_type(a.id), H5Tclose);
  if (H5Tget_class(ftype.id) != H5T_INTEGER) Fail(path_, object, "attribute " + name + " is not an integer");
  int64_t v = 0;
  if (H5Aread(a.id, H5T_NATIVE_INT64, &v) < 0) Fail(path_, object, "cannot read attribute " + name);
  return v;
}

void SyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw InputError(path, std::string("cannot open for fsync: ") + std::strerror(errno) + DiskDiagnosis(path));
  int e = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (e != 0) throw InputError(path, std::string("fsync failed: ") + std::strerror(err) + DiskDiagnosis(path));
}

void AtomicRename(const std::string& tmp, const std::string& final_path) {
  SyncPath(tmp);
  std::error_code ec;
  std::filesystem::rename(tmp, final_path, ec);
  if (ec) throw InputError(final_path, "cannot rename " + tmp + " into place: " + ec.message() + DiskDiagnosis(final_path));
  auto dir = std::filesystem::path(final_path).parent_path();
  SyncPath(dir.empty() ? "." : dir.string());
}

}  // namespace facebatch::io::hdf5

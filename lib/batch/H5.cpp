#include "batch/H5.h"
#include "batch/H5Id.h"

#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "core/Disk.h"
#include "core/Error.h"

namespace facebatch::batch::h5 {
namespace {

void Init() {
  static std::once_flag once;
  std::call_once(once, [] {
    // No clean-up at exit: after a failed write (a full disk) HDF5's atexit handler tries to
    // flush the half-closed file again and crashes; every file is closed explicitly.
    H5dont_atexit();
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}


hid_t StringType() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

hid_t HalfType() {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  H5Tset_precision(t, 16);
  return t;
}

// File type (caller closes).
hid_t FileType(Kind k) {
  switch (k) {
    case Kind::kFloat32: return H5Tcopy(H5T_IEEE_F32LE);
    case Kind::kFloat16: return HalfType();
    case Kind::kFloat64: return H5Tcopy(H5T_IEEE_F64LE);
    case Kind::kInt64: return H5Tcopy(H5T_STD_I64LE);
    case Kind::kUInt8: return H5Tcopy(H5T_STD_U8LE);
    case Kind::kString: return StringType();
  }
  return -1;
}

[[noreturn]] void Fail(const std::string& file, const std::string& object, const std::string& problem) {
  throw InputError(file, object.empty() ? problem : object + ": " + problem);
}

// A failed write says what is wrong with the file system (full, read-only) when it can tell.
[[noreturn]] void WriteFail(const std::string& file, const std::string& object, const std::string& problem) {
  Fail(file, object, problem + DiskDiagnosis(file));
}

std::vector<hsize_t> H(const std::vector<int64_t>& d) { return std::vector<hsize_t>(d.begin(), d.end()); }

}  // namespace

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kFloat32: return "float32";
    case Kind::kFloat16: return "float16";
    case Kind::kFloat64: return "float64";
    case Kind::kInt64: return "int64";
    case Kind::kUInt8: return "uint8";
    case Kind::kString: return "string";
  }
  return "?";
}

int64_t Dataset::row_size() const {
  int64_t n = 1;
  for (size_t i = 1; i < dims.size(); ++i) n *= dims[i];
  return n;
}

Writer::Writer(const std::string& path) : path_(path) {
  Init();
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_V18);
  file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (file_ < 0) WriteFail(path, "", "cannot create the HDF5 file");
}

Writer::~Writer() {
  if (file_ >= 0) H5Fclose(file_);
}

long long Writer::Open(const std::string& path) {
  hid_t d = H5Dopen2(file_, path.c_str(), H5P_DEFAULT);
  if (d < 0) WriteFail(path_, path, "no such dataset");
  return d;
}

void Writer::Group(const std::string& path) {
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

void Writer::Attr(const std::string& object, const std::string& name, const std::string& value) {
  Id obj(H5Oopen(file_, object.c_str(), H5P_DEFAULT), H5Oclose);
  Id type(StringType(), H5Tclose);
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id a(H5Acreate2(obj.id, name.c_str(), type.id, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* p = value.c_str();
  if (obj.id < 0 || a.id < 0 || H5Awrite(a.id, type.id, &p) < 0) WriteFail(path_, object, "cannot write attribute " + name);
}

void Writer::Attr(const std::string& object, const std::string& name, int64_t value) {
  Id obj(H5Oopen(file_, object.c_str(), H5P_DEFAULT), H5Oclose);
  Id space(H5Screate(H5S_SCALAR), H5Sclose);
  Id a(H5Acreate2(obj.id, name.c_str(), H5T_STD_I64LE, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (obj.id < 0 || a.id < 0 || H5Awrite(a.id, H5T_NATIVE_INT64, &value) < 0)
    WriteFail(path_, object, "cannot write attribute " + name);
}

void Writer::Create(const std::string& path, Kind kind, const std::vector<int64_t>& dims, bool chunked) {
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
  Id type(FileType(kind), H5Tclose);
  Id d(H5Dcreate2(file_, path.c_str(), type.id, space.id, H5P_DEFAULT, dcpl.id, H5P_DEFAULT), H5Dclose);
  if (d.id < 0) WriteFail(path_, path, "cannot create dataset");
}

void Writer::WriteRows(const std::string& path, int64_t row, int64_t count, const void* data) {
  if (count == 0) return;
  Id d(Open(path), H5Dclose);
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

void Writer::WriteStrings(const std::string& path, int64_t row, const std::vector<std::string>& values) {
  if (values.empty()) return;
  std::vector<const char*> ptrs;
  for (const auto& s : values) ptrs.push_back(s.c_str());
  Id d(Open(path), H5Dclose);
  Id fspace(H5Dget_space(d.id), H5Sclose);
  hsize_t start = row, cnt = values.size();
  H5Sselect_hyperslab(fspace.id, H5S_SELECT_SET, &start, nullptr, &cnt, nullptr);
  Id mspace(H5Screate_simple(1, &cnt, nullptr), H5Sclose);
  Id type(StringType(), H5Tclose);
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

bool Writer::CopyRowChunks(const Reader& src, const std::string& path, const std::vector<int64_t>& dst_rows) {
  Id sd(H5Dopen2(src.file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (sd.id < 0) Fail(src.path(), path, "missing dataset");
  Id dd(Open(path), H5Dclose);
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

void Writer::Close() {
  if (file_ < 0) return;
  herr_t e = H5Fclose(file_);
  file_ = -1;
  if (e < 0) WriteFail(path_, "", "cannot close the HDF5 file");
  SyncPath(path_);
}

Reader::Reader(const std::string& path) : path_(path) {
  Init();
  if (!std::filesystem::exists(path)) Fail(path, "", "no such file");
  if (H5Fis_hdf5(path.c_str()) <= 0) Fail(path, "", "not an HDF5 file");
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) Fail(path, "", "cannot open (truncated or damaged HDF5 file)");
}

Reader::~Reader() {
  if (file_ >= 0) H5Fclose(file_);
}

bool Reader::Exists(const std::string& path) const {
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

Info Reader::Describe(const std::string& path) const {
  if (!Exists(path)) Fail(path_, path, "missing dataset");
  Id d(H5Dopen2(file_, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (d.id < 0) Fail(path_, path, "not a dataset");
  Info info;
  Id space(H5Dget_space(d.id), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> dims(std::max(rank, 0));
  if (rank > 0) H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  info.dims.assign(dims.begin(), dims.end());
  Id type(H5Dget_type(d.id), H5Tclose);
  H5T_class_t cls = H5Tget_class(type.id);
  size_t size = H5Tget_size(type.id);
  if (cls == H5T_STRING) info.kind = Kind::kString;
  else if (cls == H5T_INTEGER) info.kind = size == 1 ? Kind::kUInt8 : Kind::kInt64;
  else if (cls == H5T_FLOAT) info.kind = size == 2 ? Kind::kFloat16 : size == 4 ? Kind::kFloat32 : Kind::kFloat64;
  else Fail(path_, path, "unsupported element type");
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

Dataset Reader::Read(const std::string& path) const {
  const Info info = Describe(path);
  return ReadRows(path, 0, info.dims.empty() ? 1 : info.dims[0]);
}

Dataset Reader::ReadRows(const std::string& path, int64_t row, int64_t count) const {
  Info info = Describe(path);
  Dataset out;
  out.dims = info.dims;
  out.kind = info.kind;
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
  switch (info.kind) {
    case Kind::kFloat16:
    case Kind::kFloat32:
      out.f32.resize(n);
      e = H5Dread(d.id, H5T_NATIVE_FLOAT, mem_space, file_space, H5P_DEFAULT, out.f32.data());
      break;
    case Kind::kFloat64:
      out.f64.resize(n);
      e = H5Dread(d.id, H5T_NATIVE_DOUBLE, mem_space, file_space, H5P_DEFAULT, out.f64.data());
      break;
    case Kind::kInt64:
    case Kind::kUInt8:
      out.i64.resize(n);
      e = H5Dread(d.id, H5T_NATIVE_INT64, mem_space, file_space, H5P_DEFAULT, out.i64.data());
      break;
    case Kind::kString: {
      std::vector<char*> ptrs(n, nullptr);
      Id type(StringType(), H5Tclose);
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

bool Reader::HasAttr(const std::string& object, const std::string& name) const {
  return Exists(object == "/" ? "" : object) && H5Aexists_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::vector<std::string> Reader::AttrNames(const std::string& object) const {
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

bool Reader::IsStringAttr(const std::string& object, const std::string& name) const {
  if (!HasAttr(object, name)) Fail(path_, object, "missing attribute " + name);
  Id a(H5Aopen_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  Id t(H5Aget_type(a.id), H5Tclose);
  return H5Tget_class(t.id) == H5T_STRING;
}

std::string Reader::StringAttr(const std::string& object, const std::string& name) const {
  if (!HasAttr(object, name)) Fail(path_, object, "missing attribute " + name);
  Id a(H5Aopen_by_name(file_, object.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  Id ftype(H5Aget_type(a.id), H5Tclose);
  if (H5Tget_class(ftype.id) != H5T_STRING) Fail(path_, object, "attribute " + name + " is not a string");
  if (H5Tis_variable_str(ftype.id) > 0) {
    Id type(StringType(), H5Tclose);
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

int64_t Reader::IntAttr(const std::string& object, const std::string& name) const {
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

}  // namespace facebatch::batch::h5

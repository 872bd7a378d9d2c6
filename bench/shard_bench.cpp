// The shard's final consolidation (issue 16 item 3): part files -> the shard file, with the
// parts' compressed chunks copied as stored (Arg 1) against decompressing and recompressing
// every row (Arg 0, as before). Demo-preset layout, every output, float32; 64 images in 16
// parts of 4, each image's maps smooth with a little noise (compressible as fitted maps are).
#include <benchmark/benchmark.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <unistd.h>

#include "batch/ShardFile.h"

namespace {
namespace fs = std::filesystem;
using namespace facebatch::batch;

struct Parts {
  fs::path dir;
  ShardHeader header;
  ShardLayout layout;
  std::vector<std::string> files;
  std::map<std::string, int64_t> order;
  Parts() {
    dir = fs::temp_directory_path() / ("facebatch-shard-bench-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    LayoutSizes s;
    s.latent_shape = 160, s.latent_albedo = 160, s.uv_rows = 96, s.uv_cols = 112;
    s.num_vertices = 96 * 112, s.num_triangles = 2 * 95 * 111;
    s.terms = {"photometric", "landmark", "total"};
    layout = ShardLayout::Make(s, ParseOutputs("all"), false);
    header.triangles.assign(static_cast<size_t>(s.num_triangles) * 3, 0);
    header.vertex_uv.assign(static_cast<size_t>(s.num_vertices) * 2, 0.5f);
    header.landmarks68.assign(68, 0);
    header.mask.assign(static_cast<size_t>(s.uv_rows * s.uv_cols), 1);
    for (const char* a : {"facebatch_version", "model_sha256", "model_provenance", "config", "shard", "manifest_hash"})
      header.string_attrs[a] = "bench";
    for (const char* a : {"shard_index", "shard_count", "image_size"}) header.int_attrs[a] = 1;
    std::mt19937 rng(7);
    std::normal_distribution<float> noise(0.f, 1e-3f);
    const int n = 64, part = 4;
    for (int p = 0; p < n / part; ++p) {
      std::vector<ImageRecord> records;
      for (int i = p * part; i < (p + 1) * part; ++i) {
        ImageRecord r;
        r.id = "img" + std::to_string(i);
        order[r.id] = i;
        for (const auto& f : layout.fields) {
          if (f.dtype == facebatch::io::hdf5::DType::kString) {
            r.strings[f.path] = f.path == "/images/id" ? r.id : "ok";
          } else if (f.dtype == facebatch::io::hdf5::DType::kFloat64) {
            r.doubles[f.path].assign(static_cast<size_t>(f.size()), 0.5);
          } else if (f.dtype == facebatch::io::hdf5::DType::kInt64 || f.dtype == facebatch::io::hdf5::DType::kUInt8) {
            r.ints[f.path].assign(static_cast<size_t>(f.size()), 1);
          } else {
            auto& v = r.floats[f.path];
            v.resize(static_cast<size_t>(f.size()));
            for (size_t k = 0; k < v.size(); ++k) v[k] = std::sin(0.01f * k + i) + noise(rng);
          }
        }
        records.push_back(std::move(r));
      }
      files.push_back((dir / ("part-" + std::to_string(p) + ".h5")).string());
      WriteShardFile(files.back(), header, layout, records);
    }
  }
  ~Parts() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

void BM_ShardConsolidate(benchmark::State& state) {
  static Parts parts;
  const bool copy_chunks = state.range(0) != 0;
  const auto out = (parts.dir / "shard.h5").string();
  for (auto _ : state) ConsolidateShardFiles(out, parts.header, parts.layout, parts.files, parts.order, copy_chunks);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(parts.order.size()));
  state.SetLabel(copy_chunks ? "chunks copied as stored" : "decompress + recompress");
}
BENCHMARK(BM_ShardConsolidate)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

#include "io/Index.h"

#include <fmt/format.h>
#include <tbb/parallel_pipeline.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "core/Env.h"
#include "core/Error.h"
#include "core/Log.h"
#include "core/Progress.h"
#include "io/Corpus.h"
#include "io/Manifest.h"

namespace facebatch::io {

void IndexOptions::Check() const {
  if (root.empty()) throw UsageError("--root is required");
  if (out.empty()) throw UsageError("--out is required");
  if (corpus != "auto") ParseCorpusKind(corpus);
  if (partition != "all" && partition != "train" && partition != "val" && partition != "test")
    throw UsageError("--partition must be all, train, val or test (got '" + partition + "')");
  if (detect != "none" && detect != "dlib") throw UsageError("--detect must be none or dlib (got '" + detect + "')");
  if (detect == "dlib" && !DlibAvailable())
    throw UsageError("--detect dlib: this facebatch was built without dlib");
  if (landmark_origin != 0 && landmark_origin != 1) throw UsageError("--landmark-origin must be 0 or 1");
  if (max_pixels < 1) throw UsageError("--max-pixels must be >= 1");
  if (threads < 0) throw UsageError("--threads must be >= 0 (0: all cores)");
  ParseProgressMode(progress);
}

int IndexSummary::ExitCode() const { return failed > 0 ? kExitSomeFailed : kExitOk; }

std::string IndexSummary::ToString() const {
  std::string s = fmt::format("index: {} corpus, {} items: {} ok, {} failed ({:.2f} s, {} threads)\n", corpus,
                              total, ok, failed, seconds, threads);
  for (const auto& [r, n] : failures_by_reason) s += fmt::format("  failed: {:>6}  {}\n", n, r);
  s += fmt::format("manifest: {} ({})\n", manifest, items_hash);
  return s;
}

IndexSummary RunIndex(const IndexOptions& o) {
  o.Check();
  const auto start = std::chrono::steady_clock::now();
  IndexSummary summary;
  summary.threads = env::ConfigureThreads(o.threads);
  std::string root = std::filesystem::absolute(o.root).lexically_normal().string();
  if (root.size() > 1 && root.back() == '/') root.pop_back();
  CorpusKind kind = o.corpus == "auto" ? DetectCorpusKind(root) : ParseCorpusKind(o.corpus);
  summary.corpus = ToString(kind);

  ReadOptions ro;
  ro.landmark_origin = o.landmark_origin;
  ro.partition = o.partition;
  ro.max_pixels = o.max_pixels;
  std::unique_ptr<FaceDetector> detector;
  if (o.detect == "dlib") {
    if (kind != CorpusKind::kFolder) log::Warn("--detect dlib only applies to folder corpora; ignored");
    else {
      detector = std::make_unique<FaceDetector>(o.shape_predictor);
      ro.detect = true;
      ro.detector = detector.get();
    }
  }
  std::vector<Candidate> candidates = ListCandidates(kind, root, ro);
  log::Info("index: {} corpus at {}: {} images", summary.corpus, root, candidates.size());

  Progress progress("index", static_cast<int64_t>(candidates.size()), ParseProgressMode(o.progress), "images");
  std::vector<std::vector<Item>> loaded(candidates.size());
  size_t next = 0;
  const size_t tokens = static_cast<size_t>(std::max(2, 2 * summary.threads));
  tbb::parallel_pipeline(
      tokens,
      tbb::make_filter<void, size_t>(tbb::filter_mode::serial_in_order,
                                     [&](tbb::flow_control& fc) -> size_t {
                                       if (next >= candidates.size()) {
                                         fc.stop();
                                         return 0;
                                       }
                                       return next++;
                                     }) &
          tbb::make_filter<size_t, size_t>(tbb::filter_mode::parallel,
                                           [&](size_t i) {
                                             loaded[i] = LoadCandidate(candidates[i], root, ro);
                                             return i;
                                           }) &
          tbb::make_filter<size_t, void>(tbb::filter_mode::serial_in_order, [&](size_t i) {
            int64_t failed = 0;
            for (const Item& it : loaded[i])
              if (!it.ok()) {
                ++failed;
                log::Debug("{}: {}", it.id, it.reason);
              }
            progress.Add(1, failed);
          }));
  progress.Finish();

  Manifest m;
  m.header.corpus = summary.corpus;
  m.header.root = root;
  m.header.options = {{"partition", o.partition},
                      {"detect", o.detect},
                      {"landmark_origin", std::to_string(o.landmark_origin)},
                      {"max_pixels", std::to_string(o.max_pixels)}};
  for (auto& v : loaded)
    for (Item& it : v) m.items.push_back(std::move(it));
  std::stable_sort(m.items.begin(), m.items.end(), [](const Item& a, const Item& b) { return a.id < b.id; });
  WriteManifest(o.out, m);

  summary.manifest = o.out;
  summary.items_hash = m.header.items_hash;
  summary.total = m.header.counts["total"];
  summary.ok = m.header.counts["ok"];
  summary.failed = m.header.counts["failed"];
  for (const Item& it : m.items)
    if (!it.ok()) ++summary.failures_by_reason[it.reason_code];
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace facebatch::io

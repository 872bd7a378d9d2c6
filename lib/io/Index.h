#pragma once
// `facebatch index`: read a corpus into a manifest (Manifest.h), in parallel.
#include <cstdint>
#include <map>
#include <string>

#include "io/Detect.h"
#include "io/Image.h"

namespace facebatch::io {

struct IndexOptions {
  std::string corpus = "auto";      ///< --corpus 300w-lp|aflw2000|celeba|folder|auto (auto: from the layout)
  std::string root;                 ///< --root DIR (required)
  std::string out;                  ///< --out MANIFEST (required), e.g. out/manifest.jsonl
  std::string partition = "all";    ///< --partition all|train|val|test (CelebA's list_eval_partition.txt)
  std::string detect = "none";      ///< --detect none|dlib (folder images without .pts)
  int landmark_origin = 0;          ///< --landmark-origin 0|1: origin of the corpus's landmark files
  int64_t max_pixels = kDefaultMaxPixels;  ///< --max-pixels: larger images are failed items
  std::string shape_predictor = kDefaultShapePredictor;  ///< --shape-predictor (dlib model)
  int threads = 0;                  ///< --threads (0: all cores)
  std::string progress = "auto";    ///< --progress auto|bar|log|none
  void Check() const;               ///< throws UsageError
};

struct IndexSummary {
  std::string manifest;   ///< path written
  std::string corpus;     ///< kind read
  int64_t total = 0, ok = 0, failed = 0;
  std::map<std::string, int64_t> failures_by_reason;
  std::string items_hash;
  double seconds = 0;
  int threads = 1;
  /// kExitOk, or kExitSomeFailed when some items failed.
  int ExitCode() const;
  std::string ToString() const;  ///< multi-line human summary
};

/// Lists the corpus, loads every image + metadata in a TBB pipeline with at most
/// 2 x threads items in flight (bounded memory), sorts by id, writes the manifest.
/// Throws InputError for a run-level problem (not a corpus, empty corpus, ...).
IndexSummary RunIndex(const IndexOptions& options);

}  // namespace facebatch::io

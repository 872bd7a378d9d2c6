#pragma once
// `facebatch validate FILE` (structural checks of a shard file against
// schemas/shard.md, with the HDF5 C API: no h5py) and `facebatch inspect FILE`
// (shard, manifest or model file: counts, statuses, failures by reason,
// schema version, configuration).
#include <map>
#include <string>
#include <vector>

namespace facebatch::batch {

struct ValidateOptions {
  std::string file;  ///< shard file (positional, required)
  void Check() const;
};

struct ValidationReport {
  std::string file;
  int64_t num_images = 0;
  std::vector<std::string> problems;  ///< empty: valid
  bool ok() const { return problems.empty(); }
  std::string ToString() const;
};

/// Never throws for a bad file: every problem is listed (an unreadable file is one problem).
ValidationReport RunValidate(const ValidateOptions& options);

struct InspectOptions {
  std::string file;  ///< shard (.h5), completion marker (.done.json), manifest (.jsonl) or model file
  void Check() const;
};

struct InspectSummary {
  std::string kind;  ///< "shard", "manifest", "model", "marker"
  std::map<std::string, int64_t> counts;  ///< "total", by status, "failed:<reason>"
  std::string text;  ///< what the command prints
};
InspectSummary RunInspect(const InspectOptions& options);

}  // namespace facebatch::batch

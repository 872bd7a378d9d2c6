#pragma once
// `facebatch report`: a static HTML quality-assurance page of fit outputs
// (docs/eval.md). No network: the PNGs are written beside the page in
// `<name>_files/` (report.html -> report_files/), histograms are inline SVG.
//
// Sections: run summary (counts, timing from /fit/seconds and /fit/iterations),
// a contact sheet of sampled ok fits (input crop, fitted render I(S, A) over the
// crop, proxy render I(S', A') when the proxies are stored, shape shading,
// albedo map), error histograms (from an eval directory when given, else the
// fit's own /metrics/photometric_l21 and /metrics/landmark_error_px), the worst
// fits, failures grouped by reason code, and every file's root attributes.
#include <cstdint>
#include <string>
#include <vector>

namespace facebatch::eval {

struct ReportOptions {
  std::vector<std::string> inputs;  ///< fit output files or directories (their *.h5, not *.parts)
  std::string out = "report.html";  ///< --out: the page; images go to <stem>_files/ beside it
  std::string eval_dir;             ///< --eval: a `facebatch eval` output directory (metrics, histograms, worst)
  int samples = 12;                 ///< --samples: ok fits on the contact sheet (evenly spread, sorted by id)
  int worst = 8;                    ///< --worst: worst fits shown (largest l2,1)
  int threads = 0;                  ///< --threads (0 = all cores)
  void Check() const;               ///< throws UsageError
};

struct ReportSummary {
  std::string html;                 ///< path of the page
  std::string files_dir;            ///< path of the image folder
  int64_t images = 0, ok = 0, failed = 0;
  int64_t sheet = 0, worst = 0, pngs = 0;  ///< rows on the contact sheet, worst fits, PNG files written
  std::string ToString() const;
};

ReportSummary RunReport(const ReportOptions& options);

}  // namespace facebatch::eval

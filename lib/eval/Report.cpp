// `facebatch report`; see Report.h and docs/eval.md.
#include "eval/Report.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

#include "batch/ShardReader.h"
#include "core/Env.h"
#include "core/Error.h"
#include "core/Log.h"
#include "eval/Eval.h"
#include "eval/FitRender.h"
#include "metrics/Metrics.h"
#include "render/Colour.h"

namespace facebatch::eval {
namespace fs = std::filesystem;
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string Esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string F4(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : std::string("&ndash;"); }

struct Row {
  size_t file = 0;
  int64_t row = 0;
  std::string id, status, code, reason;
  double l21 = kNaN;         ///< eval's l21 when given, else the fit's /metrics/photometric_l21
  double landmark_px = kNaN; ///< /metrics/landmark_error_px
  double seconds = kNaN;
  int64_t iterations = 0;
  const ImageEval* eval = nullptr;
};

/// Inline SVG histogram of the finite values (20 bins), with the mean and median marked.
std::string Histogram(const std::string& title, const std::vector<double>& values) {
  std::vector<double> v;
  for (double x : values)
    if (std::isfinite(x)) v.push_back(x);
  const int W = 360, H = 170, L = 40, B = 30, T = 22, nb = 20;
  std::ostringstream s;
  s << fmt::format(R"(<figure class="hist"><svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img">)", W, H);
  s << fmt::format(R"(<text x="{}" y="15" font-size="13" font-weight="bold">{}</text>)", L, Esc(title));
  if (v.empty()) {
    s << R"(<text x="40" y="90" font-size="12">no values</text></svg></figure>)";
    return s.str();
  }
  const auto st = metrics::Summarise(v);
  double lo = st.min, hi = st.max;
  if (hi - lo < 1e-12) hi = lo + 1e-6, lo -= 1e-6;
  std::vector<int> bins(nb, 0);
  for (double x : v) bins[std::min(nb - 1, static_cast<int>((x - lo) / (hi - lo) * nb))]++;
  const int peak = *std::max_element(bins.begin(), bins.end());
  const double pw = W - L - 10, ph = H - B - T;
  for (int i = 0; i < nb; ++i) {
    const double h = ph * bins[i] / std::max(1, peak);
    s << fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="#4a7ab5"><title>{}: [{:.4g}, {:.4g})</title></rect>)",
                     L + pw * i / nb, T + ph - h, pw / nb - 1, h, bins[i], lo + (hi - lo) * i / nb,
                     lo + (hi - lo) * (i + 1) / nb);
  }
  auto xpos = [&](double x) { return L + pw * (x - lo) / (hi - lo); };
  s << fmt::format(R"(<line x1="{0:.1f}" x2="{0:.1f}" y1="{1}" y2="{2:.1f}" stroke="#d62728" stroke-width="2"><title>mean {3:.4g}</title></line>)",
                   xpos(st.mean), T, T + ph, st.mean);
  s << fmt::format(R"(<line x1="{0:.1f}" x2="{0:.1f}" y1="{1}" y2="{2:.1f}" stroke="#2ca02c" stroke-width="2" stroke-dasharray="4 2"><title>median {3:.4g}</title></line>)",
                   xpos(st.median), T, T + ph, st.median);
  s << fmt::format(R"(<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" stroke="#333"/>)", L, W - 10, T + ph, T + ph);
  s << fmt::format(R"(<text x="{}" y="{}" font-size="11">{:.4g}</text>)", L, H - 12, lo);
  s << fmt::format(R"(<text x="{}" y="{}" font-size="11" text-anchor="end">{:.4g}</text>)", W - 10, H - 12, hi);
  s << fmt::format(R"(<text x="{}" y="{}" font-size="11" text-anchor="middle">n={} mean={:.4g} median={:.4g} p90={:.4g}</text>)",
                   L + pw / 2, H - 1, st.count, st.mean, st.median, st.p90);
  s << fmt::format(R"(<text x="4" y="{}" font-size="11">{}</text>)", T + 10, peak);
  s << "</svg></figure>";
  return s.str();
}

/// Renders the panels of one fit into PNGs; returns the HTML cells.
class Panels {
 public:
  Panels(fs::path dir, std::string rel) : dir_(std::move(dir)), rel_(std::move(rel)) {}
  int64_t pngs() const { return pngs_; }

  std::string Cells(const batch::ShardReader& shard, const ShardTopology& topo, int64_t row, const std::string& key,
                    bool all_panels) {
    std::ostringstream c;
    try {
      const auto fit = ReadFit(shard, row);
      const int S = topo.image_size;
      at::Tensor crop;
      std::string crop_problem;
      try {
        crop = LoadCrop(fit.source, fit.crop_to_original, S);
      } catch (const std::exception& e) {
        crop_problem = e.what();
        crop = torch::zeros({3, S, S});
      }
      auto over = [&](const render::RenderResult& r, const at::Tensor& background) {
        const auto m = r.mask[0];
        return r.image[0] * m + background * (1 - m);
      };
      const auto fitted = RenderFit(topo, fit.shape, fit.albedo, fit.projection, fit.lighting, S);
      c << (crop_problem.empty() ? Img(key + "_input", crop, "input crop")
                                 : "<td class=\"missing\">input unavailable: " + Esc(crop_problem) + "</td>");
      c << Img(key + "_fit", over(fitted, crop), "fitted render I(S, A)");
      if (!all_panels) return c.str();
      if (fit.shape_proxy.defined() && fit.albedo_proxy.defined()) {
        const auto proxy = RenderFit(topo, fit.shape_proxy, fit.albedo_proxy, fit.projection, fit.lighting, S);
        c << Img(key + "_proxy", over(proxy, crop), "proxy render I(S', A')");
      } else {
        c << "<td class=\"missing\">proxies not stored (fit --outputs)</td>";
      }
      const auto shading = RenderShading(topo, fit.shape, fit.projection, S);
      c << Img(key + "_shading", over(shading, torch::full({3, S, S}, 0.15)), "shape shading");
      c << Img(key + "_albedo", fit.albedo, "albedo (UV)");
    } catch (const std::exception& e) {
      c << "<td class=\"missing\" colspan=\"5\">cannot render: " << Esc(e.what()) << "</td>";
    }
    return c.str();
  }

 private:
  std::string Img(const std::string& name, const at::Tensor& rgb, const std::string& alt) {
    const auto file = name + ".png";
    const auto path = (dir_ / file).string();
    // Every panel is linear RGB (crop, renders, albedo): sRGB-encoded for display.
    if (!cv::imwrite(path, render::LinearRgbToSrgbBgr8(rgb))) throw InputError(path, "cannot write the image");
    ++pngs_;
    return fmt::format(R"(<td><img src="{}/{}" alt="{}" title="{}"></td>)", Esc(rel_), Esc(file), Esc(alt), Esc(alt));
  }
  fs::path dir_;
  std::string rel_;
  int64_t pngs_ = 0;
};

const char* kStyle = R"(
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.5em; }
table { border-collapse: collapse; } td, th { padding: 3px 8px; border: 1px solid #ddd; vertical-align: top; font-size: 13px; }
th { background: #f3f3f3; text-align: left; }
table.sheet img { width: 150px; height: auto; image-rendering: auto; display: block; }
td.missing { color: #999; font-size: 12px; width: 150px; }
.hists { display: flex; flex-wrap: wrap; gap: 12px; } figure.hist { margin: 0; }
pre { background: #f7f7f7; padding: 8px; font-size: 12px; max-height: 24em; overflow: auto; }
.muted { color: #777; font-size: 12px; }
)";

}  // namespace

void ReportOptions::Check() const {
  if (inputs.empty()) throw UsageError("report: give one or more fit output files or directories");
  if (out.empty()) throw UsageError("report: --out is required");
  if (samples < 0) throw UsageError("report: --samples must be >= 0");
  if (worst < 0) throw UsageError("report: --worst must be >= 0");
  if (threads < 0) throw UsageError("report: --threads must be >= 0");
  if (!eval_dir.empty() && !fs::exists(fs::path(eval_dir) / "summary.json"))
    throw UsageError("report: --eval " + eval_dir + " has no summary.json (run facebatch eval --out " + eval_dir + ")");
}

std::string ReportSummary::ToString() const {
  return fmt::format("report: {}\n  images {} ({} ok, {} failed); contact sheet {}, worst {}, {} PNG files in {}\n", html,
                     images, ok, failed, sheet, worst, pngs, files_dir);
}

ReportSummary RunReport(const ReportOptions& o) {
  o.Check();
  env::ConfigureThreads(o.threads);
  torch::NoGradGuard no_grad;
  const auto files = FitOutputFiles(o.inputs);
  std::vector<std::unique_ptr<batch::ShardReader>> shards;
  for (const auto& f : files) shards.push_back(std::make_unique<batch::ShardReader>(f));
  std::vector<ImageEval> evals;
  std::map<std::string, const ImageEval*> eval_of;
  if (!o.eval_dir.empty()) {
    evals = ReadEvalImages(o.eval_dir);
    for (const auto& e : evals) eval_of[e.id] = &e;
  }

  // Every image of every file.
  std::vector<Row> rows;
  for (size_t f = 0; f < shards.size(); ++f) {
    const auto& s = *shards[f];
    const auto codes = s.Strings("/images/reason_code"), reasons = s.Strings("/images/reason");
    for (int64_t i = 0; i < s.size(); ++i) {
      Row r;
      r.file = f, r.row = i, r.id = s.ids()[static_cast<size_t>(i)], r.status = s.status(i);
      r.code = codes[static_cast<size_t>(i)], r.reason = reasons[static_cast<size_t>(i)];
      r.seconds = s.Doubles("/fit/seconds", i).at(0);
      r.iterations = s.Ints("/fit/iterations", i).at(0);
      r.landmark_px = s.Floats("/metrics/landmark_error_px", i).at(0);
      auto it = eval_of.find(r.id);
      if (it != eval_of.end()) {
        r.eval = it->second;
        r.l21 = it->second->l21;
        if (r.status == "ok" && it->second->status != "ok")  // eval could not evaluate it
          r.code = it->second->reason_code, r.reason = it->second->reason;
      } else {
        r.l21 = s.Floats("/metrics/photometric_l21", i).at(0);
      }
      rows.push_back(std::move(r));
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.id < b.id; });

  ReportSummary sum;
  sum.html = o.out;
  const fs::path html_path(o.out);
  const std::string rel = html_path.stem().string() + "_files";
  const fs::path files_dir = html_path.parent_path().empty() ? fs::path(rel) : html_path.parent_path() / rel;
  sum.files_dir = files_dir.string();
  fs::remove_all(files_dir);
  fs::create_directories(files_dir);
  std::vector<std::unique_ptr<ShardTopology>> topos(shards.size());
  auto topo_of = [&](size_t f) -> const ShardTopology& {
    if (!topos[f]) topos[f] = std::make_unique<ShardTopology>(*shards[f]);
    return *topos[f];
  };
  Panels panels(files_dir, rel);

  std::vector<const Row*> ok;
  std::map<std::string, std::vector<const Row*>> failures;
  for (const auto& r : rows) {
    if (r.status == "ok") ok.push_back(&r);
    else failures[r.code.empty() ? "error" : r.code].push_back(&r);
  }
  sum.images = static_cast<int64_t>(rows.size());
  sum.ok = static_cast<int64_t>(ok.size());
  sum.failed = sum.images - sum.ok;

  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>facebatch report</title><style>" << kStyle
    << "</style></head>\n<body>\n<h1>facebatch fit report</h1>\n";
  h << "<p class=\"muted\">" << Esc(fmt::format("{} file(s): ", files.size()));
  for (size_t f = 0; f < files.size(); ++f) h << (f ? ", " : "") << Esc(files[f]);
  if (!o.eval_dir.empty()) h << "<br>metrics from eval: " << Esc(o.eval_dir);
  h << "</p>\n";

  // --- summary and timing
  std::vector<double> secs, iters;
  for (const auto* r : ok) secs.push_back(r->seconds), iters.push_back(static_cast<double>(r->iterations));
  const auto ts = metrics::Summarise(secs), is = metrics::Summarise(iters);
  h << "<h2 id=\"summary\">Summary and timing</h2>\n<table>\n";
  h << fmt::format("<tr><th>images</th><td>{}</td></tr><tr><th>ok</th><td>{}</td></tr><tr><th>failed</th><td>{}</td></tr>\n",
                   sum.images, sum.ok, sum.failed);
  h << fmt::format("<tr><th>/fit/seconds (wall time of the image's batch)</th><td>mean {} s, median {} s, p90 {} s, max {} s</td></tr>\n",
                   F4(ts.mean), F4(ts.median), F4(ts.p90), F4(ts.max));
  h << fmt::format("<tr><th>/fit/iterations</th><td>mean {}, median {}, max {}</td></tr>\n", F4(is.mean), F4(is.median),
                   F4(is.max));
  h << "</table>\n";

  // --- contact sheet
  h << "<h2 id=\"sheet\">Contact sheet</h2>\n<table class=\"sheet\">\n<tr><th>image</th><th>input crop</th>"
       "<th>fitted render I(S, A)</th><th>proxy render I(S', A')</th><th>shape shading</th><th>albedo</th></tr>\n";
  const size_t n_sheet = std::min(ok.size(), static_cast<size_t>(o.samples));
  for (size_t k = 0; k < n_sheet; ++k) {
    const Row& r = *ok[k * ok.size() / n_sheet];  // evenly spread over the ids
    h << "<tr><td>" << Esc(r.id) << "<br><span class=\"muted\">l2,1 " << F4(r.l21);
    if (r.eval) h << "<br>NME io " << F4(r.eval->nme_io) << "<br>shape NME " << F4(r.eval->shape_nme);
    h << "</span></td>" << panels.Cells(*shards[r.file], topo_of(r.file), r.row, fmt::format("sheet{:03d}", k), true)
      << "</tr>\n";
    ++sum.sheet;
  }
  h << "</table>\n";

  // --- histograms
  h << "<h2 id=\"histograms\">Error histograms</h2>\n<div class=\"hists\">\n";
  if (!evals.empty()) {
    const std::map<std::string, std::string> titles = {{"l21", "l2,1 reconstruction error (Table 1)"},
                                                       {"nme_io", "landmark NME / inter-ocular"},
                                                       {"nme_bbox", "landmark NME / sqrt(box w h)"},
                                                       {"shape_nme", "shape NME / inter-ocular"},
                                                       {"l21_unoccluded", "l2,1 over the face pixels no occluder hides"}};
    for (const auto& m : MetricNames()) {
      std::vector<double> v;
      for (const auto& e : evals) v.push_back(MetricValue(e, m));
      h << Histogram(titles.at(m), v);
    }
  } else {
    std::vector<double> l21, lm;
    for (const auto* r : ok) l21.push_back(r->l21), lm.push_back(r->landmark_px);
    h << Histogram("photometric l2,1 (fit, /metrics/photometric_l21)", l21)
      << Histogram("landmark error, px (/metrics/landmark_error_px)", lm);
  }
  h << Histogram("fit seconds (/fit/seconds)", secs) << "</div>\n"
    << "<p class=\"muted\">red line: mean; green dashed line: median; hover a bar for its range and count.</p>\n";

  // --- worst fits
  std::vector<const Row*> worst;
  for (const auto* r : ok)
    if (std::isfinite(r->l21)) worst.push_back(r);
  std::sort(worst.begin(), worst.end(), [](const Row* a, const Row* b) { return a->l21 > b->l21; });
  worst.resize(std::min(worst.size(), static_cast<size_t>(o.worst)));
  h << "<h2 id=\"worst\">Worst fits (largest l2,1)</h2>\n<table class=\"sheet\">\n<tr><th>image</th><th>input crop</th>"
       "<th>fitted render</th></tr>\n";
  for (size_t k = 0; k < worst.size(); ++k) {
    const Row& r = *worst[k];
    h << "<tr><td>" << Esc(r.id) << "<br><span class=\"muted\">l2,1 " << F4(r.l21) << "</span></td>"
      << panels.Cells(*shards[r.file], topo_of(r.file), r.row, fmt::format("worst{:03d}", k), false) << "</tr>\n";
    ++sum.worst;
  }
  h << "</table>\n";

  // --- failures
  h << "<h2 id=\"failures\">Failures by reason</h2>\n";
  if (failures.empty()) h << "<p>none</p>\n";
  else {
    h << "<table>\n<tr><th>reason code</th><th>count</th><th>examples</th></tr>\n";
    for (const auto& [code, list] : failures) {
      h << "<tr><td>" << Esc(code) << "</td><td>" << list.size() << "</td><td>";
      for (size_t i = 0; i < std::min<size_t>(list.size(), 5); ++i)
        h << Esc(list[i]->id) << ": " << Esc(list[i]->reason) << "<br>";
      if (list.size() > 5) h << "... and " << list.size() - 5 << " more";
      h << "</td></tr>\n";
    }
    h << "</table>\n";
  }

  // --- configuration
  h << "<h2 id=\"config\">Run configuration</h2>\n";
  for (size_t f = 0; f < shards.size(); ++f) {
    const auto& hd = shards[f]->header();
    h << "<details" << (f == 0 ? " open" : "") << "><summary>" << Esc(files[f]) << "</summary>\n<table>\n";
    for (const auto& [k, v] : hd.int_attrs) h << "<tr><th>" << Esc(k) << "</th><td>" << v << "</td></tr>\n";
    for (const auto& [k, v] : hd.string_attrs)
      if (k != "config" && k != "model_config" && k != "model_provenance")
        h << "<tr><th>" << Esc(k) << "</th><td>" << Esc(v) << "</td></tr>\n";
    h << "</table>\n";
    for (const char* k : {"config", "model_config", "model_provenance"}) {
      auto it = hd.string_attrs.find(k);
      if (it != hd.string_attrs.end()) h << "<p><b>" << k << "</b></p><pre>" << Esc(it->second) << "</pre>\n";
    }
    h << "</details>\n";
  }
  // Marks the page with how many of its images loaded (checked by the tests in headless Chromium).
  h << "<p class=\"muted\" id=\"image-check\"></p>\n<script>\nwindow.addEventListener('load', function () {\n"
       "  var imgs = Array.prototype.slice.call(document.images);\n"
       "  var loaded = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;\n"
       "  document.body.setAttribute('data-images', imgs.length);\n"
       "  document.body.setAttribute('data-images-loaded', loaded);\n"
       "  document.getElementById('image-check').textContent = loaded + ' of ' + imgs.length + ' images loaded';\n"
       "});\n</script>\n</body></html>\n";

  sum.pngs = panels.pngs();
  {
    std::ofstream out(o.out + ".tmp");
    out << h.str();
    if (!out) throw InputError(o.out, "cannot write the report");
  }
  fs::rename(o.out + ".tmp", o.out);
  log::Info("report: {} ({} PNG files in {})", o.out, sum.pngs, sum.files_dir);
  return sum;
}

}  // namespace facebatch::eval

// `facebatch report` end to end: the page opens in headless Chromium and every
// <img> loads (the page writes the counts into <body data-images-loaded>);
// removing one image file makes the check fail. Skipped (exit 77) without chromium.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <regex>

#include "EvalFixture.h"

namespace facebatch {
namespace {
namespace fs = std::filesystem;
using testing::RunCli;

std::string Chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (fs::exists(c)) return c;
  return "";
}

/// Loads `html` in headless Chromium and returns (images, loaded) from the dumped DOM.
std::pair<int, int> ImagesLoaded(const std::string& chromium, const std::string& html, const fs::path& profile) {
  const std::string cmd = chromium +
                          " --headless --no-sandbox --disable-gpu --disable-background-networking"
                          " --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage"
                          " --virtual-time-budget=10000 --user-data-dir='" + profile.string() +
                          "' --dump-dom 'file://" + html + "' 2>/dev/null";
  std::string dom;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) dom.append(buf, n);
    pclose(p);
  }
  std::smatch a, b;
  const bool ok = std::regex_search(dom, a, std::regex("data-images=\"(\\d+)\"")) &&
                  std::regex_search(dom, b, std::regex("data-images-loaded=\"(\\d+)\""));
  EXPECT_TRUE(ok) << "no image counts in the DOM:\n" << dom.substr(0, 2000);
  if (!ok) return {-1, -1};
  return {std::stoi(a[1]), std::stoi(b[1])};
}

TEST(ReportCli, EveryImageLoadsInHeadlessChromium) {
  const auto chromium = Chromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (Debian package `chromium`)";
  testing::EvalPipeline p;
  ASSERT_TRUE(p.Run());
  const auto html = (p.dir / "qa" / "report.html").string();
  fs::create_directories(p.dir / "qa");
  auto r = RunCli({"report", (p.dir / "fit").string(), "--out", html, "--eval", p.eval_dir, "--samples", "3",
                   "--worst", "2", "--threads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto files = p.dir / "qa" / "report_files";
  ASSERT_TRUE(fs::is_directory(files));
  int pngs = 0;
  for (const auto& e : fs::directory_iterator(files)) pngs += e.path().extension() == ".png";
  EXPECT_EQ(pngs, 3 * 5 + 2 * 2);  // sheet: input, fit, proxy, shading, albedo; worst: input, fit
  const auto page = testing::ReadFile(html);
  for (const char* s : {"Contact sheet", "Error histograms", "<svg", "Worst fits", "Failures by reason",
                        "Run configuration", "/fit/seconds", "model_sha256", "aflw2000/image00002"})
    EXPECT_NE(page.find(s), std::string::npos) << s;
  EXPECT_EQ(page.find("http://"), page.find("http://www.w3.org/2000/svg"));  // no network resources
  EXPECT_EQ(page.find("https://"), std::string::npos);

  auto [total, loaded] = ImagesLoaded(chromium, html, p.dir / "profile");
  EXPECT_EQ(total, pngs);
  EXPECT_EQ(loaded, total);
  // The check can fail: a missing file is an image that does not load.
  fs::remove(files / "sheet000_albedo.png");
  auto [total2, loaded2] = ImagesLoaded(chromium, html, p.dir / "profile");
  EXPECT_EQ(total2, pngs);
  EXPECT_EQ(loaded2, pngs - 1);
}

TEST(ReportCli, UsageErrors) {
  testing::TempDir dir;
  auto r = RunCli({"report", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--samples"), std::string::npos) << r.output;
  r = RunCli({"report", "--out", (dir / "r.html").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;  // no input
  r = RunCli({"report", "x.h5", "--eval", (dir / "noeval").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = RunCli({"report", (dir / "missing.h5").string(), "--out", (dir / "r.html").string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("missing.h5"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace facebatch

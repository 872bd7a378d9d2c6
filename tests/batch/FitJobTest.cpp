// The fit job (issue 7): shard files, parts, resume after SIGKILL, the lock,
// the signal exit code, validate/inspect, two CPU workers = one.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <thread>

#include "ModelTestUtil.h"
#include "TestSupport.h"
#include "batch/FitJob.h"
#include "batch/ShardFile.h"
#include "batch/ShardTools.h"
#include "batch/ShardWriter.h"
#include "core/Error.h"
#include "io/Crop.h"
#include "io/Hdf5Rows.h"
#include "io/Manifest.h"
#include "model/FaceModel.h"
#include "model/SyntheticTemplate.h"

namespace facebatch::batch {
namespace {
namespace fs = std::filesystem;
using facebatch::testing::RunCli;
using facebatch::testing::TempDir;
using facebatch::testing::WriteFile;

// A tiny model (64 px images, 24 x 28 UV) and a manifest of `n` noise images
// with 68-point landmarks (one with 5 points) plus one item whose image is missing.
void MakeFixture(const fs::path& dir, int n) {
  auto c = model::testutil::SmallFitConfig();
  auto t = model::SyntheticTemplate(c.uv_rows, c.uv_cols);
  model::FaceModel::Create(c, t, 3).Save((dir / "model.h5").string());
  fs::create_directories(dir / "images");
  std::mt19937 rng(5);
  io::Manifest m;
  m.header.corpus = "folder";
  m.header.root = (dir / "images").string();
  auto tmpl = io::CropTemplate(io::LandmarkConvention::kIbug68, 96);
  for (int i = 0; i <= n; ++i) {
    io::Item it;
    char name[32];
    std::snprintf(name, sizeof(name), "img%03d", i);
    it.id = std::string("folder/") + name;
    it.image = std::string(name) + ".png";
    it.corpus = "folder";
    it.width = it.height = 128;
    it.landmarks.convention = io::LandmarkConvention::kIbug68;
    for (auto p : tmpl) it.landmarks.points.push_back({p.x + 10 + (rng() % 7), p.y + 12 + (rng() % 5)});
    if (i == 1) it.landmarks = io::FiveFrom68(it.landmarks);
    if (i != 2) {  // item 2: missing image
      cv::Mat img(128, 128, CV_8UC3);
      cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(255));
      cv::imwrite((dir / "images" / it.image).string(), img);
    }
    m.items.push_back(it);
  }
  io::WriteManifest((dir / "m.jsonl").string(), m);
}

// The fit command line; `extra` holds (--option, value) pairs that replace the defaults.
std::vector<std::string> FitArgs(const fs::path& dir, const fs::path& out, std::vector<std::string> extra = {}) {
  std::vector<std::pair<std::string, std::string>> opts = {
      {"--manifest", (dir / "m.jsonl").string()}, {"--model", (dir / "model.h5").string()},
      {"--out", out.string()}, {"--shard", "0/1"}, {"--progress", "none"}, {"--threads", "1"},
      {"--steps", "3"}, {"--batch", "2"}, {"--part-size", "2"}};
  for (size_t i = 0; i + 1 < extra.size(); i += 2) {
    bool found = false;
    for (auto& [k, v] : opts) {
      if (k == extra[i]) v = extra[i + 1], found = true;
    }
    if (!found) opts.emplace_back(extra[i], extra[i + 1]);
  }
  std::vector<std::string> a = {"fit"};
  for (const auto& [k, v] : opts) a.push_back(k), a.push_back(v);
  return a;
}

pid_t Spawn(const std::vector<std::string>& args, const fs::path& log) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::fopen(log.c_str(), "w");
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    std::vector<char*> argv;
    std::string bin = facebatch::testing::CliPath();
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& s : copy) argv.push_back(s.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

int Wait(pid_t pid, bool* signalled = nullptr) {
  int st = 0;
  waitpid(pid, &st, 0);
  if (signalled) *signalled = WIFSIGNALED(st);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

io::hdf5::RowData ReadDs(const fs::path& file, const std::string& path) {
  return io::hdf5::RowReader(file.string()).Read(path);
}

void ExpectSameResults(const fs::path& a, const fs::path& b, double tol) {
  EXPECT_EQ(ReadDs(a, "/images/id").strings, ReadDs(b, "/images/id").strings);
  EXPECT_EQ(ReadDs(a, "/images/status").strings, ReadDs(b, "/images/status").strings);
  for (const char* p : {"/latents/f_shape", "/latents/projection", "/maps/albedo", "/vertices/image"}) {
    auto x = ReadDs(a, p).f32, y = ReadDs(b, p).f32;
    ASSERT_EQ(x.size(), y.size()) << p;
    for (size_t i = 0; i < x.size(); ++i) {
      if (std::isnan(x[i])) {
        EXPECT_TRUE(std::isnan(y[i])) << p << " " << i;
      } else {
        ASSERT_NEAR(x[i], y[i], tol * (1 + std::abs(x[i]))) << p << " " << i;
      }
    }
  }
}

TEST(ShardWriter, PartsResumeAndConsolidateInShardOrder) {
  TempDir dir;
  LayoutSizes s;
  s.latent_shape = 3, s.latent_albedo = 2, s.uv_rows = 2, s.uv_cols = 2, s.num_vertices = 4, s.num_triangles = 2;
  s.terms = {"photometric", "total"};
  auto layout = ShardLayout::Make(s, ParseOutputs("shape,vertices"), true);
  ShardHeader h;
  h.triangles = {0, 1, 2, 1, 3, 2};
  h.vertex_uv = std::vector<float>(8, 0.5f);
  h.landmarks68 = std::vector<int64_t>(68, 0);
  h.mask = {1, 1, 1, 1};
  for (const char* a : {"facebatch_version", "model_sha256", "model_provenance", "config", "shard", "manifest_hash"})
    h.string_attrs[a] = "x";
  for (const char* a : {"shard_index", "shard_count", "image_size"}) h.int_attrs[a] = 1;
  auto paths = MakeShardPaths(dir.path().string(), io::ShardSpec::Parse("3/16"));
  EXPECT_EQ(fs::path(paths.file()).filename(), "shard-00003-of-00016.h5");
  std::vector<std::string> ids = {"a", "b", "c", "d", "e"};
  auto record = [&](int i) {
    ImageRecord r;
    r.id = ids[i];
    r.strings["/images/id"] = ids[i];
    r.strings["/images/status"] = i == 3 ? "failed" : "ok";
    r.strings["/images/reason_code"] = i == 3 ? "missing_image" : "";
    r.floats["/latents/f_shape"] = {float(i), float(i) + 0.5f, 1.0f};
    r.floats["/maps/shape"] = std::vector<float>(12, 0.25f * i);
    return r;
  };
  {
    ShardWriter w(paths, h, layout, 2);
    EXPECT_TRUE(w.DoneIds().empty());
    for (int i : {4, 1, 0}) w.Add(record(i));  // one part of 2, one buffered (lost by a "kill")
    WriteFile(fs::path(paths.parts()) / "part-000009.h5.tmp", "half-written");
  }
  ShardWriter w(paths, h, layout, 2);
  auto done = w.DoneIds();
  EXPECT_EQ(done, (std::set<std::string>{"b", "e"}));
  EXPECT_FALSE(fs::exists(fs::path(paths.parts()) / "part-000009.h5.tmp"));
  // Consolidation beside the fit: a killed run's half-written shard file is replaced, the
  // closed part is copied at once and each new part as it closes.
  const auto tmp = paths.file() + ".tmp";
  WriteFile(tmp, "half-written by a killed run");
  w.BeginConsolidation(ids);
  EXPECT_GT(fs::file_size(tmp), 100u);
  for (int i : {0, 2, 3}) w.Add(record(i));
  EXPECT_TRUE(fs::exists(tmp));
  EXPECT_FALSE(fs::exists(paths.file()));
  // Finish does not read the parts copied beside the fit again: the first one ruined now
  // (b and e, from the first run) must not matter, and their rows below prove the copy.
  WriteFile(fs::path(paths.parts()) / "part-000000.h5", "ruined after it was copied");
  auto counts = w.Finish(ids);
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(counts["ok"], 4);
  EXPECT_EQ(counts["failed"], 1);
  EXPECT_EQ(counts["failed:missing_image"], 1);
  EXPECT_TRUE(fs::exists(paths.done()));
  EXPECT_FALSE(fs::exists(paths.parts()));
  EXPECT_EQ(ReadShardIds(paths.file()), ids);
  auto fsh = ReadDs(paths.file(), "/latents/f_shape");
  EXPECT_EQ(fsh.dims, (std::vector<int64_t>{5, 3}));
  EXPECT_FLOAT_EQ(fsh.f32[4 * 3 + 1], 4.5f);
  // Every row lands where the shard's order puts it, whichever part it came from (the parts'
  // chunks are copied as stored: float16 maps too).
  auto maps = ReadDs(paths.file(), "/maps/shape");
  auto status = ReadDs(paths.file(), "/images/status").strings;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(status[i], i == 3 ? "failed" : "ok") << i;
    EXPECT_FLOAT_EQ(fsh.f32[i * 3], float(i)) << i;
    EXPECT_FLOAT_EQ(fsh.f32[i * 3 + 2], 1.0f) << i;
    for (int k = 0; k < 12; ++k) EXPECT_FLOAT_EQ(maps.f32[i * 12 + k], 0.25f * i) << i << " " << k;
  }
  auto info = io::hdf5::RowReader(paths.file()).Describe("/maps/shape");
  EXPECT_EQ(info.dtype, io::hdf5::DType::kFloat16);
  EXPECT_EQ(info.chunk, (std::vector<int64_t>{1, 3, 2, 2}));
  EXPECT_TRUE(info.shuffle && info.deflate);
  ValidateOptions vo;
  vo.file = paths.file();
  auto rep = RunValidate(vo);
  EXPECT_TRUE(rep.ok()) << rep.ToString();

  // A consolidation begun for other ids (here one more) is not used: Finish consolidates the
  // parts at the end instead, to the same file.
  {
    auto other = MakeShardPaths(dir.path().string(), io::ShardSpec::Parse("4/16"));
    ShardWriter w2(other, h, layout, 2);
    w2.DoneIds();
    auto more = ids;
    more.push_back("z");
    w2.BeginConsolidation(more);
    for (int i = 0; i < 5; ++i) w2.Add(record(i));
    w2.Finish(ids);
    EXPECT_EQ(ReadShardIds(other.file()), ids);
    EXPECT_EQ(ReadDs(other.file(), "/latents/f_shape").f32, fsh.f32);
    EXPECT_FALSE(fs::exists(other.file() + ".tmp"));
  }

  // Broken files: a missing dataset, an unknown schema version, not HDF5 at all.
  auto broken_layout = layout;
  broken_layout.fields.erase(broken_layout.fields.begin() + 6);  // /latents/f_shape
  auto broken = (dir / "broken.h5").string();
  std::vector<ImageRecord> recs = {record(0)};
  WriteShardFile(broken, h, broken_layout, recs);
  vo.file = broken;
  rep = RunValidate(vo);
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.ToString().find("missing dataset /latents/f_shape"), std::string::npos) << rep.ToString();
  {
    io::hdf5::RowWriter bw((dir / "v9.h5").string());
    bw.Attr("/", "format", std::string(kShardFormat));
    bw.Attr("/", "schema_version", int64_t{9});
    bw.Close();
  }
  vo.file = (dir / "v9.h5").string();
  rep = RunValidate(vo);
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.ToString().find("unknown schema_version 9"), std::string::npos);
  WriteFile(dir / "text.h5", "not hdf5");
  vo.file = (dir / "text.h5").string();
  EXPECT_FALSE(RunValidate(vo).ok());
}

TEST(FitJobWorkers, AutoGivesOneWorkerPerThreadForSmallModelsAndOneForLargeOnes) {
  const auto demo = model::Preset("demo"), paper = model::Preset("paper");
  EXPECT_EQ(AutoCpuWorkers(demo, 2, 16), 2);
  EXPECT_EQ(AutoCpuWorkers(demo, 8, 3), 3);  // no more workers than batches
  EXPECT_EQ(AutoCpuWorkers(demo, 2, 0), 1);
  EXPECT_EQ(AutoCpuWorkers(demo, 1, 16), 1);
  EXPECT_EQ(AutoCpuWorkers(paper, 16, 100), 1);
}

TEST(ShardLock, SecondHolderIsRefusedAndTheLockIsFreeAgainAfterwards) {
  TempDir dir;
  auto path = (dir / "s.lock").string();
  {
    ShardLock a(path);
    EXPECT_TRUE(a.held());
    try {
      ShardLock b(path);
      FAIL() << "second lock acquired";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("locked by another"), std::string::npos);
    }
  }
  ShardLock c(path);  // released by a's destructor
  EXPECT_TRUE(c.held());
}

class FitJob : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("facebatch-fitjob");
    MakeFixture(dir_->path(), 9);
    ref_ = dir_->path() / "ref";
    auto r = RunCli(FitArgs(dir_->path(), ref_));
    ref_exit_ = r.exit_code;
    ref_output_ = r.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
  static fs::path ref_;
  static int ref_exit_;
  static std::string ref_output_;
  fs::path RefFile() const { return ref_ / "shard-00000-of-00001.h5"; }
};
TempDir* FitJob::dir_ = nullptr;
fs::path FitJob::ref_;
int FitJob::ref_exit_ = -1;
std::string FitJob::ref_output_;

TEST_F(FitJob, WritesAValidShardAndRecordsTheBadItem) {
  ASSERT_EQ(ref_exit_, kExitSomeFailed) << ref_output_;
  ASSERT_TRUE(fs::exists(RefFile()));
  EXPECT_TRUE(fs::exists(ref_ / "shard-00000-of-00001.done.json"));
  EXPECT_FALSE(fs::exists(ref_ / "shard-00000-of-00001.parts"));
  auto v = RunCli({"validate", RefFile().string()});
  EXPECT_EQ(v.exit_code, 0) << v.output;
  auto status = ReadDs(RefFile(), "/images/status").strings;
  auto codes = ReadDs(RefFile(), "/images/reason_code").strings;
  ASSERT_EQ(status.size(), 10u);
  EXPECT_EQ(status[2], "failed");
  EXPECT_EQ(codes[2], "missing_image");
  EXPECT_EQ(status[1], "ok");  // the 5-point item
  auto lm = ReadDs(RefFile(), "/metrics/landmark_error_px").f32;
  EXPECT_TRUE(std::isfinite(lm[0]) && std::isfinite(lm[1]));
  auto it = ReadDs(RefFile(), "/fit/iterations").i64;
  EXPECT_GT(it[0], 0);
  auto i = RunCli({"inspect", RefFile().string()});
  EXPECT_EQ(i.exit_code, 0) << i.output;
  EXPECT_NE(i.output.find("failed:missing_image"), std::string::npos) << i.output;
  EXPECT_NE(i.output.find("schema version 1"), std::string::npos) << i.output;
  // Rerunning a complete shard does nothing.
  auto again = RunCli(FitArgs(dir_->path(), ref_));
  EXPECT_EQ(again.exit_code, kExitSomeFailed);
  EXPECT_NE(again.output.find("already complete"), std::string::npos) << again.output;
  auto bad = RunCli(FitArgs(dir_->path(), ref_, {"--dtype", "f64"}));
  EXPECT_EQ(bad.exit_code, kExitUsage);
}

TEST_F(FitJob, ResumeAfterSigkillAtRandomPointsGivesTheUninterruptedResult) {
  ASSERT_TRUE(fs::exists(RefFile())) << ref_output_;
  std::mt19937 rng(2024);
  int mid_run_kills = 0;  // kills that found closed parts (i.e. interrupted real progress)
  for (int round = 0; round < 5; ++round) {
    auto out = dir_->path() / ("kill" + std::to_string(round));
    int kills = 0;
    const auto parts = out / "shard-00000-of-00001.parts";
    auto count_parts = [&] {
      int n = 0;
      if (fs::exists(parts))
        for (const auto& e : fs::directory_iterator(parts)) n += e.path().extension() == ".h5";
      return n;
    };
    for (int attempt = 0; attempt < 12; ++attempt) {
      // Kill at a random moment after the run has made new progress (one more closed part),
      // or at a random early moment (startup, first batch) every third attempt.
      const int before = count_parts();
      auto pid = Spawn(FitArgs(dir_->path(), out), dir_->path() / "kill.log");
      bool exited = false;
      int st = 0;
      if (attempt % 3 == 2) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 800)(rng)));
      } else {
        for (int i = 0; i < 1000 && count_parts() <= before; ++i) {
          if (waitpid(pid, &st, WNOHANG) == pid) {
            exited = true;
            break;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 150)(rng)));
      }
      if (exited) break;  // it finished first
      kill(pid, SIGKILL);
      bool signalled = false;
      Wait(pid, &signalled);
      if (!signalled) break;
      ++kills;
      if (count_parts() > 0) ++mid_run_kills;
    }
    auto r = RunCli(FitArgs(dir_->path(), out));
    ASSERT_EQ(r.exit_code, kExitSomeFailed) << r.output;
    SCOPED_TRACE("round " + std::to_string(round) + ", kills " + std::to_string(kills));
    std::printf("resume round %d: %d SIGKILLs, %d of them after closed parts so far\n", round, kills, mid_run_kills);
    ExpectSameResults(RefFile(), out / "shard-00000-of-00001.h5", 1e-4);
    EXPECT_EQ(RunCli({"validate", (out / "shard-00000-of-00001.h5").string()}).exit_code, 0);
  }
  EXPECT_GT(mid_run_kills, 0) << "no kill landed after the first part: the test did not exercise resume";
}

TEST_F(FitJob, SigtermExitsWithTheRequeueCodeAndTheLockRefusesASecondProcess) {
  auto out = dir_->path() / "term";
  auto args = FitArgs(dir_->path(), out, {"--part-size", "1", "--batch", "1", "--steps", "400", "--tolerance", "0"});
  auto pid = Spawn(args, dir_->path() / "term.log");
  const auto parts = out / "shard-00000-of-00001.parts";
  for (int i = 0; i < 600 && !(fs::exists(parts) && !fs::is_empty(parts)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // While it runs, a second process on the same shard is refused.
  auto second = RunCli(args);
  EXPECT_EQ(second.exit_code, kExitError) << second.output;
  EXPECT_NE(second.output.find("locked by another"), std::string::npos) << second.output;
  kill(pid, SIGTERM);
  EXPECT_EQ(Wait(pid), kExitIncomplete) << facebatch::testing::ReadFile(dir_->path() / "term.log");
  EXPECT_FALSE(fs::exists(out / "shard-00000-of-00001.done.json"));
  auto r = RunCli(FitArgs(dir_->path(), out, {"--part-size", "1", "--batch", "1"}));
  EXPECT_EQ(r.exit_code, kExitSomeFailed) << r.output;
  EXPECT_NE(r.output.find("already done"), std::string::npos) << r.output;
}

TEST_F(FitJob, TwoCpuWorkersGiveTheSameResultsAsOne) {
  auto one = dir_->path() / "w1";
  auto two = dir_->path() / "w2";
  auto r1 = RunCli(FitArgs(dir_->path(), one, {"--workers", "1", "--threads", "1"}));
  auto r2 = RunCli(FitArgs(dir_->path(), two, {"--workers", "2", "--threads", "2"}));
  ASSERT_EQ(r1.exit_code, kExitSomeFailed) << r1.output;
  ASSERT_EQ(r2.exit_code, kExitSomeFailed) << r2.output;
  ExpectSameResults(one / "shard-00000-of-00001.h5", two / "shard-00000-of-00001.h5", 1e-6);
}

}  // namespace
}  // namespace facebatch::batch

#include <gtest/gtest.h>

#include <malloc.h>

#include <cstdlib>
#include <cstring>

#include "core/Env.h"
#include "core/Error.h"
#include "core/Log.h"
#include "core/Progress.h"

namespace facebatch {
namespace {

TEST(Env, SlurmTag) {
  unsetenv("SLURM_JOB_ID");
  unsetenv("SLURM_ARRAY_JOB_ID");
  unsetenv("SLURM_ARRAY_TASK_ID");
  EXPECT_EQ(env::ReadSlurm().Tag(), "");
  setenv("SLURM_JOB_ID", "900", 1);
  EXPECT_EQ(env::ReadSlurm().Tag(), "900");
  setenv("SLURM_ARRAY_JOB_ID", "123", 1);
  setenv("SLURM_ARRAY_TASK_ID", "4", 1);
  EXPECT_EQ(env::ReadSlurm().Tag(), "123_4");
  setenv("SLURM_ARRAY_TASK_ID", "x4", 1);
  EXPECT_FALSE(env::ReadSlurm().array_task_id.has_value());
  unsetenv("SLURM_JOB_ID");
  unsetenv("SLURM_ARRAY_JOB_ID");
  unsetenv("SLURM_ARRAY_TASK_ID");
}

TEST(Env, ConfigureThreads) {
  EXPECT_EQ(env::ConfigureThreads(1), 1);
  EXPECT_EQ(env::ConfigureThreads(0), env::AvailableCores());
}

TEST(Env, TuneAllocatorKeepsTensorSizedBlocksInTheHeapUnlessTheUserChose) {
  // The user's own glibc variable wins: nothing is changed, and the reason is named.
  setenv("MALLOC_TOP_PAD_", "0", 1);
  auto t = env::TuneAllocator();
  EXPECT_FALSE(t.applied);
  EXPECT_NE(t.description.find("MALLOC_TOP_PAD_"), std::string::npos) << t.description;
  EXPECT_EQ(env::CurrentAllocatorTuning().description, t.description);
  unsetenv("MALLOC_TOP_PAD_");
#ifdef __GLIBC__
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_") || std::getenv("GLIBC_TUNABLES"))
    GTEST_SKIP() << "the test's environment sets glibc's malloc variables";
  t = env::TuneAllocator();
  ASSERT_TRUE(t.applied) << t.description;
  EXPECT_TRUE(env::CurrentAllocatorTuning().applied);
  // An 8 MiB block (a decoder activation of the demo preset at batch 16) now comes from the
  // heap, not from its own mapping: glibc's defaults map anything above 128 KiB at first.
  const auto mapped_before = mallinfo2().hblks;
  void* volatile block = std::malloc(8u << 20);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, 8u << 20);
  EXPECT_EQ(mallinfo2().hblks, mapped_before);
  std::free(block);
#endif
}

TEST(Progress, StatusLineCountsDoneAndFailed) {
  Progress p("index", 10, ProgressMode::kNone, "images");
  p.Add(3, 1);
  p.Add(2);
  EXPECT_EQ(p.done(), 5);
  EXPECT_EQ(p.failed(), 1);
  std::string line = p.StatusLine();
  EXPECT_NE(line.find("5/10 images"), std::string::npos) << line;
  EXPECT_NE(line.find("1 failed"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA"), std::string::npos) << line;
}

TEST(Progress, LogModeWritesSummary) {
  ::testing::internal::CaptureStderr();
  {
    Progress p("job", 2, ProgressMode::kLog, "images");
    p.Add(2, 0);
  }
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("summary job: 2/2 images, 0 failed"), std::string::npos) << err;
}

TEST(Progress, ParseModes) {
  EXPECT_EQ(ParseProgressMode("bar"), ProgressMode::kBar);
  EXPECT_THROW(ParseProgressMode("fancy"), UsageError);
  EXPECT_THROW(log::ParseLevel("loud"), UsageError);
}

}  // namespace
}  // namespace facebatch

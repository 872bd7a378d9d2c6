#include <gtest/gtest.h>

#include "TestSupport.h"
#include "core/Cli.h"
#include "core/Error.h"

namespace facebatch {
namespace {
namespace po = boost::program_options;

struct Opts {
  int steps = 10;
  std::string name = "abc";
  bool flag = false;
};

cli::CommandParser MakeParser(Opts& o) {
  cli::CommandParser p("demo", "facebatch demo [options]", "A demo command.");
  p.options().add_options()
      ("steps", po::value(&o.steps)->default_value(o.steps), "number of steps")
      ("name", po::value(&o.name)->default_value(o.name), "a name")
      ("flag", po::bool_switch(&o.flag), "a switch");
  return p;
}

TEST(Cli, DefaultsAndCommandLine) {
  Opts o;
  auto p = MakeParser(o);
  const char* argv[] = {"demo", "--steps", "7"};
  ASSERT_TRUE(p.Parse(3, argv));
  EXPECT_EQ(o.steps, 7);
  EXPECT_EQ(o.name, "abc");
  EXPECT_FALSE(o.flag);
}

TEST(Cli, CommandLineWinsOverConfigFile) {
  testing::TempDir dir;
  testing::WriteFile(dir / "c.ini", "steps = 3\nname = fromfile\nflag = true\n");
  Opts o;
  auto p = MakeParser(o);
  std::string cfg = (dir / "c.ini").string();
  const char* argv[] = {"demo", "--steps", "5", "--config", cfg.c_str()};
  ASSERT_TRUE(p.Parse(5, argv));
  EXPECT_EQ(o.steps, 5);
  EXPECT_EQ(o.name, "fromfile");
  EXPECT_TRUE(o.flag);
}

TEST(Cli, WriteConfigRoundTrips) {
  testing::TempDir dir;
  std::string out = (dir / "eff.ini").string();
  {
    Opts o;
    auto p = MakeParser(o);
    const char* argv[] = {"demo", "--name", "xyz", "--write-config", out.c_str()};
    ASSERT_TRUE(p.Parse(5, argv));
  }
  std::string text = testing::ReadFile(out);
  EXPECT_NE(text.find("name = xyz"), std::string::npos) << text;
  EXPECT_NE(text.find("# steps = 10"), std::string::npos) << text;
  Opts o;
  auto p = MakeParser(o);
  const char* argv[] = {"demo", "--config", out.c_str()};
  ASSERT_TRUE(p.Parse(3, argv));
  EXPECT_EQ(o.name, "xyz");
  EXPECT_EQ(o.steps, 10);
}

TEST(Cli, UnknownConfigKeyNamesTheFile) {
  testing::TempDir dir;
  testing::WriteFile(dir / "bad.ini", "stepz = 3\n");
  Opts o;
  auto p = MakeParser(o);
  std::string cfg = (dir / "bad.ini").string();
  const char* argv[] = {"demo", "--config", cfg.c_str()};
  try {
    p.Parse(3, argv);
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.ini"), std::string::npos) << e.what();
  }
}

TEST(Cli, BadValueIsUsageError) {
  Opts o;
  auto p = MakeParser(o);
  const char* argv[] = {"demo", "--steps", "many"};
  EXPECT_THROW(p.Parse(3, argv), UsageError);
}

TEST(Cli, HelpReturnsFalseAndListsOptions) {
  Opts o;
  auto p = MakeParser(o);
  const char* argv[] = {"demo", "--help"};
  ::testing::internal::CaptureStdout();
  EXPECT_FALSE(p.Parse(2, argv));
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("--steps"), std::string::npos);
  EXPECT_NE(out.find("--config"), std::string::npos);
}

}  // namespace
}  // namespace facebatch

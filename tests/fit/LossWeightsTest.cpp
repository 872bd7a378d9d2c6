// LossWeights defaults, option binding (command line and INI), checks, and LossTerms.
#include "fit/LossWeights.h"

#include "core/Error.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <boost/program_options.hpp>

#include <sstream>

namespace facebatch::fit {
namespace {

namespace po = boost::program_options;

TEST(LossWeights, PaperDefaults) {
  LossWeights w;
  EXPECT_EQ(w.photometric, 1.0);
  EXPECT_EQ(w.perceptual, 0.0);  // off: needs a user network
  EXPECT_EQ(w.albedo_symmetry, 1.0);
  EXPECT_EQ(w.constancy_alpha, 15.0);
  EXPECT_EQ(w.constancy_p, 0.8);
  EXPECT_EQ(w.PairingBits(), kPaperPairings);
  EXPECT_EQ(w.SymmetryMask(), ResidualSymmetryMask::kOccluded);
  EXPECT_NO_THROW(w.Check());
}

TEST(LossWeights, BindsCommandLineAndIni) {
  LossWeights w;
  w.pairings = "fit";  // a command's own default, set before binding
  po::options_description desc;
  AddLossOptions(desc, w);
  const char* argv[] = {"x", "--loss.landmark", "50", "--loss.perceptual_layers", "relu1, relu2"};
  po::variables_map vm;
  po::store(po::parse_command_line(5, argv, desc), vm);
  std::istringstream ini("[loss]\nlandmark = 7\nalbedo_constancy = 0.25\nconstancy_p = 1.0\n");
  po::store(po::parse_config_file(ini, desc), vm);  // the command line wins
  po::notify(vm);
  EXPECT_EQ(w.landmark, 50.0);
  EXPECT_EQ(w.albedo_constancy, 0.25);
  EXPECT_EQ(w.constancy_p, 1.0);
  EXPECT_EQ(w.photometric, 1.0);
  EXPECT_EQ(w.pairings, "fit");
  EXPECT_EQ(w.PerceptualLayers(), (std::vector<std::string>{"relu1", "relu2"}));
  EXPECT_NO_THROW(w.Check());
}

TEST(LossWeights, CheckNamesTheOption) {
  auto expect_usage = [](LossWeights w, const std::string& needle) {
    try {
      w.Check();
      FAIL() << "no error for " << needle;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  LossWeights w;
  w.landmark = -1;
  expect_usage(w, "--loss.landmark");
  w = LossWeights();
  w.constancy_p = 0;
  expect_usage(w, "--loss.constancy_p");
  w = LossWeights();
  w.pairings = "true-true,both";
  expect_usage(w, "--loss.pairings");
  w = LossWeights();
  w.perceptual = 0.5;
  expect_usage(w, "--loss.perceptual_model");
  w = LossWeights();
  w.perceptual_distance = "l1";
  expect_usage(w, "--loss.perceptual_distance");
}

TEST(LossTerms, WeightedTotalPerImageAndReport) {
  LossTerms terms;
  auto photo = torch::tensor({0.5, 0.25}, torch::kFloat64).requires_grad_(true);
  terms.Add("photometric", 1.0, photo);
  terms.Add("landmark", 100.0, torch::tensor({0.001, 0.002}, torch::kFloat64));
  EXPECT_THROW(terms.Add("landmark", 1.0, torch::zeros({2})), Error);
  EXPECT_THROW(terms.Add("other", 1.0, torch::zeros({3})), Error);
  auto total = terms.Total();
  EXPECT_NEAR(total[0].item<double>(), 0.5 + 0.1, 1e-12);
  EXPECT_NEAR(total[1].item<double>(), 0.25 + 0.2, 1e-12);
  auto v = terms.Values(1);
  EXPECT_NEAR(v["landmark"], 0.002, 1e-12);
  EXPECT_NEAR(v["total"], 0.45, 1e-12);
  EXPECT_NEAR(terms.Means()["photometric"], 0.375, 1e-12);
  terms.Mean().backward();
  EXPECT_NEAR(photo.grad()[0].item<double>(), 0.5, 1e-12);
  std::ostringstream os;
  os << terms;
  EXPECT_EQ(os.str(), "total 0.525 = photometric 0.375 x1 + landmark 0.0015 x100");
  EXPECT_FALSE(terms.Detached().terms()[0].per_image.requires_grad());
}

}  // namespace
}  // namespace facebatch::fit

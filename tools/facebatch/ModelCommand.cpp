// `facebatch model init|info`: one command with sub-verbs.
#include <cstdio>
#include <string>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "model/ModelCommands.h"

namespace facebatch::tools {
namespace {

const char* kModelUsage =
    "Usage: facebatch model <verb> [options]\n\n"
    "Verbs:\n"
    "  init   create an untrained model file (--preset paper|demo, --kind, --uv, --ablation, --out)\n"
    "  info   print a model file's configuration, parameter counts and provenance\n\n"
    "facebatch model <verb> --help shows the verb's options.\n";

std::string JoinArgs(int argc, char** argv) {
  std::string s = "facebatch model";
  for (int i = 0; i < argc; ++i) s += std::string(" ") + argv[i];
  return s;
}

int RunInit(int argc, char** argv) {
  model::ModelInitOptions opts;
  cli::CommandParser parser("model init", "facebatch model init --preset paper|demo --out MODEL.h5 [options]",
                            "Creates an untrained face model file (schemas/model.md).");
  namespace po = cli::po;
  parser.options().add_options()
      ("preset", po::value(&opts.preset)->default_value(opts.preset), "paper (192x224 UV, l=320) | demo (96x112 UV, CPU-sized)")
      ("kind", po::value(&opts.kind)->default_value(opts.kind), "nonlinear | linear (PCA baseline)")
      ("uv", po::value(&opts.uv)->default_value(opts.uv), "UV size RxC overriding the preset's (e.g. 101x117)")
      ("ablation", po::value(&opts.ablation)->default_value(opts.ablation),
       "nonlinear (global only, no proxy) | gl (global-local) | gl-proxy (the paper's full model)")
      ("template", po::value(&opts.template_name)->default_value(opts.template_name), "face template: default (MediaPipe canonical face) | synthetic (half ellipsoid)")
      ("out", po::value(&opts.out)->default_value(opts.out), "output model file (.h5)")
      ("seed", po::value(&opts.seed)->default_value(opts.seed), "weight initialisation seed")
      ("threads", po::value(&opts.threads)->default_value(opts.threads), "compute threads (0 = all cores)");
  if (!parser.Parse(argc, argv)) return kExitOk;
  opts.command = JoinArgs(argc, argv);
  opts.Check();
  auto s = model::RunModelInit(opts);
  std::printf("wrote %s\nparameters: E %lld, D_S %lld, D_A %lld\nweights sha256: %s\n", s.path.c_str(),
              static_cast<long long>(s.counts.encoder), static_cast<long long>(s.counts.shape_decoder),
              static_cast<long long>(s.counts.albedo_decoder), s.weights_sha256.c_str());
  return kExitOk;
}

int RunInfo(int argc, char** argv) {
  model::ModelInfoOptions opts;
  cli::CommandParser parser("model info", "facebatch model info MODEL.h5",
                            "Prints a model file's configuration, parameter counts and provenance.");
  namespace po = cli::po;
  parser.options().add_options()("model", po::value(&opts.path)->default_value(opts.path), "model file");
  parser.Positional("model");
  if (!parser.Parse(argc, argv)) return kExitOk;
  opts.Check();
  auto s = model::RunModelInfo(opts);
  std::fputs(s.text.c_str(), stdout);
  return kExitOk;
}

}  // namespace

int RunModelCommand(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    std::fputs(kModelUsage, stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string verb = argv[1];
  if (verb == "init") return RunInit(argc - 1, argv + 1);
  if (verb == "info") return RunInfo(argc - 1, argv + 1);
  throw UsageError("model: unknown verb '" + verb + "' (expected init or info; see `facebatch model --help`)");
}

}  // namespace facebatch::tools

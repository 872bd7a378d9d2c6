// `facebatch make-samples`: write the small sample corpora (lib/io/SampleCorpora.h).
#include <iostream>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "io/SampleCorpora.h"

namespace facebatch::tools {

int RunMakeSamplesCommand(int argc, char** argv) {
  io::SampleOptions o;
  cli::CommandParser p("make-samples", "facebatch make-samples --out DIR [--seed S] [--corpora all]",
                       "Writes small sample corpora in the real layouts: DIR/300W-LP, DIR/AFLW2000, DIR/CelebA,\n"
                       "DIR/folder (drawn face-like images, MAT v5 compressed .mat files, CelebA lists, .pts).");
  namespace po = cli::po;
  p.options().add_options()
      ("out", po::value(&o.out), "output directory (required)")
      ("seed", po::value(&o.seed)->default_value(o.seed), "random seed (same seed, same files)")
      ("corpora", po::value(&o.corpora)->default_value(o.corpora), "all, or a comma list of 300w-lp, aflw2000, celeba, folder");
  if (!p.Parse(argc, argv)) return kExitOk;
  o.Check();
  std::cout << io::MakeSamples(o).ToString();
  return kExitOk;
}

}  // namespace facebatch::tools

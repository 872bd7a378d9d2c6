// `facebatch synth`: synthetic face corpora with ground truth (lib/synth/Synth.h).
#include <iostream>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "io/Corpus.h"
#include "synth/Synth.h"

namespace facebatch::tools {

int RunSynthCommand(int argc, char** argv) {
  synth::SynthOptions o;
  cli::CommandParser p("synth",
                       "facebatch synth --layout 300w-lp|aflw2000|celeba --out DIR --count N --seed S [--threads T] "
                       "[--uv RxC] [--yaw-max D] [--from FITS.h5 --per-identity K]",
                       "Renders procedural synthetic faces (random identity, expression, pose, lighting, background,\n"
                       "occluders) and writes them in a real corpus layout under DIR, plus the ground truth\n"
                       "DIR/facebatch_ground_truth.h5 (schemas/ground_truth.md). Same seed, same files.");
  namespace po = cli::po;
  p.options().add_options()
      ("layout", po::value(&o.layout), "300w-lp, aflw2000 or celeba (required)")
      ("out", po::value(&o.out), "corpus root to write (required)")
      ("count", po::value(&o.count)->default_value(o.count), "faces to render (300W-LP with --flip: 2 images each)")
      ("seed", po::value(&o.seed)->default_value(o.seed), "random seed (same seed, same files)")
      ("threads", po::value(&o.threads)->default_value(o.threads), "worker threads (0: all cores)")
      ("uv", po::value(&o.uv)->default_value(o.uv), "UV size RxC of the ground-truth maps")
      ("yaw-max", po::value(&o.yaw_max)->default_value(o.yaw_max), "max |yaw| in degrees (-1: 90, CelebA 30)")
      ("pitch-max", po::value(&o.pitch_max)->default_value(o.pitch_max), "max |pitch| in degrees (-1: 30, CelebA 15)")
      ("roll-max", po::value(&o.roll_max)->default_value(o.roll_max), "max |roll| in degrees (-1: 20, CelebA 0: aligned)")
      ("occluders", po::value(&o.occluders)->default_value(o.occluders), "probability of an occluder per image")
      ("expressions", po::value(&o.expressions)->default_value(o.expressions),
       "probability of an expression (open mouth and/or closed eyes)")
      ("facial-hair", po::value(&o.facial_hair)->default_value(o.facial_hair),
       "probability of facial hair (beard, moustache, stubble) per identity")
      ("per-identity", po::value(&o.per_identity)->default_value(o.per_identity), "images per synthetic identity")
      ("subsets", po::value(&o.subsets)->default_value(o.subsets), "300W-LP subsets (comma list), faces assigned round-robin")
      ("landmark-sets", po::value(&o.landmark_sets)->default_value(o.landmark_sets),
       "300W-LP subsets that get landmarks/<SET>/<name>_pts.mat: all, none, or a comma list")
      ("flip", po::value(&o.flip)->default_value(o.flip), "300W-LP: also write the mirrored <SET>_Flip copies")
      ("progress", po::value(&o.progress)->default_value(o.progress), "auto, bar, log or none")
      ("preview", po::value(&o.preview)->default_value(o.preview), "also write a PNG grid of up to 24 of the images")
      ("from", po::value(&o.from)->default_value(o.from),
       "re-render the ok fits of this fit output (shard or merged file with shape and albedo maps) under new "
       "poses and lights instead of random faces; --count 0: every fit x --per-identity");
  if (!p.Parse(argc, argv)) return kExitOk;
  // One corpus vocabulary with `index --corpus` (300wlp, 300W_LP, AFLW2000-3D, ... are aliases).
  try {
    const auto kind = io::ParseCorpusKind(o.layout);
    if (kind != io::CorpusKind::kFolder) o.layout = io::ToString(kind);
  } catch (const UsageError&) {
    // Check() names the bad value below.
  }
  o.Check();
  std::cout << synth::RunSynth(o).ToString();
  return kExitOk;
}

}  // namespace facebatch::tools

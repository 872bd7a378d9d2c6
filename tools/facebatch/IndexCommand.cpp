// `facebatch index`: read a corpus into a manifest (lib/io/Index.h).
#include <iostream>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "io/Index.h"

namespace facebatch::tools {

int RunIndexCommand(int argc, char** argv) {
  io::IndexOptions o;
  cli::CommandParser p(
      "index",
      "facebatch index --root DIR --out MANIFEST [--corpus auto|300w-lp|aflw2000|celeba|folder] [options]",
      "Reads a face corpus (images, landmarks, .mat ground truth) in parallel and writes a manifest\n"
      "(JSON Lines, schemas/manifest.md). Bad items are recorded with a status and a reason; the exit\n"
      "code is 3 when some items failed.");
  namespace po = cli::po;
  p.options().add_options()
      ("corpus", po::value(&o.corpus)->default_value(o.corpus), "300w-lp, aflw2000, celeba, folder, or auto (from the layout)")
      ("root", po::value(&o.root), "corpus root directory (required)")
      ("out", po::value(&o.out), "manifest file to write (required)")
      ("partition", po::value(&o.partition)->default_value(o.partition), "CelebA: all, train, val or test (list_eval_partition.txt)")
      ("detect", po::value(&o.detect)->default_value(o.detect), "folder images without .pts: none (failed item) or dlib (detect faces + 68 landmarks)")
      ("shape-predictor", po::value(&o.shape_predictor)->default_value(o.shape_predictor), "dlib 68-point shape predictor model")
      ("landmark-origin", po::value(&o.landmark_origin)->default_value(o.landmark_origin), "0 or 1: coordinate of the top-left pixel centre in the corpus's landmark files (subtracted on reading)")
      ("max-pixels", po::value(&o.max_pixels)->default_value(o.max_pixels), "images with more pixels are failed items (checked from the header, before decoding)")
      ("threads", po::value(&o.threads)->default_value(o.threads), "worker threads (0: all cores)")
      ("progress", po::value(&o.progress)->default_value(o.progress), "auto, bar, log or none");
  if (!p.Parse(argc, argv)) return kExitOk;
  o.Check();
  io::IndexSummary s = io::RunIndex(o);
  std::cout << s.ToString();
  return s.ExitCode();
}

}  // namespace facebatch::tools

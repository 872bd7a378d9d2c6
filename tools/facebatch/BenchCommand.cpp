// `facebatch bench`: throughput and per-stage breakdown of the fit job (lib/bench/Bench.h).
#include <cstdio>

#include "Commands.h"
#include "bench/Bench.h"
#include "core/Cli.h"
#include "core/Error.h"

namespace facebatch::tools {

int RunBenchCommand(int argc, char** argv) {
  bench::BenchOptions o;
  cli::CommandParser p(
      "bench",
      "facebatch bench [--preset demo|paper|both] [--model F.h5] [--device cpu|cuda] [--batch B] [--iterations N] "
      "[--threads 1,2,..|max] [--default-fit-batches 1] [--train-steps 2] [--levers 1] [--json FILE]",
      "Measures the fit job on this machine with a fresh (untrained) model of the preset, or --model, on the bundled\n"
      "sample images: images/s for the whole fit of a batch and a per-stage breakdown (image decode, crop, encoder,\n"
      "per fit iteration decode maps / render / losses / backward / optimiser step, final decode, HDF5 write through\n"
      "the real shard writer), the ratio of a fit iteration to the decoders' forward + backward alone (this machine's\n"
      "reference), thread scaling, and peak RSS. Prints a table; --json also writes it as JSON (docs/bench.md).");
  namespace po = cli::po;
  p.options().add_options()
      ("preset", po::value(&o.preset)->default_value(o.preset), "demo | paper | both (fresh untrained model of the preset)")
      ("model", po::value(&o.model)->default_value(o.model), "benchmark this model file instead of a preset")
      ("device", po::value(&o.device)->default_value(o.device), "cpu | cuda | cuda:K")
      ("batch", po::value(&o.batch)->default_value(o.batch), "images per fit batch")
      ("iterations", po::value(&o.iterations)->default_value(o.iterations), "optimiser iterations per batch (no early exit)")
      ("repeats", po::value(&o.repeats)->default_value(o.repeats), "timed passes per thread count (the median is reported), after a warm-up")
      ("threads", po::value(&o.threads)->default_value(o.threads), "max (1, 2, 4, ... up to all cores) or a comma list, e.g. 1,2")
      ("samples", po::value(&o.samples)->default_value(o.samples), "corpus directory of the images (\"\": the bundled samples/300W-LP)")
      ("default-fit-batches", po::value(&o.default_fit_batches)->default_value(o.default_fit_batches), "batches then fitted with the `facebatch fit` defaults (schedule, early exit) at the most threads: images/s at the defaults (0: skip)")
      ("train-steps", po::value(&o.train_steps)->default_value(o.train_steps), "timed `facebatch train` steps per phase (pre-training, full objective, the encoder stage) at --train-batch, at the most threads (0: skip)")
      ("train-batch", po::value(&o.train_batch)->default_value(o.train_batch), "images per training step")
      ("levers", po::value(&o.levers)->default_value(o.levers), "1: measure the inference levers one by one (decoders' forward + backward at each cumulative setting) and a joint fit iteration at each, then the fit at its defaults with every lever off and with the default levers, alternating (0: skip)")
      ("json", po::value(&o.json)->default_value(o.json), "also write the report as JSON to this file");
  if (!p.Parse(argc, argv)) return kExitOk;
  o.Check();
  auto r = bench::RunBench(o);
  std::fputs(r.ToTable().c_str(), stdout);
  return kExitOk;
}

}  // namespace facebatch::tools

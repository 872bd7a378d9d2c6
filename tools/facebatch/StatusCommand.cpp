// `facebatch status DIR` (lib/batch/Status.h).
#include <cstdio>

#include "Commands.h"
#include "batch/Status.h"
#include "core/Cli.h"
#include "core/Error.h"

namespace facebatch::tools {

int RunStatusCommand(int argc, char** argv) {
  batch::StatusOptions o;
  cli::CommandParser p(
      "status", "facebatch status DIR [--json] [--num-shards N] [--manifest M.jsonl]",
      "Reports every shard of a fit output directory as done (verified completion marker), running (its lock\n"
      "is held), failed (started, stopped before completion) or missing, the image counts by status and\n"
      "failure reason, and the SLURM --array= list of the shards to resubmit (failed + missing).");
  namespace po = cli::po;
  p.options().add_options()
      ("dir", po::value(&o.dir), "fit output directory (the --out of `facebatch fit`)")
      ("num-shards", po::value(&o.num_shards)->default_value(o.num_shards), "number of shards N (0 = from the file names; needed when no shard has started)")
      ("manifest", po::value(&o.manifest)->default_value(o.manifest), "manifest, for the sizes of unfinished shards (default: the manifest_path recorded in the files, when it exists)")
      ("json", po::bool_switch(&o.json), "machine-readable output (schemas/merge.md)");
  p.Positional("dir");
  if (!p.Parse(argc, argv)) return kExitOk;
  o.Check();
  const auto s = batch::RunStatus(o);
  std::fputs((o.json ? s.ToJson() : s.ToText()).c_str(), stdout);
  return kExitOk;
}

}  // namespace facebatch::tools

// `facebatch merge` and `facebatch status` (lib/batch/Merge.h, lib/batch/Status.h).
#include <cstdio>

#include "Commands.h"
#include "batch/Merge.h"
#include "batch/Status.h"
#include "core/Cli.h"
#include "core/Error.h"

namespace facebatch::tools {

int RunMergeCommand(int argc, char** argv) {
  batch::MergeOptions o;
  cli::CommandParser p(
      "merge", "facebatch merge SHARD_DIR_OR_FILES... --out MERGED.h5 [--allow-missing] [--copy] [--num-shards N]",
      "Combines the completed shard files of a fit into one HDF5 file in the shard schema (schemas/shard.md,\n"
      "schemas/merge.md): by default virtual datasets over the shards (no copy; source paths relative to the\n"
      "merged file, so the directory can move with its shards), with --copy one self-contained file. Every\n"
      "shard's completion marker and row counts are verified first; missing or incomplete shards are listed\n"
      "and the merge refuses (exit 1) unless --allow-missing, which records them in the file.");
  namespace po = cli::po;
  p.options().add_options()
      ("inputs", po::value(&o.inputs)->multitoken(), "fit output directories and/or shard files shard-IIIII-of-NNNNN.h5")
      ("out", po::value(&o.out)->default_value(o.out), "merged file (.h5; required; written as .tmp and renamed)")
      ("num-shards", po::value(&o.num_shards)->default_value(o.num_shards), "number of shards N (0 = from the file names)")
      ("allow-missing", po::bool_switch(&o.allow_missing), "merge the complete shards even when others are missing or incomplete (recorded in the file's merged_missing attribute)")
      ("copy", po::bool_switch(&o.copy), "write one self-contained file (chunked, compressed) instead of virtual datasets");
  p.Positional("inputs", -1);
  if (!p.Parse(argc, argv)) return kExitOk;
  for (int i = 0; i < argc; ++i) o.command += (i ? " " : "facebatch ") + std::string(argv[i]);
  o.Check();
  std::fputs(batch::RunMerge(o).ToString().c_str(), stdout);
  return kExitOk;
}

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

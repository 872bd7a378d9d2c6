// `facebatch merge` (lib/batch/Merge.h).
#include <cstdio>

#include "Commands.h"
#include "batch/Merge.h"
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

}  // namespace facebatch::tools

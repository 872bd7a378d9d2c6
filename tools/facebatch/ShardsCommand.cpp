// `facebatch shards`: print how a manifest splits into N shards (lib/io/Shard.h).
#include <iostream>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "io/Shard.h"

namespace facebatch::tools {

int RunShardsCommand(int argc, char** argv) {
  io::ShardsOptions o;
  cli::CommandParser p("shards", "facebatch shards --manifest MANIFEST --num-shards N [--shard i/N|auto]",
                       "Prints the shard plan: for each shard i/N its item count and first/last id. Only items\n"
                       "with status ok are sharded; the k-th ok item (manifest order) goes to shard k mod N.");
  namespace po = cli::po;
  p.options().add_options()
      ("manifest", po::value(&o.manifest), "manifest written by `facebatch index` (required)")
      ("num-shards", po::value(&o.num_shards)->default_value(o.num_shards), "number of shards N (>= 1)")
      ("shard", po::value(&o.shard)->default_value(o.shard), "i/N (0-based) or auto ($SLURM_ARRAY_TASK_ID): print that shard's item ids instead of the plan");
  if (!p.Parse(argc, argv)) return kExitOk;
  o.Check();
  std::cout << io::RunShards(o).ToString();
  return kExitOk;
}

}  // namespace facebatch::tools

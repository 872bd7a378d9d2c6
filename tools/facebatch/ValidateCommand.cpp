// `facebatch validate FILE`: structural checks of a shard file (lib/batch/ShardTools.h).
#include <cstdio>

#include "Commands.h"
#include "batch/ShardTools.h"
#include "core/Cli.h"
#include "core/Error.h"

namespace facebatch::tools {

int RunValidateCommand(int argc, char** argv) {
  batch::ValidateOptions o;
  cli::CommandParser p("validate", "facebatch validate SHARD.h5",
                       "Checks a shard file against schemas/shard.md (attributes, datasets, dims, element types,\n"
                       "chunking and filters, statuses, unique ids). Exit 0 when valid, 1 otherwise.");
  namespace po = cli::po;
  p.options().add_options()("file", po::value(&o.file), "shard file");
  p.Positional("file");
  if (!p.Parse(argc, argv)) return kExitOk;
  o.Check();
  auto r = batch::RunValidate(o);
  std::fputs(r.ToString().c_str(), stdout);
  return r.ok() ? kExitOk : kExitError;
}

int RunInspectCommand(int argc, char** argv) {
  batch::InspectOptions o;
  cli::CommandParser p("inspect", "facebatch inspect FILE",
                       "Summarises a shard file, a completion marker, a manifest or a model file: schema version,\n"
                       "counts by status, failures by reason, configuration.");
  namespace po = cli::po;
  p.options().add_options()("file", po::value(&o.file), "file to inspect");
  p.Positional("file");
  if (!p.Parse(argc, argv)) return kExitOk;
  o.Check();
  std::fputs(batch::RunInspect(o).text.c_str(), stdout);
  return kExitOk;
}

}  // namespace facebatch::tools

// The `facebatch` binary: a table of commands (see Commands.h).
#include <vector>

#include "Commands.h"
#include "core/Cli.h"

int main(int argc, char** argv) {
  using facebatch::cli::Command;
  static const std::vector<Command> table = {
      {"model", "create (init) or describe (info) a face model file", &facebatch::tools::RunModelCommand},
  };
  return facebatch::cli::Dispatch(table, argc, argv);
}

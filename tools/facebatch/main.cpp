// The `facebatch` binary: a table of commands (see Commands.h).
#include <vector>

#include "Commands.h"
#include "core/Cli.h"

int main(int argc, char** argv) {
  using facebatch::cli::Command;
  static const std::vector<Command> table = {
  };
  return facebatch::cli::Dispatch(table, argc, argv);
}

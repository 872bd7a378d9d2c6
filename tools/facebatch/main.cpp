// The `facebatch` binary: a table of commands (see Commands.h).
#include <vector>

#include "Commands.h"
#include "core/Cli.h"

int main(int argc, char** argv) {
  using facebatch::cli::Command;
  static const std::vector<Command> table = {
      {"render-template", "render the default face template to PNGs (poses x lights)", &facebatch::tools::RunRenderTemplateCommand},
  };
  return facebatch::cli::Dispatch(table, argc, argv);
}

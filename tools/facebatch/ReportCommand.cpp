// `facebatch report`: a static HTML QA page of fit outputs (lib/eval/Report.h, docs/eval.md).
#include <iostream>

#include "Commands.h"
#include "core/Cli.h"
#include "core/Error.h"
#include "eval/Report.h"

namespace facebatch::tools {

int RunReportCommand(int argc, char** argv) {
  eval::ReportOptions o;
  cli::CommandParser p(
      "report", "facebatch report DIR_OR_FILES... --out report.html [--eval EVALDIR] [--samples N]",
      "Writes a static HTML page (no network; PNGs beside it in <name>_files/) about fit outputs: a contact\n"
      "sheet of sampled fits (input crop, fitted render, proxy render, shape shading, albedo), error\n"
      "histograms (from --eval, a `facebatch eval` directory, else the fit's own metrics), the worst fits,\n"
      "failures grouped by reason, run configuration and timing.");
  namespace po = cli::po;
  p.options().add_options()
      ("input", po::value(&o.inputs)->multitoken(), "fit output files or directories (positional)")
      ("out", po::value(&o.out)->default_value(o.out), "the HTML page to write")
      ("eval", po::value(&o.eval_dir)->default_value(o.eval_dir), "a `facebatch eval` output directory")
      ("samples", po::value(&o.samples)->default_value(o.samples), "fits on the contact sheet")
      ("worst", po::value(&o.worst)->default_value(o.worst), "worst fits shown")
      ("threads", po::value(&o.threads)->default_value(o.threads), "CPU threads (0: all cores)");
  p.Positional("input", -1);
  if (!p.Parse(argc, argv)) return kExitOk;
  o.Check();
  std::cout << eval::RunReport(o).ToString();
  return kExitOk;
}

}  // namespace facebatch::tools

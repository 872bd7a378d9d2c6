#pragma once
// Command-line framework of the `facebatch` binary (COLMAP-like): each command
// parses its options (command line, then an optional --config INI file; the
// command line wins) into a typed options struct, validates it with Check(),
// and calls a typed Run...(options) function from lib/.
#include <boost/program_options.hpp>

#include <map>
#include <string>
#include <vector>

namespace facebatch::cli {

namespace po = boost::program_options;

/// Options every command accepts (handled by CommandParser itself).
struct CommonOptions {
  std::string config_file;        ///< --config FILE.ini
  std::string write_config_file;  ///< --write-config FILE.ini: the effective configuration
  std::string log_level = "info"; ///< --log-level debug|info|warn|error|off
};

class CommandParser {
 public:
  /// `usage` is the one-line synopsis, `description` a paragraph shown by --help.
  CommandParser(std::string command, std::string usage, std::string description);

  /// The command's own options; each may also be given in the --config file.
  po::options_description& options() { return options_; }
  /// Declares that bare arguments fill option `name` (max_count -1: any number).
  void Positional(const char* name, int max_count = 1);

  /// Parses argv (argv[0] is the command name). Returns false when --help was
  /// printed (the command should exit 0). Throws UsageError on bad input,
  /// naming the config file when the problem is there. Applies --log-level and
  /// writes --write-config.
  bool Parse(int argc, const char* const argv[]);
  bool Parse(int argc, char* argv[]) { return Parse(argc, const_cast<const char* const*>(argv)); }

  const po::variables_map& vm() const { return vm_; }
  const CommonOptions& common() const { return common_; }
  std::string HelpText() const;
  /// The effective configuration as INI text: every option with its value
  /// (explicit values as `key = value`, defaults as `# key = value`).
  std::string EffectiveConfig() const;

 private:
  std::string command_, usage_, description_;
  po::options_description options_;
  po::options_description common_desc_;
  po::positional_options_description positional_;
  po::variables_map vm_;
  CommonOptions common_;
  std::map<std::string, std::vector<std::string>> explicit_values_;
};

/// One row of the command table.
struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  ///< argv[0] is the command name
};

/// Runs the command named by argv[1] from `table`; handles `help`, `version`,
/// `<cmd> --help`, and turns exceptions into messages and exit codes
/// (UsageError -> 2, other errors -> 1).
int Dispatch(const std::vector<Command>& table, int argc, char** argv);

}  // namespace facebatch::cli

#include "core/Cli.h"

#include <facebatch/Version.h>
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/Error.h"
#include "core/Log.h"

namespace facebatch::cli {

CommandParser::CommandParser(std::string command, std::string usage, std::string description)
    : command_(std::move(command)),
      usage_(std::move(usage)),
      description_(std::move(description)),
      options_("Options (also accepted in the --config INI file)"),
      common_desc_("Common options") {
  common_desc_.add_options()
      ("help,h", "print this help and exit")
      ("config", po::value(&common_.config_file), "read options from an INI file (`key = value`); the command line wins")
      ("write-config", po::value(&common_.write_config_file), "write the effective configuration to this INI file")
      ("log-level", po::value(&common_.log_level)->default_value(common_.log_level), "debug, info, warn, error or off");
}

void CommandParser::Positional(const char* name, int max_count) { positional_.add(name, max_count); }

std::string CommandParser::HelpText() const {
  std::ostringstream os;
  os << "Usage: " << usage_ << "\n\n" << description_ << "\n\n" << options_ << "\n" << common_desc_;
  return os.str();
}

bool CommandParser::Parse(int argc, const char* const argv[]) {
  po::options_description all;
  all.add(options_).add(common_desc_);
  try {
    po::parsed_options cmdline =
        po::command_line_parser(argc, argv)  // skips argv[0]
           .options(all).positional(positional_).run();
    for (const auto& o : cmdline.options) {
      if (o.unregistered || o.string_key.empty()) continue;
      if (options_.find_nothrow(o.string_key, false))
        explicit_values_[o.string_key] = o.value.empty() ? std::vector<std::string>{"true"} : o.value;
    }
    po::store(cmdline, vm_);
    if (vm_.count("help")) {
      std::cout << HelpText();
      return false;
    }
    if (vm_.count("config")) {
      const std::string path = vm_["config"].as<std::string>();
      std::ifstream in(path);
      if (!in) throw UsageError(path + ": cannot open the config file");
      po::parsed_options file = [&] {
        try {
          return po::parse_config_file(in, options_, false);
        } catch (const po::error& e) {
          throw UsageError(path + ": " + e.what());
        }
      }();
      for (const auto& o : file.options)
        if (!explicit_values_.count(o.string_key)) explicit_values_[o.string_key] = o.value;
      try {
        po::store(file, vm_);  // values already set on the command line are kept
      } catch (const po::error& e) {
        throw UsageError(path + ": " + e.what());
      }
    }
    po::notify(vm_);
  } catch (const po::error& e) {
    throw UsageError(fmt::format("{}: {} (see `facebatch {} --help`)", command_, e.what(), command_));
  }
  log::SetLevel(log::ParseLevel(common_.log_level));
  if (!common_.write_config_file.empty()) {
    std::ofstream out(common_.write_config_file);
    if (!out) throw InputError(common_.write_config_file, "cannot write the configuration file");
    out << EffectiveConfig();
  }
  return true;
}

std::string CommandParser::EffectiveConfig() const {
  std::ostringstream os;
  os << "# facebatch " << FACEBATCH_VERSION << " `" << command_ << "` configuration\n";
  for (const auto& opt : options_.options()) {
    const std::string& key = opt->long_name();
    if (!opt->description().empty()) os << "# " << opt->description() << "\n";
    auto it = explicit_values_.find(key);
    if (it != explicit_values_.end()) {
      for (const auto& v : it->second) os << key << " = " << v << "\n";
      continue;
    }
    // Default: boost formats it as "arg (=value)".
    std::string param = opt->format_parameter();
    auto p = param.find("(=");
    if (p != std::string::npos && param.back() == ')')
      os << "# " << key << " = " << param.substr(p + 2, param.size() - p - 3) << "\n";
    else
      os << "# " << key << " =\n";
  }
  return os.str();
}

namespace {
void PrintUsage(const std::vector<Command>& table) {
  std::printf("facebatch %s: fit a nonlinear 3D morphable face model to face corpora, in shards.\n\n", FACEBATCH_VERSION);
  std::printf("Usage: facebatch <command> [options]   (facebatch <command> --help for its options)\n\nCommands:\n");
  for (const auto& c : table) std::printf("  %-13s %s\n", c.name, c.summary);
  std::printf("  %-13s %s\n  %-13s %s\n", "help", "list the commands", "version", "print the version");
}
}  // namespace

int Dispatch(const std::vector<Command>& table, int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "help" || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    if (argc >= 3) {
      for (const auto& c : table)
        if (argv[2] == std::string(c.name)) {
          char help[] = "--help";
          char* args[] = {argv[2], help};
          return c.run(2, args);
        }
    }
    PrintUsage(table);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string name = argv[1];
  if (name == "version" || name == "--version") {
    std::printf("facebatch %s\n", FACEBATCH_VERSION);
    return kExitOk;
  }
  for (const auto& c : table) {
    if (name != c.name) continue;
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const UsageError& e) {
      log::Error("{}", e.what());
      return kExitUsage;
    } catch (const std::exception& e) {
      log::Error("facebatch {}: {}", name, e.what());
      return kExitError;
    }
  }
  std::fprintf(stderr, "facebatch: unknown command '%s' (see `facebatch help`)\n", name.c_str());
  return kExitUsage;
}

}  // namespace facebatch::cli

#pragma once
// Errors of facebatch. Every error that concerns a file names it: "<path>: <problem>".
#include <stdexcept>
#include <string>

namespace facebatch {

/// Base class of all facebatch errors.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad command-line or configuration values (exit code kExitUsage).
class UsageError : public Error {
 public:
  using Error::Error;
};

/// A problem with one input file: the message starts with the path.
class InputError : public Error {
 public:
  InputError(const std::string& path, const std::string& problem)
      : Error(path + ": " + problem), path_(path), problem_(problem) {}
  const std::string& path() const { return path_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string path_;
  std::string problem_;
};

/// Process exit codes, documented in README ("Exit codes").
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,        ///< the run failed (bad input for the whole run, I/O error)
  kExitUsage = 2,        ///< bad command line or configuration
  kExitSomeFailed = 3,   ///< the run finished, but some items were recorded as failed
  kExitIncomplete = 75,  ///< interrupted (SIGTERM/SIGUSR1): incomplete, requeue me (EX_TEMPFAIL)
};

}  // namespace facebatch

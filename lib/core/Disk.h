#pragma once
// What is wrong with the file system under a path that could not be written: the words a
// write error gets so that a user sees "no space left" rather than a library's "cannot close".
#include <string>

namespace facebatch {

/// For a path (a file or a directory, existing or not) whose write failed: "" when its file
/// system looks fine, else " (no space left on the device: 12 KiB free on /scratch)",
/// " (read-only file system)" or " (the directory is not writable)" (the nearest existing
/// directory is inspected with statvfs/access).
std::string DiskDiagnosis(const std::string& path);

/// Throws InputError(dir, ...) unless `dir` (created if missing) takes a new file: a probe file
/// is created and removed. For output directories, before any work starts.
void CheckWritableDirectory(const std::string& dir, const std::string& what);

}  // namespace facebatch

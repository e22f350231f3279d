// Crash-safe file writes and bounded file reads, for configuration and state
// files.
//
// A reader of a file written with WriteFileAtomically sees either the old
// contents or the new ones, never a mix, even if the machine loses power:
//
//   absl::Status status = WriteFileAtomically("/srv/omd/etc/node.conf", text,
//   0600); absl::StatusOr<std::string> text =
//       ReadFileToString("/srv/omd/etc/node.conf", 1 << 20);
//   absl::Status status = MakeDirectories("/srv/omd/var/log", 0755);
//   absl::StatusOr<int> removed = RemoveTemporaryFiles("/srv/omd/etc/node.conf");
#ifndef OMD_CONFIG_ATOMIC_FILE_H_
#define OMD_CONFIG_ATOMIC_FILE_H_

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace omd::config {

// Replaces `path` with `contents`, permissions exactly `mode` whatever the
// umask. Writes a temporary file next to `path`, syncs it, renames it over
// `path` and syncs the directory. On failure the temporary file is removed and
// `path` is left as it was, except if only the final directory sync fails:
// `path` then already has the new contents, which may not survive a crash.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents, mode_t mode);

// Like WriteFileAtomically, but never replaces an existing file: ALREADY_EXISTS
// if `path` exists, even if it appears while the contents are being written.
// For files created once that another process may be creating too.
absl::Status CreateFileAtomically(const std::string& path,
                                  absl::string_view contents, mode_t mode);

// Removes the temporary files that writes of `path` (WriteFileAtomically,
// CreateFileAtomically) left behind when their process died mid-write, and
// returns how many. Only for callers that know no other write of `path` is under
// way, e.g. because every writer holds the same lock: it would remove that
// write's file too, and make it fail.
absl::StatusOr<int> RemoveTemporaryFiles(const std::string& path);

// The contents of `path`. NOT_FOUND if it does not exist, RESOURCE_EXHAUSTED if
// it holds more than `max_bytes`, so a runaway file cannot exhaust memory.
absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             size_t max_bytes);

// Creates `path` and its missing parents, like `mkdir -p`. Directories it
// creates get exactly `mode`; existing ones are left as they are.
// FAILED_PRECONDITION if `path` or a parent exists and is not a directory.
absl::Status MakeDirectories(const std::string& path, mode_t mode);

}  // namespace omd::config

#endif  // OMD_CONFIG_ATOMIC_FILE_H_

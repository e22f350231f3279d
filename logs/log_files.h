// Reading a service's log files (service/service_log.h): the last records of
// DIR/var/log/<svcname>.log and of its rotated files (<svc>.log.1 the newest of
// them, then <svc>.log.2...), for a backlog; and a byte range of an open file,
// for LogWatcher, which follows the file as it grows.
//
//   absl::StatusOr<std::vector<v1::LogRecord>> last =
//       ReadBacklog(root, "web", 100, absl::Now() - absl::Hours(1));
#ifndef OMD_LOGS_LOG_FILES_H_
#define OMD_LOGS_LOG_FILES_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/omd.pb.h"

namespace omd::logs {

// Of one file, at most this much is read for a backlog: its last bytes, from a
// line's start (a writer's files are about 1 MiB and a record).
inline constexpr int64_t kMaxBacklogBytesPerFile = 8 << 20;

// Up to `max_bytes` of `fd` from `offset` (fewer at the end of the file: empty
// there). Errors are the file system's.
absl::StatusOr<std::string> ReadFileRange(int fd, int64_t offset, size_t max_bytes);

struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  bool operator==(const FileIdentity& other) const {
    return device == other.device && inode == other.inode;
  }
};

// The identities of `log_path`.1, .2... up to the first missing one, listed
// under a shared flock on `log_path`.lock (a rotation holds it alone), so that
// a rotation under way, which renames them one by one, shows no gap. Without
// that lock (missing, or held more than about 50 ms) they are listed anyway.
absl::StatusOr<std::vector<FileIdentity>> ListRotatedFiles(const std::string& log_path);

// The last `count` records at or after `since` (absl::InfinitePast(): no bound),
// oldest first, from the service's log and as many of its rotated files as
// needed, newest file first: older files are not read once `count` records are
// found, or once a file starts before `since`. A log that does not exist is an
// empty backlog; INVALID_ARGUMENT for a bad service name; otherwise errors are
// the file system's. Memory: at most the files' bytes read (each at most
// kMaxBacklogBytesPerFile).
absl::StatusOr<std::vector<v1::LogRecord>> ReadBacklog(const std::string& root,
                                                        absl::string_view svcname,
                                                        size_t count, absl::Time since);

// The same, with the current file given as `current_fd` (a descriptor of what
// was <svc>.log, -1 for none) read up to `end` (bytes after its last '\n'
// before `end` are left out): what a watcher read of it so far. The rotated
// files are those older than that file, even if it was rotated meanwhile, so
// that the backlog ends exactly where the watcher's reading is.
absl::StatusOr<std::vector<v1::LogRecord>> ReadBacklogBefore(const std::string& root,
                                                              absl::string_view svcname,
                                                              int current_fd, int64_t end,
                                                              size_t count, absl::Time since);

}  // namespace omd::logs

#endif  // OMD_LOGS_LOG_FILES_H_

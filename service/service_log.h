// A service's log: DIR/var/log/<svcname>.log, what its actions did, one record
// per line:
//
//   2026-12-01 22:43:31,123 INFO | app#1: start: /bin/sleep 100
//   2026-12-01 22:43:31,456 ERROR | app#1: start exited 1:
//   first line of its stderr
//   second line
//
// A record is `YYYY-MM-DD hh:mm:ss,mmm LEVEL | message` (local time, LEVEL one
// of DEBUG, INFO, WARNING, ERROR); a message's further lines follow it as they
// are (continuation lines: any line that does not start like a record belongs
// to the record above; a continuation line that would look like a record is
// prefixed with a space). Past `max_bytes`, the file is rotated: <svc>.log.1 is
// the previous one, up to <svc>.log.<keep>.
//
// Any number of threads and processes (om, omd) may append at once: a record
// is one write(2) in O_APPEND mode, and rotation happens under an exclusive
// flock on DIR/var/log/<svcname>.log.lock, which appenders hold shared.
//
//   ServiceLog log(root, "web");
//   log.Append(LogLevel::kInfo, "app#1: started");
#ifndef OMD_SERVICE_SERVICE_LOG_H_
#define OMD_SERVICE_SERVICE_LOG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace omd::service {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

absl::string_view LogLevelName(LogLevel level);  // "DEBUG", "INFO", ...

// The start of a record's line, digits as '0': its time.
inline constexpr absl::string_view kRecordShape = "0000-00-00 00:00:00,000";

// Whether `line` starts like a record (kRecordShape): a continuation line that
// does is written with a leading space, and readers take the space back.
bool HasRecordShape(absl::string_view line);

// DIR/var/log/<svcname>.log; the name must be valid.
std::string ServiceLogPath(absl::string_view root, absl::string_view name);

class ServiceLog {
 public:
  struct Options {
    int64_t max_bytes = 1 << 20;  // rotate past this
    int keep = 5;                 // <svc>.log.1 ... <svc>.log.<keep>
  };

  ServiceLog(std::string root, std::string name);
  ServiceLog(std::string root, std::string name, Options options);

  // Appends one record (time: now). Messages are capped at 64 KiB (cut with
  // "..."). Errors are the file system's; an action does not fail because its
  // log could not be written, so callers may ignore them.
  absl::Status Append(LogLevel level, absl::string_view message);
  absl::Status AppendAt(absl::Time time, LogLevel level, absl::string_view message);

 private:
  const std::string root_;
  const std::string name_;
  const Options options_;
};

}  // namespace omd::service

#endif  // OMD_SERVICE_SERVICE_LOG_H_

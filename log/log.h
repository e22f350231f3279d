// Timestamped log lines on standard error, for the daemon and the CLI.
//
// Abseil 20220623 has no absl/log, and a daemon running in the foreground under a
// supervisor wants exactly this: one line per event, on stderr. Never pass a secret.
//
//   OMD_LOG(INFO, "listening on %s", address);
#ifndef OMD_LOG_LOG_H_
#define OMD_LOG_LOG_H_

#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace omd {

enum class LogSeverity { kInfo, kWarning, kError };

// Writes "2026-11-25T01:02:03.456Z W message" to stderr, atomically per line.
void WriteLogLine(LogSeverity severity, absl::string_view message);

}  // namespace omd

#define OMD_LOG_SEVERITY_INFO ::omd::LogSeverity::kInfo
#define OMD_LOG_SEVERITY_WARNING ::omd::LogSeverity::kWarning
#define OMD_LOG_SEVERITY_ERROR ::omd::LogSeverity::kError

#define OMD_LOG(severity, ...)                             \
  ::omd::WriteLogLine(OMD_LOG_SEVERITY_##severity,         \
                      ::absl::StrFormat(__VA_ARGS__))

#endif  // OMD_LOG_LOG_H_

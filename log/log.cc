#include "log/log.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace omd {

void WriteLogLine(LogSeverity severity, absl::string_view message) {
  const char* letter = severity == LogSeverity::kInfo      ? "I"
                       : severity == LogSeverity::kWarning ? "W"
                                                           : "E";
  std::string line = absl::StrCat(
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      " ", letter, " ", message, "\n");
  // One write(2) per line keeps lines from concurrent threads whole.
  size_t written = 0;
  while (written < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + written, line.size() - written);
    if (n <= 0) return;
    written += static_cast<size_t>(n);
  }
}

}  // namespace omd

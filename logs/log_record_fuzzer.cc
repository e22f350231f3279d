// Fuzzes ParseLogRecords, which reads service logs: files that the stderr of a
// service's commands went into, so anything at all. Beyond crashes, undefined
// behaviour and leaks, it aborts when:
// - a message is longer than kMaxLogMessageBytes;
// - a level is not one of DEBUG, INFO, WARNING, ERROR, or "" for the record of
//   the lines before the first record (and only the first record may be that);
// - the records are not one per line that StartsRecord (plus that first one).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "logs/log_record.h"
#include "proto/omd.pb.h"

#define FUZZ_CHECK(condition)                                                          \
  do {                                                                                 \
    if (!(condition)) {                                                                \
      fprintf(stderr, "log_record_fuzzer: %s:%d: violated: %s\n", __FILE__, __LINE__, \
              #condition);                                                             \
      abort();                                                                         \
    }                                                                                  \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<omd::v1::LogRecord> records = omd::logs::ParseLogRecords(text);
  static const std::set<std::string> kLevels = {"DEBUG", "INFO", "WARNING", "ERROR"};
  size_t headers = 0;
  bool first_line = true, orphans = false;
  absl::string_view lines = text;
  if (!lines.empty() && lines.back() == '\n') lines.remove_suffix(1);
  if (!text.empty()) {
    for (absl::string_view line : absl::StrSplit(lines, '\n')) {
      const bool starts = omd::logs::StartsRecord(line);
      if (first_line && !starts) orphans = true;
      if (starts) ++headers;
      first_line = false;
    }
  }
  FUZZ_CHECK(records.size() == headers + (orphans ? 1 : 0));
  for (size_t i = 0; i < records.size(); ++i) {
    const omd::v1::LogRecord& record = records[i];
    FUZZ_CHECK(record.message().size() <= omd::logs::kMaxLogMessageBytes);
    FUZZ_CHECK(record.nodename().empty());
    if (i == 0 && orphans) {
      FUZZ_CHECK(record.level().empty() && record.time_unix_ms() == 0);
    } else {
      FUZZ_CHECK(kLevels.count(record.level()) == 1);
    }
  }
  return 0;
}

// The records of a service's log file (service/service_log.h writes them), read
// back as omd::v1::LogRecord: one record per line
//
//   2026-12-01 22:43:31,456 ERROR | app#1: start exited 1:
//   first line of its stderr
//    2026-01-01 00:00:00,000 INFO | a stderr line that looks like a record
//
// is one record: time 2026-12-01 22:43:31.456 in the local time zone, level
// ERROR, message "app#1: start exited 1:\nfirst line of its stderr\n2026-01-01
// 00:00:00,000 INFO | a stderr line that looks like a record" (the writer's
// leading space, which keeps such a line from starting a record, is removed;
// a line the command itself wrote as one space and a record's shape reads back
// without that space: the writer does not mark it).
//
// A line starts a record only if its header parses: the shape, a valid local
// date and time, a known level (DEBUG, INFO, WARNING, ERROR), " | ". Any other
// line (an invalid date, an unknown level, anything a command wrote) is a
// continuation line of the record above. Lines before the first record (a file
// read from the middle of a record) are kept as one record of their own, with
// time 0 and level "": nothing the file holds is dropped, and a `since` bound
// leaves it out. nodename is left empty (the caller knows the node).
//
//   std::vector<v1::LogRecord> records = ParseLogRecords(text);  // whole lines
#ifndef OMD_LOGS_LOG_RECORD_H_
#define OMD_LOGS_LOG_RECORD_H_

#include <cstddef>
#include <vector>

#include "absl/strings/string_view.h"
#include "proto/omd.pb.h"

namespace omd::logs {

// A message is cut at this size (its end replaced by "..."), as the writer cuts
// what it is given: a file not written by it may hold any amount of text.
inline constexpr size_t kMaxLogMessageBytes = 64 << 10;

// Whether `line` (without its '\n') is the header line of a record.
bool StartsRecord(absl::string_view line);

// Every record of `text`, whole lines (a last line without '\n' is read as a
// line too), in the file's order. Local time zone, milliseconds; the repeated
// hour at the end of daylight saving time reads as its first occurrence.
std::vector<v1::LogRecord> ParseLogRecords(absl::string_view text);

}  // namespace omd::logs

#endif  // OMD_LOGS_LOG_RECORD_H_

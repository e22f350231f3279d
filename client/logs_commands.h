// `om <svcname> logs`: a service's log records from every node of the service,
// merged by time, printed as they come (ServiceLogs).
#ifndef OMD_CLIENT_LOGS_COMMANDS_H_
#define OMD_CLIENT_LOGS_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/command.h"
#include "proto/omd.pb.h"

namespace omd::client {

// Service commands: their words follow `om <svcname>`.
std::vector<Command> LogsCommands();

// --since: a duration ago ("10m", "1h30m") or a local time ("2026-12-01
// 10:00:00", "2026-12-01T10:00:00+01:00"); INVALID_ARGUMENT otherwise.
absl::StatusOr<absl::Time> ParseSince(absl::string_view text, absl::Time now);

// One record as om prints it: "node1  2026-12-01 10:00:00,123 INFO    | message",
// each continuation line under it with the node's name; the name in colour
// (ANSI) when `color`.
std::string FormatRecord(const v1::LogRecord& record, bool color);

}  // namespace omd::client

#endif  // OMD_CLIENT_LOGS_COMMANDS_H_

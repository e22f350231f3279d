#include "client/action_commands.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/daemon_call.h"
#include "client/output.h"
#include "google/protobuf/struct.pb.h"
#include "proto/omd.pb.h"

ABSL_FLAG(bool, async, false,
          "om <svcname> <command> --node NAME: do not wait for the action; print its "
          "id, for om daemon actions --id ID.");
ABSL_FLAG(std::string, id, "", "om daemon actions: the one action to show, whole.");

namespace omd::client {
namespace {

// What a sync action leaves om's --timeout for the reply to come back.
constexpr absl::Duration kReplyAllowance = absl::Seconds(1);

// Longest command shown in the table; --id shows it whole.
constexpr size_t kShownCommandChars = 40;

std::string ShownTime(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms),
                          absl::LocalTimeZone());
}

std::string ShownDuration(const v1::ActionStatus& action) {
  const int64_t end =
      action.finished_unix_ms() != 0 ? action.finished_unix_ms() : absl::ToUnixMillis(absl::Now());
  const absl::Duration took = absl::Milliseconds(std::max<int64_t>(end - action.started_unix_ms(), 0));
  return absl::FormatDuration(absl::Trunc(took, absl::Milliseconds(100)));
}

std::string ShownCommand(const v1::ActionStatus& action, size_t max_chars) {
  std::string shown = absl::StrJoin(action.command(), " ");
  if (shown.size() > max_chars) shown = absl::StrCat(shown.substr(0, max_chars - 3), "...");
  return shown;
}

google::protobuf::Value ActionData(const v1::ActionStatus& action) {
  google::protobuf::Value value;
  auto& fields = *value.mutable_struct_value()->mutable_fields();
  fields["session_id"].set_string_value(action.session_id());
  fields["svcname"].set_string_value(action.svcname());
  auto& command = *fields["command"].mutable_list_value();
  for (const std::string& argument : action.command()) {
    command.add_values()->set_string_value(argument);
  }
  fields["requested_by"].set_string_value(action.requested_by());
  fields["sync"].set_bool_value(action.sync());
  fields["state"].set_string_value(action.state());
  fields["pid"].set_number_value(static_cast<double>(action.pid()));
  fields["started_unix_ms"].set_number_value(static_cast<double>(action.started_unix_ms()));
  fields["finished_unix_ms"].set_number_value(static_cast<double>(action.finished_unix_ms()));
  fields["exit_code"].set_number_value(action.exit_code());
  fields["stdout"].set_string_value(action.stdout());
  fields["stderr"].set_string_value(action.stderr());
  fields["stdout_truncated"].set_bool_value(action.stdout_truncated());
  fields["stderr_truncated"].set_bool_value(action.stderr_truncated());
  return value;
}

std::string ShownExit(const v1::ActionStatus& action) {
  return action.finished_unix_ms() == 0 ? "-" : absl::StrCat(action.exit_code());
}

CommandResult Actions(const CommandContext& context, absl::Span<const std::string> arguments) {
  CommandResult result;
  result.status = NoArguments(arguments);
  if (!result.status.ok()) return result;
  v1::ListActionsRequest request;
  request.set_session_id(absl::GetFlag(FLAGS_id));
  absl::StatusOr<v1::ListActionsReply> reply =
      CallDaemon<v1::ListActionsReply>(context, "ListActions", request, result);
  if (!reply.ok()) {
    result.status = reply.status();
    return result;
  }
  auto& actions = *(*result.data.mutable_struct_value()->mutable_fields())["actions"]
                       .mutable_list_value();
  for (const v1::ActionStatus& action : reply->actions()) *actions.add_values() = ActionData(action);
  if (!request.session_id().empty() && reply->actions_size() == 1) {
    const v1::ActionStatus& action = reply->actions(0);
    result.text = absl::StrFormat(
        "action %s\nservice %s\ncommand %s\nrequested by %s (%s)\nstate %s, exit code %s, "
        "pid %d\nstarted %s, took %s\n",
        action.session_id(), action.svcname(),
        ShownCommand(action, std::string::npos), action.requested_by(),
        action.sync() ? "sync" : "async", action.state(), ShownExit(action), action.pid(),
        ShownTime(action.started_unix_ms()), ShownDuration(action));
    absl::StrAppend(&result.text, "--- stdout", action.stdout_truncated() ? " (cut short)" : "",
                    "\n", action.stdout());
    if (!action.stdout().empty() && !absl::EndsWith(action.stdout(), "\n")) result.text += "\n";
    absl::StrAppend(&result.text, "--- stderr", action.stderr_truncated() ? " (cut short)" : "",
                    "\n", action.stderr());
    if (!action.stderr().empty() && !absl::EndsWith(action.stderr(), "\n")) result.text += "\n";
    return result;
  }
  if (reply->actions().empty()) {
    result.text = "No action kept.\n";
    return result;
  }
  result.text = absl::StrFormat("%-32s %-16s %-40s %-10s %5s %-19s %s\n", "ID", "SERVICE",
                                "COMMAND", "STATE", "EXIT", "STARTED", "DURATION");
  for (const v1::ActionStatus& action : reply->actions()) {
    absl::StrAppendFormat(&result.text, "%-32s %-16s %-40s %-10s %5s %-19s %s\n",
                          action.session_id(), action.svcname(),
                          ShownCommand(action, kShownCommandChars), action.state(),
                          ShownExit(action), ShownTime(action.started_unix_ms()),
                          ShownDuration(action));
  }
  return result;
}

}  // namespace

CommandResult RunServiceActionRemotely(const CommandContext& context,
                                       absl::Span<const std::string> command) {
  CommandResult result;
  const bool async = absl::GetFlag(FLAGS_async);
  v1::ServiceActionRequest request;
  request.set_svcname(context.svcname);
  for (const std::string& argument : command) request.add_command(argument);
  request.set_sync(!async);
  if (!async) {
    // A second short of om's deadline, so that a timed-out action's reply still
    // reaches om; the daemon also ends it by the call's deadline.
    request.set_timeout_seconds(static_cast<uint32_t>(std::max<int64_t>(
        absl::ToInt64Seconds(context.timeout - kReplyAllowance), 1)));
  }
  absl::StatusOr<v1::ServiceActionReply> reply =
      CallDaemon<v1::ServiceActionReply>(context, "ServiceAction", request, result);
  if (!reply.ok()) {
    result.status = reply.status();
    return result;
  }
  auto& fields = *result.data.mutable_struct_value()->mutable_fields();
  fields["session_id"].set_string_value(reply->session_id());
  if (async) {
    result.text = absl::StrCat("action ", reply->session_id(), " started; see om daemon actions --id ",
                               reply->session_id(), "\n");
    return result;
  }
  fields["exit_code"].set_number_value(reply->exit_code());
  fields["pid"].set_number_value(static_cast<double>(reply->pid()));
  fields["stdout"].set_string_value(reply->stdout());
  fields["stderr"].set_string_value(reply->stderr());
  fields["stdout_truncated"].set_bool_value(reply->stdout_truncated());
  fields["stderr_truncated"].set_bool_value(reply->stderr_truncated());
  fields["timed_out"].set_bool_value(reply->timed_out());
  result.text = reply->stdout();
  result.error_text = reply->stderr();
  if (!result.error_text.empty() && !absl::EndsWith(result.error_text, "\n")) {
    result.error_text += "\n";
  }
  const std::string where = result.node.empty() ? "" : absl::StrCat(" on ", result.node);
  if (reply->timed_out()) {
    absl::StrAppend(&result.error_text, "om: the action timed out", where,
                    " and was killed with its process group\n");
  }
  if (reply->stdout_truncated() || reply->stderr_truncated()) {
    absl::StrAppend(&result.error_text, "om: the action's ",
                    reply->stdout_truncated() && reply->stderr_truncated() ? "stdout and stderr were"
                    : reply->stdout_truncated()                             ? "stdout was"
                                                                            : "stderr was",
                    " cut short", where, "\n");
  }
  result.exit_code = reply->exit_code() >= 0 ? reply->exit_code() : 1;
  return result;
}

std::vector<Command> ActionCommands() {
  Command actions;
  actions.words = {"daemon", "actions"};
  actions.summary =
      "The daemon's service actions, running and finished; --id ID: one, with its output.";
  actions.run = Actions;
  actions.options = {"id"};
  return {actions};
}

}  // namespace omd::client

#include "client/monitor_commands.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/daemon_call.h"
#include "proto/omd.pb.h"

ABSL_FLAG(std::optional<std::string>, status, std::nullopt,
          "om <svcname> set monitor: the instance monitor's status: idle, start failed, "
          "stop failed.");
ABSL_FLAG(std::optional<std::string>, local_expect, std::nullopt,
          "om <svcname> set monitor: what the monitor keeps the local instance at: "
          "started, stopped, unset. Also spelt --local-expect.");
ABSL_FLAG(std::optional<std::string>, global_expect, std::nullopt,
          "om <svcname> set monitor: what the service's nodes aim at together: started, "
          "stopped, frozen, thawed, unset. Also spelt --global-expect.");
ABSL_FLAG(bool, reset_retries, false,
          "om <svcname> set monitor: forget the resources' restart counts. Also spelt "
          "--reset-retries.");

namespace omd::client {
namespace {

// A reply's info lines, or `done` when there are none.
template <typename Reply>
void TakeInfo(const Reply& reply, absl::string_view done, CommandResult& result) {
  for (const std::string& line : reply.info()) result.info.push_back(line);
  result.text = reply.info().empty() ? absl::StrCat(done, "\n")
                                     : absl::StrCat(absl::StrJoin(reply.info(), "\n"), "\n");
}

CommandResult SetMonitor(const CommandContext& context, absl::Span<const std::string> arguments) {
  CommandResult result;
  if (result.status = NoArguments(arguments); !result.status.ok()) return result;
  v1::SetServiceMonitorRequest request;
  request.set_svcname(context.svcname);
  const std::optional<std::string> status = absl::GetFlag(FLAGS_status);
  const std::optional<std::string> local_expect = absl::GetFlag(FLAGS_local_expect);
  const std::optional<std::string> global_expect = absl::GetFlag(FLAGS_global_expect);
  // An empty value parses as no value (Abseil's optional flags): nothing to set.
  if (!status && !local_expect && !global_expect && !absl::GetFlag(FLAGS_reset_retries)) {
    result.status = absl::InvalidArgumentError(
        "nothing to set: give --status, --local-expect, --global-expect or --reset-retries");
    return result;
  }
  request.set_status(status.value_or(""));
  request.set_local_expect(local_expect.value_or(""));
  request.set_global_expect(global_expect.value_or(""));
  request.set_reset_retries(absl::GetFlag(FLAGS_reset_retries));
  absl::StatusOr<v1::SetServiceMonitorReply> reply =
      CallDaemon<v1::SetServiceMonitorReply>(context, "SetServiceMonitor", request, result);
  if (!reply.ok()) {
    result.status = reply.status();
    return result;
  }
  TakeInfo(*reply, absl::StrCat(context.svcname, ": monitor set"), result);
  return result;
}

std::string ShownTime(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%H:%M:%S", absl::FromUnixMillis(unix_ms), absl::LocalTimeZone());
}

void AppendInstance(const v1::InstanceMonitor& instance, std::string& text) {
  absl::StrAppendFormat(&text, "%-12s %-5s %-14s %-12s %-13s %-7s %s\n", instance.nodename(),
                        instance.avail().empty() ? "-" : instance.avail(), instance.status(),
                        instance.local_expect(), instance.global_expect(),
                        instance.frozen() ? "frozen" : "-",
                        ShownTime(instance.checked_unix_ms()));
}

CommandResult PrintMonitor(const CommandContext& context,
                           absl::Span<const std::string> arguments) {
  CommandResult result;
  if (result.status = NoArguments(arguments); !result.status.ok()) return result;
  v1::GetServiceMonitorRequest request;
  request.set_svcname(context.svcname);
  absl::StatusOr<v1::GetServiceMonitorReply> reply =
      CallDaemon<v1::GetServiceMonitorReply>(context, "GetServiceMonitor", request, result);
  if (!reply.ok()) {
    result.status = reply.status();
    return result;
  }
  result.data = MessageToValue(*reply);
  const v1::InstanceMonitor& instance = reply->instance();
  result.text = absl::StrFormat("%-12s %-5s %-14s %-12s %-13s %-7s %s\n", "NODE", "AVAIL",
                                "STATUS", "LOCAL EXPECT", "GLOBAL EXPECT", "FROZEN",
                                "CHECKED");
  AppendInstance(instance, result.text);
  for (const v1::InstanceMonitor& peer : reply->peers()) AppendInstance(peer, result.text);
  absl::StrAppendFormat(&result.text, "\n%-12s %-5s %s\n", "RESOURCE", "STATE", "RESTARTS");
  for (const v1::ResourceMonitor& resource : instance.resources()) {
    absl::StrAppendFormat(&result.text, "%-12s %-5s %d/%d\n", resource.id(),
                          resource.state().empty() ? "-" : resource.state(),
                          resource.restarts(), resource.restart());
  }
  if (reply->node().frozen()) {
    absl::StrAppend(&result.text, "\nThis node is frozen: its monitor takes no action.\n");
  }
  return result;
}

CommandResult Clear(const CommandContext& context, absl::Span<const std::string> arguments) {
  CommandResult result;
  if (result.status = NoArguments(arguments); !result.status.ok()) return result;
  v1::ClearRequest request;
  request.set_svcname(context.svcname);
  absl::StatusOr<v1::ClearReply> reply =
      CallDaemon<v1::ClearReply>(context, "Clear", request, result);
  if (!reply.ok()) {
    result.status = reply.status();
    return result;
  }
  TakeInfo(*reply, absl::StrCat(context.svcname, ": cleared"), result);
  return result;
}

CommandResult SetNodeMonitor(const CommandContext& context, absl::string_view local_expect) {
  CommandResult result;
  v1::SetNodeMonitorRequest request;
  request.set_local_expect(std::string(local_expect));
  absl::StatusOr<v1::SetNodeMonitorReply> reply =
      CallDaemon<v1::SetNodeMonitorReply>(context, "SetNodeMonitor", request, result);
  if (!reply.ok()) {
    result.status = reply.status();
    return result;
  }
  TakeInfo(*reply, absl::StrCat("node ", local_expect), result);
  return result;
}

CommandResult Freeze(const CommandContext& context) {
  return SetNodeMonitor(context, "frozen");
}

CommandResult Thaw(const CommandContext& context) { return SetNodeMonitor(context, "thawed"); }

}  // namespace

std::vector<Command> ServiceMonitorCommands() {
  // Calls to a daemon (runs_locally false): --node sends them to that node's.
  const auto daemon_call = [](std::vector<std::string> words, std::string summary,
                              decltype(Command::run) run, std::vector<std::string> options) {
    Command command{std::move(words), std::move(summary), std::move(run), std::move(options)};
    command.runs_locally = false;
    return command;
  };
  return {
      daemon_call({"set", "monitor"},
                  "Set the instance monitor: --status, --local-expect, --global-expect, "
                  "--reset-retries.",
                  SetMonitor, {"status", "local_expect", "global_expect", "reset_retries"}),
      daemon_call({"print", "monitor"},
                  "The instance monitors (this node's and the others'), resources, restarts.",
                  PrintMonitor, {}),
      daemon_call({"clear"},
                  "Back to idle from start failed or stop failed; restart counts reset.", Clear,
                  {}),
  };
}

std::vector<Command> NodeMonitorCommands() {
  return {
      SimpleCommand({"node", "freeze"},
                    "Freeze this node: its monitor takes no action on its instances.", Freeze),
      SimpleCommand({"node", "thaw"}, "Thaw this node: its monitor acts again.", Thaw),
  };
}

}  // namespace omd::client

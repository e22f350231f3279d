#include "client/daemon_commands.h"

#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "client/daemon_call.h"
#include "google/protobuf/descriptor.h"
#include "proto/omd.pb.h"

ABSL_FLAG(std::string, thread_id, "",
          "om daemon stop / start: the daemon thread to stop or start (e.g. listener); "
          "without it, daemon stop stops the whole daemon. Also spelt --thread-id.");

namespace omd::client {
namespace {

std::string ShownTime(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(unix_ms),
                          absl::LocalTimeZone());
}

CommandResult Status(const CommandContext& context) {
  CommandResult result;
  absl::StatusOr<v1::DaemonStatusReply> reply = CallDaemon<v1::DaemonStatusReply>(
      context, "DaemonStatus", v1::DaemonStatusRequest(), result);
  if (!reply.ok()) {
    result.status = reply.status();
    return result;
  }
  auto& fields = *result.data.mutable_struct_value()->mutable_fields();
  auto& threads = *fields["threads"].mutable_struct_value()->mutable_fields();
  result.text = absl::StrFormat("%-14s %-11s %8s  %s\n", "THREAD", "STATE", "RESTARTS",
                                "LAST ERROR");
  for (const v1::ThreadStatus& thread : reply->threads()) {
    auto& entry = *threads[thread.id()].mutable_struct_value()->mutable_fields();
    entry["state"].set_string_value(thread.state());
    entry["restarts"].set_number_value(thread.restarts());
    entry["last_error"].set_string_value(thread.last_error());
    absl::StrAppendFormat(&result.text, "%-14s %-11s %8d  %s\n", thread.id(),
                          thread.state(), thread.restarts(),
                          thread.last_error().empty() ? "-" : thread.last_error());
  }
  auto& nodes = *fields["nodes"].mutable_struct_value()->mutable_fields();
  absl::StrAppendFormat(&result.text, "\n%-24s %-12s %-28s %s\n", "NODE", "STATE",
                        "ADDRESS", "LAST SEEN");
  for (const v1::NodeStatus& node : reply->nodes()) {
    auto& entry = *nodes[node.nodename()].mutable_struct_value()->mutable_fields();
    entry["state"].set_string_value(node.state());
    entry["address"].set_string_value(node.address());
    entry["last_seen_unix_ms"].set_number_value(
        static_cast<double>(node.last_seen_unix_ms()));
    absl::StrAppendFormat(&result.text, "%-24s %-12s %-28s %s\n", node.nodename(),
                          node.state(), node.address().empty() ? "-" : node.address(),
                          ShownTime(node.last_seen_unix_ms()));
  }
  const v1::ConfigStatus& config = reply->config();
  auto& shown = *fields["config"].mutable_struct_value()->mutable_fields();
  shown["path"].set_string_value(config.path());
  shown["mtime_unix_ms"].set_number_value(static_cast<double>(config.mtime_unix_ms()));
  shown["loaded_unix_ms"].set_number_value(static_cast<double>(config.loaded_unix_ms()));
  shown["reload_error"].set_string_value(config.reload_error());
  shown["cluster_name"].set_string_value(config.cluster_name());
  shown["key_generation"].set_number_value(config.key_generation());
  shown["listener_address"].set_string_value(config.listener_address());
  shown["control_socket"].set_string_value(config.control_socket());
  absl::StrAppendFormat(
      &result.text,
      "\nconfig %s (modified %s, applied %s)\ncluster %s, key generation %d\n"
      "listening on %s and %s\n",
      config.path(), ShownTime(config.mtime_unix_ms()),
      ShownTime(config.loaded_unix_ms()), config.cluster_name(), config.key_generation(),
      config.listener_address().empty() ? "(TCP stopped)" : config.listener_address(),
      config.control_socket());
  if (!config.reload_error().empty()) {
    absl::StrAppend(&result.text, "last reload failed: ", config.reload_error(), "\n");
  }
  fields["node_monitor"] = MessageToValue(reply->node_monitor());
  fields["logs"] = MessageToValue(reply->logs());
  const v1::LogsStatus& logs = reply->logs();
  absl::StrAppendFormat(&result.text,
                        "log streams: %d served, %d read from other nodes; %d followers of "
                        "%d log files\n",
                        logs.streams(), logs.upstreams(), logs.subscriptions(),
                        logs.followed_files());
  absl::StrAppend(&result.text, "node ",
                  reply->node_monitor().frozen()
                      ? "frozen: the monitor takes no action on its services\n"
                      : "thawed\n");
  // The listener's counters under their proto field names, as numbers (proto3's
  // JSON mapping would write 64-bit integers as strings).
  const v1::ListenerStatus& listener = reply->listener();
  auto& counters = *fields["listener"].mutable_struct_value()->mutable_fields();
  const google::protobuf::Reflection* reflection = listener.GetReflection();
  const google::protobuf::Descriptor* descriptor = listener.GetDescriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_UINT64) {
      counters[field->name()].set_number_value(
          static_cast<double>(reflection->GetUInt64(listener, field)));
    } else if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_INT64) {
      counters[field->name()].set_number_value(
          static_cast<double>(reflection->GetInt64(listener, field)));
    } else if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_BOOL) {
      counters[field->name()].set_bool_value(reflection->GetBool(listener, field));
    }
  }
  auto& open_counts = *counters["open_connections"].mutable_struct_value()->mutable_fields();
  for (const auto& [peer_class, open] : listener.open_connections()) {
    open_counts[peer_class].set_number_value(static_cast<double>(open));
  }
  const auto& open = listener.open_connections();
  auto count = [&open](const char* name) {
    auto it = open.find(name);
    return it == open.end() ? uint64_t{0} : it->second;
  };
  absl::StrAppendFormat(
      &result.text,
      "connections: %d local, %d member, %d other open; %d accepted; refused %d by "
      "policy, %d by cap, %d by rate, %d out of descriptors; %d closed for abuse; "
      "%d held back; %d sources dropped; %d gRPC rebuilds%s\n",
      count("local"), count("member"), count("other"), listener.accepted(),
      listener.refused_by_policy(), listener.refused_by_cap(), listener.refused_by_rate(),
      listener.refused_out_of_descriptors(), listener.closed_for_abuse(),
      listener.held_back(), listener.dropped_sources(), listener.rebuilds(),
      listener.shedding_outsiders() ? "; shedding outsiders (memory)" : "");
  return result;
}

template <typename Reply>
void Report(absl::StatusOr<Reply> reply, CommandResult& result) {
  if (!reply.ok()) {
    result.status = reply.status();
    return;
  }
  for (const std::string& info : reply->info()) {
    result.info.push_back(info);
    absl::StrAppend(&result.text, info, "\n");
  }
}

CommandResult Stop(const CommandContext& context,
                   absl::Span<const std::string> arguments) {
  CommandResult result;
  if (absl::Status none = NoArguments(arguments); !none.ok()) {
    result.status = std::move(none);
    return result;
  }
  v1::DaemonStopRequest request;
  request.set_thread_id(absl::GetFlag(FLAGS_thread_id));
  Report(CallDaemon<v1::DaemonStopReply>(context, "DaemonStop", request, result), result);
  return result;
}

CommandResult Start(const CommandContext& context,
                    absl::Span<const std::string> arguments) {
  CommandResult result;
  if (absl::Status none = NoArguments(arguments); !none.ok()) {
    result.status = std::move(none);
    return result;
  }
  if (absl::GetFlag(FLAGS_thread_id).empty()) {
    result.status = absl::InvalidArgumentError(
        "om daemon start needs --thread-id: the daemon thread to start (see om daemon "
        "status)");
    return result;
  }
  v1::DaemonStartRequest request;
  request.set_thread_id(absl::GetFlag(FLAGS_thread_id));
  Report(CallDaemon<v1::DaemonStartReply>(context, "DaemonStart", request, result),
         result);
  return result;
}

CommandResult Shutdown(const CommandContext& context) {
  CommandResult result;
  Report(CallDaemon<v1::DaemonShutdownReply>(context, "DaemonShutdown",
                                             v1::DaemonShutdownRequest(), result),
         result);
  return result;
}

}  // namespace

std::vector<Command> DaemonCommands() {
  return {
      SimpleCommand(
          {"daemon", "status"},
          "The daemon's threads, the cluster's nodes as it sees them, its config.",
          Status),
      Command{{"daemon", "stop"},
              "Stop the daemon (peers see it in maintenance; services keep running), or "
              "with --thread-id ID one of its threads.",
              Stop,
              {"thread_id"}},
      Command{{"daemon", "start"},
              "With --thread-id ID: start a stopped daemon thread.",
              Start,
              {"thread_id"}},
      SimpleCommand({"daemon", "shutdown"},
                    "Stop the local service instances, then the daemon.", Shutdown),
  };
}

}  // namespace omd::client

#include "client/logs_commands.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/agent_client.h"
#include "client/daemon_call.h"
#include "config/quote.h"
#include "google/protobuf/util/json_util.h"
#include "sync/mutex.h"

ABSL_FLAG(bool, follow, false,
          "om <svcname> logs: after the backlog, print new records as they are logged, "
          "until Ctrl-C.");
ABSL_FLAG(int32_t, backlog, 0,
          "om <svcname> logs: the last records of each node first (0: the daemon's "
          "default, 50; at most 5000).");
ABSL_FLAG(std::string, since, "",
          "om <svcname> logs: only records from then on: a duration ago (10m, 1h30m) or a "
          "local time (2026-12-01 10:00:00, or RFC 3339).");
ABSL_FLAG(std::string, color, "auto",
          "om <svcname> logs: the node names in colour: auto (when stdout is a terminal), "
          "yes, no.");

namespace omd::client {
namespace {

// Set by SIGINT or SIGTERM during `om <svcname> logs`: the stream is cancelled,
// and om ends cleanly.
std::atomic<bool> interrupted{false};

void Interrupt(int) { interrupted.store(true); }  // async-signal-safe

// The colours of the node names: a node keeps its own from one run to the next.
constexpr const char* kColors[] = {"\x1b[32m", "\x1b[34m", "\x1b[35m",
                                   "\x1b[36m", "\x1b[33m", "\x1b[91m"};

CommandResult Logs(const CommandContext& context, absl::Span<const std::string> arguments) {
  CommandResult result;
  if (result.status = NoArguments(arguments); !result.status.ok()) return result;
  v1::ServiceLogsRequest request;
  request.set_svcname(context.svcname);
  request.set_follow(absl::GetFlag(FLAGS_follow));
  const int32_t backlog = absl::GetFlag(FLAGS_backlog);
  if (backlog < 0) {
    result.status = absl::InvalidArgumentError("--backlog must be 0 or more");
    return result;
  }
  request.set_backlog(static_cast<uint32_t>(backlog));
  if (const std::string since = absl::GetFlag(FLAGS_since); !since.empty()) {
    absl::StatusOr<absl::Time> parsed = ParseSince(since, absl::Now());
    if (!parsed.ok()) {
      result.status = parsed.status();
      return result;
    }
    request.set_since_unix_ms(absl::ToUnixMillis(*parsed));
  }
  // --node names the node whose records are wanted (and whose daemon is asked).
  if (!context.server_node.empty()) request.add_nodes(context.server_node);
  const std::string color_flag = absl::GetFlag(FLAGS_color);
  if (color_flag != "auto" && color_flag != "yes" && color_flag != "no") {
    result.status = absl::InvalidArgumentError(absl::StrCat(
        "--color must be auto, yes or no, not ", config::QuoteForMessage(color_flag)));
    return result;
  }
  const bool color = color_flag == "yes" || (color_flag == "auto" && isatty(STDOUT_FILENO));
  const bool json = context.output == "json";

  absl::StatusOr<std::unique_ptr<AgentClient>> client = ConnectToDaemon(context);
  if (!client.ok()) {
    result.status = client.status();
    return result;
  }
  sync::Mutex mutex;
  std::optional<absl::Status> done;
  AgentClient::StreamOptions options;
  options.timeout = request.follow() ? absl::InfiniteDuration() : context.timeout;
  const auto print = [json, color](const v1::ServiceLogsReply& reply) {
    std::string out;
    for (const v1::LogRecord& record : reply.records()) {
      if (json) {
        std::string line;
        google::protobuf::util::JsonPrintOptions print_options;
        print_options.preserve_proto_field_names = true;
        (void)google::protobuf::util::MessageToJsonString(record, &line, print_options);
        absl::StrAppend(&out, line, "\n");
      } else {
        absl::StrAppend(&out, FormatRecord(record, color));
      }
    }
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
  };
  const auto finished = [&mutex, &done](absl::Status status) {
    sync::MutexLock lock(&mutex);
    done = std::move(status);
  };
  struct sigaction on_interrupt = {};
  on_interrupt.sa_handler = Interrupt;
  sigaction(SIGINT, &on_interrupt, nullptr);
  sigaction(SIGTERM, &on_interrupt, nullptr);
  absl::StatusOr<std::unique_ptr<StreamCall>> call = (*client)->Stream<v1::ServiceLogsReply>(
      "ServiceLogs", request, print, finished, std::move(options));
  if (!call.ok()) {
    result.status = call.status();
    return result;
  }
  bool cancelled = false;
  {
    sync::MutexLock lock(&mutex);
    while (!done.has_value()) {
      mutex.AwaitWithTimeout([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) { return done.has_value(); },
                             absl::Milliseconds(50));
      if (!done.has_value() && interrupted.load() && !cancelled) {
        cancelled = true;
        mutex.Unlock();
        (*call)->Cancel();
        mutex.Lock();
      }
    }
    result.status = *done;
  }
  call->reset();
  result.node = (*client)->daemon_node();
  // Ctrl-C is how a follow ends: not an error.
  if (cancelled && absl::IsCancelled(result.status)) result.status = absl::OkStatus();
  if (absl::IsUnavailable(result.status) && context.server.empty() &&
      context.server_node.empty()) {
    result.status = NotReachedLocally(context, result.status);
  }
  result.streamed = true;
  return result;
}

}  // namespace

absl::StatusOr<absl::Time> ParseSince(absl::string_view text, absl::Time now) {
  absl::Duration ago;
  if (absl::ParseDuration(text, &ago)) {
    if (ago < absl::ZeroDuration()) {
      return absl::InvalidArgumentError("--since: a duration ago cannot be negative");
    }
    return now - ago;
  }
  absl::Time time;
  std::string error;
  for (const char* format : {"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"}) {
    if (absl::ParseTime(format, std::string(text), absl::LocalTimeZone(), &time, &error)) {
      return time;
    }
  }
  if (absl::ParseTime(absl::RFC3339_full, std::string(text), &time, &error)) return time;
  return absl::InvalidArgumentError(absl::StrCat(
      "--since ", config::QuoteForMessage(text),
      ": use a duration ago (10m, 1h30m) or a time (2026-12-01 10:00:00, or RFC 3339)"));
}

std::string FormatRecord(const v1::LogRecord& record, bool color) {
  const std::string& node = record.nodename();
  const std::string shown =
      color ? absl::StrCat(kColors[absl::Hash<std::string>()(node) % std::size(kColors)], node,
                           "\x1b[0m")
            : node;
  // The node column as wide as a usual name, so that records line up.
  const std::string pad(node.size() < 12 ? 12 - node.size() : 1, ' ');
  const absl::Time time = absl::FromUnixMillis(record.time_unix_ms());
  const std::string when =
      absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%S", time, absl::LocalTimeZone()), ",",
                   absl::StrFormat("%03d", record.time_unix_ms() % 1000));
  std::string out;
  bool first = true;
  for (absl::string_view line : absl::StrSplit(record.message(), '\n')) {
    if (first) {
      absl::StrAppendFormat(&out, "%s%s%s %-7s | %s\n", shown, pad, when, record.level(), line);
      first = false;
    } else {
      absl::StrAppend(&out, shown, pad, std::string(when.size() + 8, ' '), "| ", line, "\n");
    }
  }
  return out;
}

std::vector<Command> LogsCommands() {
  Command logs{{"logs"},
               "The service's log records from each of its nodes, merged by time: "
               "--backlog N, --follow, --since T, --color, --node NAME (one node's).",
               Logs,
               {"follow", "backlog", "since", "color"}};
  logs.runs_locally = false;  // a call to the daemon, which asks the others
  return {logs};
}

}  // namespace omd::client

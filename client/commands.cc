#include "client/commands.h"

#include <signal.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/action_commands.h"
#include "client/action_queue.h"
#include "client/agent_client.h"
#include "client/cluster_commands.h"
#include "client/daemon_call.h"
#include "client/daemon_commands.h"
#include "client/monitor_commands.h"
#include "client/node_commands.h"
#include "client/service_action_check.h"
#include "client/service_commands.h"
#include "config/quote.h"
#include "process/subprocess.h"
#include "proto/omd.pb.h"
#include "service/service_config.h"

namespace omd::client {
namespace {

CommandResult BlacklistStatus(const CommandContext& context) {
  CommandResult result;
  absl::StatusOr<v1::BlacklistStatusReply> reply = CallDaemon<v1::BlacklistStatusReply>(
      context, "BlacklistStatus", v1::BlacklistStatusRequest(), result);
  if (!reply.ok()) {
    result.status = reply.status();
    return result;
  }
  // As in the spec, {"<sender>": <count>}; a sender is a name at an address, since
  // the same name from another address is counted apart (server/blacklist.h).
  auto& counts = *result.data.mutable_struct_value()->mutable_fields();
  if (reply->entries().empty())
    result.text = "No sender has sent invalid messages.\n";
  else
    result.text =
        absl::StrFormat("%-24s %-40s %8s  %s\n", "NODE", "ADDRESS", "INVALID", "STATE");
  for (const v1::BlacklistEntry& entry : reply->entries()) {
    // An empty name: the non-member names from that source, counted together.
    const std::string name = entry.nodename().empty() ? "(non-member)" : entry.nodename();
    counts[absl::StrCat(name, "@", entry.address())].set_number_value(
        entry.invalid_messages());
    absl::StrAppendFormat(&result.text, "%-24s %-40s %8d  %s\n", name, entry.address(),
                          entry.invalid_messages(),
                          entry.blocked() ? "blacklisted" : "counting");
  }
  return result;
}

CommandResult BlacklistClear(const CommandContext& context) {
  CommandResult result;
  absl::StatusOr<v1::BlacklistClearReply> reply = CallDaemon<v1::BlacklistClearReply>(
      context, "BlacklistClear", v1::BlacklistClearRequest(), result);
  if (!reply.ok()) {
    result.status = reply.status();
    return result;
  }
  (*result.data.mutable_struct_value()->mutable_fields())["cleared"].set_number_value(
      reply->cleared());
  result.text = absl::StrCat("Blacklist cleared (", reply->cleared(), " senders).\n");
  return result;
}

CommandResult EmptyPacket(const CommandContext& context) {
  CommandResult result;
  absl::StatusOr<v1::EmptyPacketReply> reply = CallDaemon<v1::EmptyPacketReply>(
      context, "EmptyPacket", v1::EmptyPacketRequest(), result);
  result.status = reply.status();
  if (reply.ok()) result.text = "The daemon will dequeue its queued actions.\n";
  return result;
}

// Cancelled by SIGTERM or SIGINT during `om node dequeue actions`: each action
// runs in a process group of its own, which a signal to om's group would miss.
process::Cancellation* dequeue_cancellation = nullptr;

void CancelDequeue(int) { dequeue_cancellation->Cancel(); }  // async-signal-safe

CommandResult DequeueActionsCommand(const CommandContext& context) {
  CommandResult result;
  static process::Cancellation* const cancellation = new process::Cancellation();
  dequeue_cancellation = cancellation;
  struct sigaction on_stop = {};
  on_stop.sa_handler = CancelDequeue;
  sigaction(SIGTERM, &on_stop, nullptr);
  sigaction(SIGINT, &on_stop, nullptr);
  DequeueOptions options;
  options.root = context.root;
  // No "--" between om's flags and the action's arguments, although Abseil would
  // then take none of them as a flag: a command's own options are om flags,
  // parsed by Abseil wherever they are, as on the command line, and would stop
  // working in a queued action. Keeping om's global flags out is
  // CheckQueuedAction's job: nothing that starts with "-" gets past it but the
  // command's own options.
  options.om_argv_prefix = {context.om_binary, "--root", context.root};
  options.check_action = [](absl::Span<const std::string> arguments) {
    return CheckQueuedAction(arguments);
  };
  options.cancellation = cancellation;
  absl::StatusOr<DequeueSummary> summary = DequeueActions(options);
  if (!summary.ok()) {
    result.status = summary.status();
    return result;
  }
  auto& fields = *result.data.mutable_struct_value()->mutable_fields();
  fields["done"].set_number_value(summary->done);
  fields["failed"].set_number_value(summary->failed);
  auto& failed_names = *fields["failed_names"].mutable_list_value();
  for (const std::string& name : summary->failed_names) {
    failed_names.add_values()->set_string_value(name);
  }
  result.text = absl::StrCat(summary->done, " done, ", summary->failed, " failed",
                             summary->failed_names.empty() ? "" : ": ",
                             absl::StrJoin(summary->failed_names, ", "), "\n");
  return result;
}

// Whether `argument` is --NAME or --NAME=VALUE for one of `command`'s options.
bool IsOwnOption(const Command& command, absl::string_view argument) {
  if (!absl::ConsumePrefix(&argument, "--")) return false;
  const std::string name = CanonicalOptionName(argument.substr(0, argument.find('=')));
  return !name.empty() && std::find(command.options.begin(), command.options.end(),
                                    name) != command.options.end();
}

}  // namespace

const std::vector<Command>& Commands() {
  static const std::vector<Command>* const commands = [] {
    auto* all = new std::vector<Command>{
        SimpleCommand({"daemon", "blacklist", "status"},
                      "Counts of consecutive invalid messages, by sender (name@address).",
                      BlacklistStatus),
        SimpleCommand({"daemon", "blacklist", "clear"},
                      "Forget every count: unblock all senders.", BlacklistClear),
        SimpleCommand({"daemon", "empty-packet"},
                      "Send the authenticated empty packet: the daemon runs "
                      "`om node dequeue actions`.",
                      EmptyPacket),
        SimpleCommand(
            {"node", "dequeue", "actions"},
            "Run the om commands queued in ROOT/var/actions/queue/, in name order.",
            DequeueActionsCommand),
    };
    for (std::vector<Command> (*more)() :
         {DaemonCommands, ClusterCommands, NodeCommands, NodeMonitorCommands, SvcCommands,
          ActionCommands}) {
      for (Command& command : more()) all->push_back(std::move(command));
    }
    return all;
  }();
  return *commands;
}

const Command* FindCommand(absl::Span<const std::string> argv,
                           std::vector<std::string>* arguments) {
  return FindCommand(Commands(), argv, arguments);
}

const Command* FindCommand(absl::Span<const Command> commands,
                           absl::Span<const std::string> argv,
                           std::vector<std::string>* arguments) {
  for (const Command& command : commands) {
    if (argv.size() >= command.words.size() &&
        std::equal(command.words.begin(), command.words.end(), argv.begin())) {
      arguments->assign(argv.begin() + command.words.size(), argv.end());
      return &command;
    }
  }
  return nullptr;
}

bool IsServiceCommandLine(absl::Span<const std::string> argv) {
  if (argv.empty()) return false;
  return std::none_of(Commands().begin(), Commands().end(), [&](const Command& command) {
    return command.words.front() == argv.front();
  });
}

absl::Status CheckQueuedAction(absl::Span<const std::string> action) {
  // `om <svcname> ...`: the rules of a ServiceAction, the same om run the same way.
  if (IsServiceCommandLine(action) && !absl::StartsWith(action.front(), "-")) {
    if (absl::Status valid = service::ValidateServiceName(action.front()); !valid.ok()) {
      return valid;
    }
    return CheckServiceActionCommand(ServiceCommands(), action.front(), action.subspan(1));
  }
  return CheckQueuedAction(Commands(), action);
}

absl::Status CheckQueuedAction(absl::Span<const Command> commands,
                               absl::Span<const std::string> action) {
  constexpr absl::string_view kRefusal = "queued actions may not use om's global flags: ";
  if (action.empty()) return absl::InvalidArgumentError("no command given");
  if (absl::StartsWith(action.front(), "-")) {
    return absl::InvalidArgumentError(
        absl::StrCat(kRefusal, config::QuoteForMessage(action.front()),
                     " (an action starts with the words of its command)"));
  }
  std::vector<std::string> arguments;
  const Command* command = FindCommand(commands, action, &arguments);
  if (command == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown command ", config::QuoteForMessage(absl::StrJoin(action, " "))));
  }
  for (const std::string& argument : arguments) {
    if (!absl::StartsWith(argument, "-") || IsOwnOption(*command, argument)) continue;
    const std::string words = absl::StrJoin(command->words, " ");
    return absl::InvalidArgumentError(absl::StrCat(
        kRefusal, config::QuoteForMessage(argument), " (",
        command->options.empty()
            ? absl::StrCat("om ", words, " has no options of its own")
            : absl::StrCat("the options of om ", words, ": --",
                           absl::StrJoin(command->options, ", --",
                                         [](std::string* out, const std::string& name) {
                                           std::string shown = name;
                                           std::replace(shown.begin(), shown.end(), '_',
                                                        '-');
                                           out->append(shown);
                                         })),
        ")"));
  }
  return absl::OkStatus();
}

std::string CommandList() {
  std::string list;
  for (const Command& command : Commands()) {
    absl::StrAppendFormat(&list, "  om %-26s %s\n", absl::StrJoin(command.words, " "),
                          command.summary);
  }
  return list + ServiceCommandList();
}

}  // namespace omd::client

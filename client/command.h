// One om command: its words, what it does, and how it runs; and what every
// command may use.
//
//   Command command = SimpleCommand({"daemon", "status"}, "Threads, nodes, config.", Run);
//   CommandResult result = command.run(context, arguments);
#ifndef OMD_CLIENT_COMMAND_H_
#define OMD_CLIENT_COMMAND_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/output.h"

namespace omd::client {

// What every command may use, from om's flags.
struct CommandContext {
  std::string root;       // the node's root: ROOT/etc/node.conf
  std::string server;     // "host:port" overriding node.conf's listener
  std::string server_node;  // the node name of that daemon, if known
  absl::Duration timeout;  // deadline of each call to the daemon
  std::string om_binary;  // this program, to run queued om commands
  // The service of an `om <svcname> ...` command (client/service_commands.h);
  // empty for the others.
  std::string svcname;
  std::string output = "human";  // --output: human, or json
};

struct Command {
  std::vector<std::string> words;
  std::string summary;
  std::function<CommandResult(const CommandContext&, absl::Span<const std::string>)> run;
  // The names of the command's own options, without "--" and canonical (e.g.
  // "thread_id" for a `daemon stop --thread-id=N`): the only options a queued action of this
  // command may use (CheckQueuedAction). Never the name of one of om's global
  // flags (root, server, node, output, timeout, or Abseil's flagfile, help...),
  // which would let a queued action use it.
  std::vector<std::string> options;
  // A service command that om runs itself, on this node (start, stop, print
  // config...), rather than one that calls a daemon: with --node NAME (another
  // node) or --server, om sends it to that daemon as a ServiceAction instead.
  bool runs_locally = false;
};

// An option's name with '-' spelt '_' ("thread-id" -> "thread_id"): om's options
// are Abseil flags, whose names cannot hold '-', and om accepts both spellings.
std::string CanonicalOptionName(absl::string_view name);

// A command that takes no arguments beyond its words.
Command SimpleCommand(std::vector<std::string> words, std::string summary,
                      CommandResult (*run)(const CommandContext&));

// INVALID_ARGUMENT naming the first of `arguments`, if any.
absl::Status NoArguments(absl::Span<const std::string> arguments);

}  // namespace omd::client

#endif  // OMD_CLIENT_COMMAND_H_

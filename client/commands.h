// The om commands: each one's words, what it does, and how it runs.
//
//   const Command* command = FindCommand({"daemon", "blacklist", "status"}, &args);
//   CommandResult result = command->run(context, args);
#ifndef OMD_CLIENT_COMMANDS_H_
#define OMD_CLIENT_COMMANDS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
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
};

struct Command {
  std::vector<std::string> words;
  std::string summary;
  std::function<CommandResult(const CommandContext&, absl::Span<const std::string>)> run;
  // The names of the command's own options, without "--" (e.g. "thread-id" for a
  // `daemon stop --thread-id=N`): the only options a queued action of this
  // command may use (CheckQueuedAction). Never the name of one of om's global
  // flags (root, server, node, output, timeout, or Abseil's flagfile, help...),
  // which would let a queued action use it.
  std::vector<std::string> options;
};

const std::vector<Command>& Commands();

// The command of `commands` (default: Commands()) whose words start `argv`; the
// rest of argv goes to `arguments`. nullptr when none matches.
const Command* FindCommand(absl::Span<const std::string> argv,
                           std::vector<std::string>* arguments);
const Command* FindCommand(absl::Span<const Command> commands,
                           absl::Span<const std::string> argv,
                           std::vector<std::string>* arguments);

// Whether `action`, the arguments of a queued action, may be run as
// `om --root ROOT <action...>` (DequeueOptions::check_action): it must start
// with the words of one of `commands` (default: Commands()), and every later
// argument that starts with "-" must be --NAME or --NAME=VALUE for one of that
// command's own `options`. Anything else that starts with "-" would be parsed as
// one of om's global flags (--root, --server, --flagfile, --fromenv, --help...,
// in any spelling: -flagfile, --noX, or a bare "--" or "-"), so it is refused
// with INVALID_ARGUMENT, naming it quoted for a message.
absl::Status CheckQueuedAction(absl::Span<const std::string> action);
absl::Status CheckQueuedAction(absl::Span<const Command> commands,
                               absl::Span<const std::string> action);

// "  daemon blacklist status    Counts of ..." lines, for --help and errors.
std::string CommandList();

}  // namespace omd::client

#endif  // OMD_CLIENT_COMMANDS_H_

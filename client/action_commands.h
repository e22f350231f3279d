// om's side of service actions: a service command sent to another node's daemon
// (`om <svcname> <command...> --node NAME [--async]`), and `om daemon actions`.
//
//   CommandResult result = RunServiceActionRemotely(context, {"start"});
//   // sync: result.text is the action's stdout, result.error_text its stderr,
//   // result.exit_code its exit code (om's).
#ifndef OMD_CLIENT_ACTION_COMMANDS_H_
#define OMD_CLIENT_ACTION_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/types/span.h"
#include "client/command.h"

namespace omd::client {

// Sends `om <context.svcname> <command...>` to the daemon that context names
// (--node, or --server) as a ServiceAction.
//
// Sync (the default): the daemon's action timeout is om's --timeout less a
// second, so that the reply (timed out) comes back before om gives up. om prints
// the action's stdout as it is, its stderr to om's stderr (with a note when the
// action timed out or an output was cut), and exits with the action's exit code;
// 1 when it has none (killed by a signal, timed out, or could not run).
// With --async: the daemon's default timeout; om prints the action's id, for
// `om daemon actions --id ID`.
CommandResult RunServiceActionRemotely(const CommandContext& context,
                                       absl::Span<const std::string> command);

// `om daemon actions [--id ID]`.
std::vector<Command> ActionCommands();

}  // namespace omd::client

#endif  // OMD_CLIENT_ACTION_COMMANDS_H_

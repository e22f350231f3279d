// om's side of service actions: a service command sent to another node's daemon
// (`om <svcname> <command...> --node NAME [--async]`), and `om daemon actions`.
#ifndef OMD_CLIENT_ACTION_COMMANDS_H_
#define OMD_CLIENT_ACTION_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/types/span.h"
#include "client/command.h"

namespace omd::client {

// Sends `om <context.svcname> <command...>` to the daemon that context names
// (--node, or --server) as a ServiceAction: sync, printing the action's output
// and ending with its exit code; with --async, printing the action's id.
CommandResult RunServiceActionRemotely(const CommandContext& context,
                                       absl::Span<const std::string> command);

// `om daemon actions [--id ID]`.
std::vector<Command> ActionCommands();

}  // namespace omd::client

#endif  // OMD_CLIENT_ACTION_COMMANDS_H_

// om's service commands: `om <svcname> create|print config|delete|start|stop|
// status`, which om runs itself on this node's files and instance (or, with
// --node NAME or --server, sends to that daemon as a service action), and
// `om svc ls`.
//
//   if (IsServiceCommandLine(argv)) result = RunServiceCommand(context, argv);
//   // argv: {"web", "start"}
#ifndef OMD_CLIENT_SERVICE_COMMANDS_H_
#define OMD_CLIENT_SERVICE_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/types/span.h"
#include "client/command.h"

namespace omd::client {

// The commands whose words follow `om <svcname>` (they read
// CommandContext::svcname): these and ServiceMonitorCommands().
const std::vector<Command>& ServiceCommands();

// `om svc ls`: commands of om's main table.
std::vector<Command> SvcCommands();

// Runs `om <argv...>`, argv[0] a service name: INVALID_ARGUMENT for a bad name,
// or an unknown service command (listing them); a command that runs locally is
// sent to the daemon of --server, or of --node when that is another node
// (RunServiceActionRemotely), as is an unknown one, which om there answers.
CommandResult RunServiceCommand(const CommandContext& context,
                                absl::Span<const std::string> argv);

// "  om <svcname> start    ..." lines, for --help and errors.
std::string ServiceCommandList();

}  // namespace omd::client

#endif  // OMD_CLIENT_SERVICE_COMMANDS_H_

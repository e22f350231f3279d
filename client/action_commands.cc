#include "client/action_commands.h"

#include "absl/status/status.h"

namespace omd::client {

CommandResult RunServiceActionRemotely(const CommandContext&,
                                       absl::Span<const std::string>) {
  CommandResult result;
  result.status = absl::UnimplementedError("service actions on another node");
  return result;
}

std::vector<Command> ActionCommands() { return {}; }

}  // namespace omd::client

#include "client/daemon_commands.h"

namespace omd::client {

std::vector<Command> DaemonCommands() { return {}; }

}  // namespace omd::client

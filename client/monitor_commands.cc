#include "client/monitor_commands.h"

namespace omd::client {

std::vector<Command> ServiceMonitorCommands() { return {}; }
std::vector<Command> NodeMonitorCommands() { return {}; }

}  // namespace omd::client

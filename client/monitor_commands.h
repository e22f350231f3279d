// om's commands for the monitors: `om <svcname> set monitor`, `print monitor`,
// `clear`, and `om node freeze|thaw`, each a call to the daemon.
#ifndef OMD_CLIENT_MONITOR_COMMANDS_H_
#define OMD_CLIENT_MONITOR_COMMANDS_H_

#include <vector>

#include "client/command.h"

namespace omd::client {

// Service commands: their words follow `om <svcname>`, and they read
// CommandContext::svcname.
std::vector<Command> ServiceMonitorCommands();
// `om node freeze`, `om node thaw`.
std::vector<Command> NodeMonitorCommands();

}  // namespace omd::client

#endif  // OMD_CLIENT_MONITOR_COMMANDS_H_

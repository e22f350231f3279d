// om daemon status|stop|start|shutdown: the daemon's threads, state and life.
#ifndef OMD_CLIENT_DAEMON_COMMANDS_H_
#define OMD_CLIENT_DAEMON_COMMANDS_H_

#include <vector>

#include "client/command.h"

namespace omd::client {

std::vector<Command> DaemonCommands();

}  // namespace omd::client

#endif  // OMD_CLIENT_DAEMON_COMMANDS_H_

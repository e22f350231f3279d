// om node get|set|unset|edit config: node.conf, read and edited locally under its lock.
#ifndef OMD_CLIENT_NODE_COMMANDS_H_
#define OMD_CLIENT_NODE_COMMANDS_H_

#include <vector>

#include "client/command.h"

namespace omd::client {

std::vector<Command> NodeCommands();

}  // namespace omd::client

#endif  // OMD_CLIENT_NODE_COMMANDS_H_

// om node get|set|unset|edit config: ROOT/etc/node.conf itself, read and changed
// here, with no daemon; changes go through config::UpdateNodeConfig (its lock,
// its validation), an edit through ReplaceNodeConfigIfUnchanged.
//
//   om node set --param listener.port --value 1215
//   om node get --param cluster.addr@node2
//   EDITOR="emacs -nw" om node edit config
//
//   for (Command& command : NodeCommands()) all.push_back(std::move(command));
#ifndef OMD_CLIENT_NODE_COMMANDS_H_
#define OMD_CLIENT_NODE_COMMANDS_H_

#include <vector>

#include "client/command.h"

namespace omd::client {

std::vector<Command> NodeCommands();

}  // namespace omd::client

#endif  // OMD_CLIENT_NODE_COMMANDS_H_

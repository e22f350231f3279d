// om daemon join|leave: this node into and out of a cluster.
#ifndef OMD_CLIENT_CLUSTER_COMMANDS_H_
#define OMD_CLIENT_CLUSTER_COMMANDS_H_

#include <vector>

#include "client/command.h"

namespace omd::client {

std::vector<Command> ClusterCommands();

}  // namespace omd::client

#endif  // OMD_CLIENT_CLUSTER_COMMANDS_H_

#include "client/cluster_commands.h"

namespace omd::client {

std::vector<Command> ClusterCommands() { return {}; }

}  // namespace omd::client

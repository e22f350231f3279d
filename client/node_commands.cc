#include "client/node_commands.h"

namespace omd::client {

std::vector<Command> NodeCommands() { return {}; }

}  // namespace omd::client

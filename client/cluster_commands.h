// om daemon join|leave: this node into and out of a cluster, run on the node
// that joins or leaves.
//
//   om daemon join --node node1 --secret_file /root/cluster.secret
//   om daemon leave
//
// join asks a member (--node: its name, on port 1214, or host[:port]) to add
// this node, sealing as a joiner (docs/PROTOCOL.md section 6.3) with the secret
// given, and writes the cluster's sections it answers into this node's
// node.conf. leave asks another member to remove this node, then makes this
// node standalone with a fresh secret. This node's daemon takes the new
// node.conf by itself (it watches the file).
#ifndef OMD_CLIENT_CLUSTER_COMMANDS_H_
#define OMD_CLIENT_CLUSTER_COMMANDS_H_

#include <vector>

#include "client/command.h"

namespace omd::client {

std::vector<Command> ClusterCommands();

}  // namespace omd::client

#endif  // OMD_CLIENT_CLUSTER_COMMANDS_H_

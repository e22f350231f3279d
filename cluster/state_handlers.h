// The handler of AnnounceState: a member tells its state ("up", "maintenance"),
// recorded in NodeStates under its authenticated name.
//
//   absl::Status added = AddStateHandlers(&states, &registry);
#ifndef OMD_CLUSTER_STATE_HANDLERS_H_
#define OMD_CLUSTER_STATE_HANDLERS_H_

#include "absl/status/status.h"
#include "cluster/node_states.h"
#include "server/handler_registry.h"

namespace omd::cluster {

absl::Status AddStateHandlers(NodeStates* states, server::HandlerRegistry* registry);

}  // namespace omd::cluster

#endif  // OMD_CLUSTER_STATE_HANDLERS_H_

// The handlers of the cluster's methods: Join, Leave, ClusterLock and
// SetClusterMembers. Thin: they check the request's fields, call the membership
// (cluster/membership.h) and map its outcome to the reply.
//
//   absl::Status added = AddClusterHandlers(&membership, &registry);
//
// Join and Leave answer from the membership's worker once the change is made
// (HandlerRegistry::AddUnaryAsync); the others answer at once.
#ifndef OMD_CLUSTER_CLUSTER_HANDLERS_H_
#define OMD_CLUSTER_CLUSTER_HANDLERS_H_

#include "absl/status/status.h"
#include "cluster/membership.h"
#include "server/handler_registry.h"

namespace omd::cluster {

absl::Status AddClusterHandlers(Membership* membership, server::HandlerRegistry* registry);

}  // namespace omd::cluster

#endif  // OMD_CLUSTER_CLUSTER_HANDLERS_H_

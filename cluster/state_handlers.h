// The handler of AnnounceState: a member tells its state ("up", "maintenance"),
// recorded in NodeStates under its authenticated name.
//
//   absl::Status added = AddStateHandlers(&states, &registry);
//   AddStateHandlers(&states, &registry, [&](absl::string_view node, const auto& request) {
//     monitor.OnPeerAnnounce(node, request);
//   });
#ifndef OMD_CLUSTER_STATE_HANDLERS_H_
#define OMD_CLUSTER_STATE_HANDLERS_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cluster/node_states.h"
#include "proto/omd.pb.h"
#include "server/handler_registry.h"

namespace omd::cluster {

// `on_announce`, if set, is given each admitted announcement with its sender's
// authenticated name (the monitor takes the sender's instances from it).
absl::Status AddStateHandlers(
    NodeStates* states, server::HandlerRegistry* registry,
    std::function<void(absl::string_view node, const v1::AnnounceStateRequest&)>
        on_announce = {});

}  // namespace omd::cluster

#endif  // OMD_CLUSTER_STATE_HANDLERS_H_

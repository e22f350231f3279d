#include "cluster/state_handlers.h"

#include <utility>

#include "log/log.h"
#include "proto/omd.pb.h"

namespace omd::cluster {

absl::Status AddStateHandlers(
    NodeStates* states, server::HandlerRegistry* registry,
    std::function<void(absl::string_view node, const v1::AnnounceStateRequest&)>
        on_announce) {
  return registry->AddUnary<v1::AnnounceStateRequest, v1::AnnounceStateReply>(
      "AnnounceState",
      [states, on_announce = std::move(on_announce)](
          const server::Caller& caller,
               const v1::AnnounceStateRequest& request) -> absl::StatusOr<v1::AnnounceStateReply> {
        absl::StatusOr<NodeState> state = AnnouncedState(request.state());
        if (!state.ok()) return state.status();
        const NodeState before = states->Get(caller.nodename).state;
        states->Announced(caller.nodename, *state);
        if (on_announce) on_announce(caller.nodename, request);
        if (*state != before && (*state == NodeState::kMaintenance ||
                                 before == NodeState::kMaintenance)) {
          OMD_LOG(INFO, "node %s is %s", caller.nodename, NodeStateName(*state));
        }
        return v1::AnnounceStateReply();
      });
}

}  // namespace omd::cluster

#include "cluster/heartbeat.h"

#include <thread>
#include <utility>

#include "log/log.h"
#include "proto/omd.pb.h"
#include "sync/mutex.h"

namespace omd::cluster {

Heartbeat::Heartbeat(Options options, Peers* peers, NodeStates* states,
                     std::function<std::shared_ptr<const config::NodeConfig>()> config)
    : options_(std::move(options)), peers_(peers), states_(states), config_(std::move(config)) {}

std::vector<std::string> Heartbeat::AnnounceToAll(NodeState state, absl::Duration bound) {
  return Announce(state, bound, /*live_only=*/false);
}

std::vector<std::string> Heartbeat::AnnounceToLiveMembers(NodeState state,
                                                          absl::Duration bound) {
  return Announce(state, bound, /*live_only=*/true);
}

std::vector<std::string> Heartbeat::Announce(NodeState state, absl::Duration bound,
                                             bool live_only) {
  const std::shared_ptr<const config::NodeConfig> config = config_();
  v1::AnnounceStateRequest request;
  request.set_state(std::string(NodeStateName(state)));
  if (options_.describe) options_.describe(&request);
  sync::Mutex mutex;
  std::vector<std::string> acknowledged;
  std::vector<std::thread> calls;
  for (const std::string& node : config->cluster_nodes) {
    if (node == config->node_name) continue;
    if (live_only && states_->Get(node).state != NodeState::kUp) continue;
    // One thread per member, each call bounded: an unreachable member delays
    // nobody else, and the whole round takes `bound` at most.
    calls.emplace_back([this, node, state, &request, bound, &mutex, &acknowledged] {
      absl::StatusOr<v1::AnnounceStateReply> reply =
          peers_->Call<v1::AnnounceStateReply>(node, "AnnounceState", request, bound);
      if (!reply.ok()) {
        // Heartbeats fail often (a member is down) and say so in its state;
        // a lost maintenance notice is worth a line.
        if (state == NodeState::kMaintenance) {
          OMD_LOG(WARNING, "%s did not hear of the maintenance: %s", node,
                  reply.status().ToString());
        }
        return;
      }
      states_->Heard(node);
      sync::MutexLock lock(&mutex);
      acknowledged.push_back(node);
    });
  }
  for (std::thread& call : calls) call.join();
  return acknowledged;
}

absl::Status Heartbeat::Run(const std::function<bool(absl::Duration)>& stopped_within) {
  do {
    AnnounceToAll(NodeState::kUp, options_.timeout);
  } while (!stopped_within(options_.interval));
  return absl::OkStatus();
}

}  // namespace omd::cluster

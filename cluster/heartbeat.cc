#include "cluster/heartbeat.h"

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
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
  // Every call at once, none holding a thread: a round to 1,000 members (some of
  // them down, each call waiting out `bound`) once took a thread per member. The
  // round's state is shared with the calls' completions, so that the last one
  // may still be leaving its lock when this returns.
  struct Round {
    sync::Mutex mutex;
    int pending ABSL_GUARDED_BY(mutex) = 0;
    std::vector<std::string> acknowledged ABSL_GUARDED_BY(mutex);
  };
  auto round = std::make_shared<Round>();
  for (const std::string& node : config->cluster_nodes) {
    if (node == config->node_name) continue;
    if (live_only && states_->Get(node).state != NodeState::kUp) continue;
    {
      sync::MutexLock lock(&round->mutex);
      ++round->pending;
    }
    peers_->CallAsync<v1::AnnounceStateReply>(
        node, "AnnounceState", request, bound,
        [this, node, state, round](absl::StatusOr<v1::AnnounceStateReply> reply) {
          if (reply.ok()) {
            states_->Heard(node);
          } else if (state == NodeState::kMaintenance) {
            // Heartbeats fail often (a member is down) and say so in its state;
            // a lost maintenance notice is worth a line.
            OMD_LOG(WARNING, "%s did not hear of the maintenance: %s", node,
                    reply.status().ToString());
          }
          sync::MutexLock lock(&round->mutex);
          if (reply.ok()) round->acknowledged.push_back(node);
          --round->pending;
        });
  }
  sync::MutexLock lock(&round->mutex);
  round->mutex.Await(
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(round->mutex) { return round->pending == 0; });
  return round->acknowledged;
}

absl::Status Heartbeat::Run(const std::function<bool(absl::Duration)>& stopped_within) {
  do {
    AnnounceToAll(NodeState::kUp, options_.timeout);
  } while (!stopped_within(options_.interval));
  return absl::OkStatus();
}

}  // namespace omd::cluster

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
    : options_(std::move(options)),
      peers_(peers),
      states_(states),
      config_(std::move(config)),
      schedule_(options_.schedule) {}

std::vector<std::string> Heartbeat::AnnounceToAll(NodeState state, absl::Duration bound) {
  return Announce(state, bound, round_.load(),
                  [](const std::string&) { return true; });
}

std::vector<std::string> Heartbeat::AnnounceToLiveMembers(NodeState state,
                                                          absl::Duration bound) {
  return Announce(state, bound, round_.load(), [this](const std::string& node) {
    return states_->Get(node).state == NodeState::kUp;
  });
}

std::vector<std::string> Heartbeat::Announce(
    NodeState state, absl::Duration bound, int64_t round,
    const std::function<bool(const std::string&)>& include) {
  const std::shared_ptr<const config::NodeConfig> config = config_();
  v1::AnnounceStateRequest request;
  request.set_state(std::string(NodeStateName(state)));
  if (options_.describe) options_.describe(&request);
  // Every call at once, none holding a thread: a round to 1,000 members (some of
  // them down, each call waiting out `bound`) once took a thread per member. The
  // calls' state is shared with their completions, so that the last one may
  // still be leaving its lock when this returns.
  struct Calls {
    sync::Mutex mutex;
    int pending ABSL_GUARDED_BY(mutex) = 0;
    std::vector<std::string> acknowledged ABSL_GUARDED_BY(mutex);
  };
  auto calls = std::make_shared<Calls>();
  for (const std::string& node : config->cluster_nodes) {
    if (node == config->node_name) continue;
    if (!include(node)) continue;
    {
      sync::MutexLock lock(&calls->mutex);
      ++calls->pending;
    }
    peers_->CallAsync<v1::AnnounceStateReply>(
        node, "AnnounceState", request, bound,
        [this, node, state, round, calls](absl::StatusOr<v1::AnnounceStateReply> reply) {
          if (reply.ok()) {
            states_->Heard(node);
          } else if (state == NodeState::kMaintenance) {
            // Heartbeats fail often (a member is down) and say so in its state;
            // a lost maintenance notice is worth a line.
            OMD_LOG(WARNING, "%s did not hear of the maintenance: %s", node,
                    reply.status().ToString());
          }
          if (schedule_.Record(node, round, reply.ok(), states_->Get(node).last_seen)) {
            peers_->Disconnect(node);
          }
          sync::MutexLock lock(&calls->mutex);
          if (reply.ok()) calls->acknowledged.push_back(node);
          --calls->pending;
        });
  }
  sync::MutexLock lock(&calls->mutex);
  calls->mutex.Await(
      [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(calls->mutex) { return calls->pending == 0; });
  return calls->acknowledged;
}

absl::Status Heartbeat::Run(const std::function<bool(absl::Duration)>& stopped_within) {
  do {
    const int64_t round = round_.fetch_add(1) + 1;
    schedule_.Retain(config_()->cluster_nodes);
    Announce(NodeState::kUp, options_.timeout, round, [this, round](const std::string& node) {
      return schedule_.Due(node, round, states_->Get(node).last_seen);
    });
  } while (!stopped_within(options_.interval));
  return absl::OkStatus();
}

}  // namespace omd::cluster

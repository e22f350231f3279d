// Heartbeats: this node tells every other member it is up, every `interval`, and
// records who answered; before it stops, it tells them it is in maintenance.
//
// A heartbeat is an AnnounceState("up") request to each member, all at once, each
// bounded by `timeout`; the member records the state (NodeStates), and its sealed
// reply tells this node that the member is up. The first round is sent at once,
// so a restarted node clears its maintenance state on the members. A member whose
// calls keep failing is called less often (HeartbeatSchedule) until it is heard
// from again.
//
//   Heartbeat heartbeat(options, &peers, &states, [&] { return reloader.config(); });
//   supervisor.Add("heartbeat", [&](const StopSignal& stop) { return heartbeat.Run(...); });
//   heartbeat.AnnounceToAll(NodeState::kMaintenance, absl::Seconds(2));  // stopping
#ifndef OMD_CLUSTER_HEARTBEAT_H_
#define OMD_CLUSTER_HEARTBEAT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cluster/heartbeat_schedule.h"
#include "cluster/node_states.h"
#include "cluster/peers.h"
#include "config/node_config.h"
#include "proto/omd.pb.h"

namespace omd::cluster {

class Heartbeat {
 public:
  struct Options {
    absl::Duration interval = absl::Seconds(2);
    // Of each call. Short: a stop waits for the round in flight.
    absl::Duration timeout = absl::Milliseconds(500);
    // Adds what else each announcement tells (this node's monitors); may be
    // empty.
    std::function<void(v1::AnnounceStateRequest*)> describe;
    HeartbeatSchedule::Options schedule;
  };

  // `config` returns the configuration in use (its members, this node's name).
  Heartbeat(Options options, Peers* peers, NodeStates* states,
            std::function<std::shared_ptr<const config::NodeConfig>()> config);

  // The body of the heartbeat thread. `stopped_within(d)` waits up to d and
  // tells whether the thread is asked to stop.
  absl::Status Run(const std::function<bool(absl::Duration)>& stopped_within);

  // Tells every other member `state`, all at once; returns within `bound`
  // whatever the members do. Returns the members that acknowledged it.
  std::vector<std::string> AnnounceToAll(NodeState state, absl::Duration bound);
  // The same, to the members that are up (heard from lately): a stopping node
  // waits for nobody that could not hear it anyway. A member that was down
  // meanwhile sees this node "unknown", not "maintenance".
  std::vector<std::string> AnnounceToLiveMembers(NodeState state, absl::Duration bound);

 private:
  // Announces `state` to the members `include` accepts, and records each call's
  // outcome in `schedule_` as round `round`'s.
  std::vector<std::string> Announce(NodeState state, absl::Duration bound, int64_t round,
                                    const std::function<bool(const std::string&)>& include);

  const Options options_;
  Peers* const peers_;
  NodeStates* const states_;
  const std::function<std::shared_ptr<const config::NodeConfig>()> config_;
  HeartbeatSchedule schedule_;
  std::atomic<int64_t> round_{0};  // routine rounds sent; advanced by Run only
};

}  // namespace omd::cluster

#endif  // OMD_CLUSTER_HEARTBEAT_H_

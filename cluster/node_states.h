// The cluster's nodes as this daemon sees them: "up" (heard from lately),
// "maintenance" (it said it is stopping, and has not said it is up since), or
// "unknown" (nothing heard for a while, or ever).
//
// What is heard: a node's AnnounceState requests (its heartbeats say "up"; its
// stop says "maintenance") and its sealed replies to this node's own heartbeats.
// Both are authenticated, so a node's state is its own word.
//
//   NodeStates states(NodeStates::Options{});
//   states.Announced("node2", NodeState::kMaintenance);
//   states.Heard("node3");
//   NodeStates::Entry entry = states.Get("node2");  // kMaintenance
#ifndef OMD_CLUSTER_NODE_STATES_H_
#define OMD_CLUSTER_NODE_STATES_H_

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sync/mutex.h"

namespace omd::cluster {

enum class NodeState { kUnknown, kUp, kMaintenance };

absl::string_view NodeStateName(NodeState state);  // "unknown", "up", "maintenance"
// INVALID_ARGUMENT unless `name` is "up" or "maintenance" (what a node may
// announce).
absl::StatusOr<NodeState> AnnouncedState(absl::string_view name);

class NodeStates {
 public:
  struct Options {
    // Up while heard from within this (a few heartbeat intervals).
    absl::Duration up_for = absl::Seconds(7);
    // The wall clock, for last_seen; empty: absl::Now.
    std::function<absl::Time()> clock;
  };

  struct Entry {
    NodeState state = NodeState::kUnknown;
    absl::Time last_seen = absl::InfinitePast();  // InfinitePast: never
  };

  explicit NodeStates(Options options);

  // `node` said it is up or in maintenance.
  void Announced(absl::string_view node, NodeState state);
  // An authenticated message from `node` (a reply to this node's heartbeat).
  void Heard(absl::string_view node);
  Entry Get(absl::string_view node) const;

 private:
  struct Record {
    bool maintenance = false;
    absl::Time last_seen = absl::InfinitePast();
  };

  absl::Time Now() const;

  const Options options_;
  mutable sync::Mutex mutex_;
  std::map<std::string, Record, std::less<>> records_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::cluster

#endif  // OMD_CLUSTER_NODE_STATES_H_

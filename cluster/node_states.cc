#include "cluster/node_states.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace omd::cluster {

absl::string_view NodeStateName(NodeState state) {
  switch (state) {
    case NodeState::kUp:
      return "up";
    case NodeState::kMaintenance:
      return "maintenance";
    case NodeState::kUnknown:
      return "unknown";
  }
  return "unknown";
}

absl::StatusOr<NodeState> AnnouncedState(absl::string_view name) {
  if (name == "up") return NodeState::kUp;
  if (name == "maintenance") return NodeState::kMaintenance;
  return absl::InvalidArgumentError("state must be \"up\" or \"maintenance\"");
}

NodeStates::NodeStates(Options options) : options_(std::move(options)) {}

absl::Time NodeStates::Now() const { return options_.clock ? options_.clock() : absl::Now(); }

void NodeStates::Announced(absl::string_view node, NodeState state) {
  const absl::Time now = Now();
  sync::MutexLock lock(&mutex_);
  Record& record = records_[std::string(node)];
  record.maintenance = state == NodeState::kMaintenance;
  record.last_seen = now;
}

void NodeStates::Heard(absl::string_view node) {
  const absl::Time now = Now();
  sync::MutexLock lock(&mutex_);
  records_[std::string(node)].last_seen = now;
}

NodeStates::Entry NodeStates::Get(absl::string_view node) const {
  const absl::Time now = Now();
  sync::MutexLock lock(&mutex_);
  Entry entry;
  auto it = records_.find(node);
  if (it == records_.end()) return entry;
  entry.last_seen = it->second.last_seen;
  if (it->second.maintenance) {
    entry.state = NodeState::kMaintenance;  // until it says it is up again
  } else if (now - it->second.last_seen <= options_.up_for) {
    entry.state = NodeState::kUp;
  }
  return entry;
}

}  // namespace omd::cluster

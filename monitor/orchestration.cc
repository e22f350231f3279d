#include "monitor/orchestration.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "monitor/monitor_values.h"

namespace omd::monitor {
namespace {

bool IsUp(absl::string_view avail) { return avail == "up" || avail == "warn"; }
// Not running: down, or nothing checkable.
bool IsDown(absl::string_view avail) { return avail == "down" || avail == "n/a"; }

bool IsFailed(absl::string_view status) {
  return status == kStartFailed || status == kStopFailed;
}

// Every instance this node knows of: its own (with the plan's changes) and the
// peers'.
template <typename Predicate>
bool AllInstances(const v1::InstanceMonitor& local, const PeerInstances& peers,
                  Predicate predicate) {
  if (!predicate(local)) return false;
  for (const auto& [node, peer] : peers.instances) {
    if (!predicate(peer)) return false;
  }
  return true;
}

// The node a failover service starts on: the first of its nodes heard from,
// not frozen, whose instance is not frozen and has not failed to start.
std::string FailoverNode(const v1::InstanceMonitor& local,
                         const service::ServiceConfig& config,
                         const std::string& local_node, bool node_frozen,
                         const PeerInstances& peers) {
  for (const std::string& node : config.nodes) {
    const v1::InstanceMonitor* instance = nullptr;
    bool frozen = false;
    if (node == local_node) {
      instance = &local;
      frozen = node_frozen;
    } else if (auto found = peers.instances.find(node); found != peers.instances.end()) {
      instance = &found->second;
      auto node_state = peers.node_frozen.find(node);
      frozen = node_state != peers.node_frozen.end() && node_state->second;
    }
    if (instance == nullptr || frozen || instance->frozen() ||
        instance->status() == kStartFailed) {
      continue;
    }
    return node;
  }
  return "";
}

void SetLocalExpect(const v1::InstanceMonitor& instance, absl::string_view value,
                    Plan& plan) {
  if (instance.local_expect() != value) plan.local_expect = std::string(value);
}

// global_expect's part of the plan; true if it decided the instance's action.
bool PlanGlobalExpect(const v1::InstanceMonitor& instance,
                      const service::ServiceConfig& config, const std::string& local_node,
                      bool node_frozen, const PeerInstances& peers, Plan& plan) {
  const std::string& target = instance.global_expect();
  if (target.empty() || target == kUnset) return false;
  // A node that has not heard yet may be the one to start it, or be up.
  const bool everyone_told = peers.waiting_for.empty();
  if (target == kFrozen || target == kThawed) {
    const bool frozen = target == kFrozen;
    if (instance.frozen() != frozen) {
      plan.frozen = frozen;
      plan.why = absl::StrCat("global_expect ", target, ": instance ", target);
    }
    v1::InstanceMonitor after = instance;
    after.set_frozen(frozen);
    if (everyone_told && AllInstances(after, peers, [&](const v1::InstanceMonitor& each) {
          return each.frozen() == frozen;
        })) {
      plan.clear_global_expect = true;
    }
    return true;
  }
  // started and stopped act on processes: not on a frozen node or instance, nor
  // while a failure waits for a clear.
  const bool may_act = !node_frozen && !instance.frozen() && !IsFailed(instance.status());
  if (target == kStopped) {
    if (may_act) SetLocalExpect(instance, kStopped, plan);
    if (may_act && !IsDown(instance.avail())) {
      plan.action = Plan::Action::kStop;
      plan.why = "global_expect stopped: stopping the instance";
    }
    if (everyone_told && AllInstances(instance, peers, [](const v1::InstanceMonitor& each) {
          return IsDown(each.avail());
        })) {
      plan.clear_global_expect = true;
    }
    return true;
  }
  // started
  const bool local_up = IsUp(instance.avail());
  if (local_up && may_act) SetLocalExpect(instance, kStarted, plan);
  if (config.topology == service::Topology::kFlex) {
    if (may_act && !local_up) {
      plan.action = Plan::Action::kStart;
      plan.why = "global_expect started (flex): starting the instance";
    }
    if (everyone_told && AllInstances(instance, peers, [](const v1::InstanceMonitor& each) {
          return IsUp(each.avail());
        })) {
      plan.clear_global_expect = true;
    }
    return true;
  }
  bool up_somewhere = local_up;
  for (const auto& [node, peer] : peers.instances) up_somewhere |= IsUp(peer.avail());
  if (up_somewhere) {
    plan.clear_global_expect = everyone_told;
    return true;
  }
  if (may_act && everyone_told && FailoverNode(instance, config, local_node, node_frozen, peers) == local_node) {
    plan.action = Plan::Action::kStart;
    plan.why = "global_expect started (failover): starting the instance here";
  }
  return true;
}

void PlanLocalExpect(const v1::InstanceMonitor& instance, const service::ServiceConfig& config,
                     Plan& plan) {
  const std::string& expect = plan.local_expect.value_or(instance.local_expect());
  if (expect != kStarted && expect != kStopped) return;
  const bool keep_started = expect == kStarted;
  std::vector<std::string> attempts;  // "app#1 (2 of 3)"
  for (const v1::ResourceMonitor& resource : instance.resources()) {
    const bool wrong = keep_started ? resource.state() == "down" : resource.state() == "up";
    if (!wrong) continue;
    auto configured = std::find_if(config.resources.begin(), config.resources.end(),
                                   [&](const service::Resource& each) {
                                     return each.id == resource.id();
                                   });
    if (configured == config.resources.end()) continue;
    const uint32_t allowed = static_cast<uint32_t>(configured->restart) + (keep_started ? 0 : 1);
    if (resource.restarts() >= allowed) {
      plan.action = keep_started ? Plan::Action::kGiveUpStart : Plan::Action::kGiveUpStop;
      plan.resources = {resource.id()};
      plan.why = absl::StrCat(resource.id(), " is ", resource.state(), " after ",
                              resource.restarts(), keep_started ? " restarts" : " stops",
                              ": ", keep_started ? kStartFailed : kStopFailed);
      return;
    }
    plan.resources.push_back(resource.id());
    attempts.push_back(absl::StrCat(resource.id(), " (", resource.restarts() + 1, " of ",
                                    allowed, ")"));
  }
  if (plan.resources.empty()) return;
  plan.action = keep_started ? Plan::Action::kRestartResources : Plan::Action::kStopResources;
  plan.why = absl::StrCat("local_expect ", expect, ": ",
                          keep_started ? "restarting " : "stopping ",
                          absl::StrJoin(attempts, ", "));
}

}  // namespace

bool IsNewerGlobalExpect(const v1::InstanceMonitor& candidate,
                         const v1::InstanceMonitor& current) {
  if (candidate.global_expect_version() != current.global_expect_version()) {
    return candidate.global_expect_version() > current.global_expect_version();
  }
  return candidate.global_expect() != current.global_expect() &&
         candidate.nodename() > current.nodename();
}

Plan Decide(const v1::InstanceMonitor& instance, const service::ServiceConfig& config,
            const std::string& local_node, bool node_frozen, const PeerInstances& peers) {
  Plan plan;
  if (IsTransientStatus(instance.status())) return plan;  // acting already
  const bool decided =
      PlanGlobalExpect(instance, config, local_node, node_frozen, peers, plan);
  if (plan.action != Plan::Action::kNone) return plan;
  if (node_frozen || instance.frozen() || IsFailed(instance.status())) return plan;
  // A global target being reached decides the instance's state; local_expect's
  // rules apply in between and after.
  if (decided && !plan.clear_global_expect && instance.global_expect() != kFrozen &&
      instance.global_expect() != kThawed) {
    return plan;
  }
  PlanLocalExpect(instance, config, plan);
  return plan;
}

}  // namespace omd::monitor

// What a service instance's monitor does next: a pure function of the instance's
// monitor state, its service's configuration and what its peers last told, so
// that every rule is tested without running anything.
//
// global_expect, what the service's nodes aim at together, comes first:
//   frozen, thawed  every instance sets its frozen flag; reached when every
//                   instance heard from has it.
//   stopped         every instance is stopped (local_expect stopped); reached when
//                   none heard from is up.
//   started         flex: every instance is started. failover: one is, on the
//                   first of the service's nodes (in `nodes` order) that is heard
//                   from, not frozen (node or instance) and not "start failed";
//                   the others wait. Reached when one is up (failover), or every
//                   instance heard from is up (flex); local_expect becomes started
//                   where it runs.
// Reached, global_expect is cleared (unset) by whichever node sees it so first;
// the clearing travels like any setting. While a node of the service that is up
// has not told of the setting yet (PeerInstances::waiting_for), a failover
// service is not started and nothing is reached.
// Then local_expect, what this node keeps its instance at:
//   started  a resource found down is restarted, up to its `restart` times; one
//            found down past that puts the instance in "start failed", and the
//            monitor stops trying until a clear.
//   stopped  a resource found up is stopped, up to `restart` + 1 times, then
//            "stop failed".
// A frozen node or instance, an instance in a failed or transient status, and
// resources without a check ("n/a") get no action.
#ifndef OMD_MONITOR_ORCHESTRATION_H_
#define OMD_MONITOR_ORCHESTRATION_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "proto/omd.pb.h"
#include "service/service_config.h"

namespace omd::monitor {

// The service's other instances as this node last heard of them, from nodes
// heard from lately (others are left out): by node name.
struct PeerInstances {
  std::map<std::string, v1::InstanceMonitor> instances;
  std::map<std::string, bool> node_frozen;  // by node name: its node monitor's
  // The service's nodes heard from lately that have not told yet of the
  // instance's current global_expect setting (their instance is missing from
  // their last heartbeat, or has an older version), while it is recent: the
  // instance does not decide for them (a failover start waits; nothing is
  // reached) until they have told, or the setting is old enough that they are
  // taken to have no instance.
  std::set<std::string> waiting_for;
};

struct Plan {
  enum class Action {
    kNone,
    kStart,             // the whole instance
    kStop,              // the whole instance
    kRestartResources,  // `resources`, each counted
    kStopResources,     // `resources`, each counted
    kGiveUpStart,       // status "start failed"
    kGiveUpStop,        // status "stop failed"
  };
  Action action = Action::kNone;
  std::vector<std::string> resources;
  // Changes to the instance's monitor state before acting.
  std::optional<bool> frozen;
  std::optional<std::string> local_expect;
  bool clear_global_expect = false;  // reached
  std::string why;  // for the service's log; empty with kNone and no change
};

// `instance` is the local instance's state after its latest check; `local_node`
// this node; `node_frozen` this node's node monitor.
Plan Decide(const v1::InstanceMonitor& instance, const service::ServiceConfig& config,
            const std::string& local_node, bool node_frozen, const PeerInstances& peers);

// Whether `candidate` (a peer's global_expect setting) is newer than `current`:
// a higher version, or the same from a higher node name.
bool IsNewerGlobalExpect(const v1::InstanceMonitor& candidate,
                         const v1::InstanceMonitor& current);

}  // namespace omd::monitor

#endif  // OMD_MONITOR_ORCHESTRATION_H_

// The values of the monitors' attributes, and which of them a request may set.
//
// A service instance's monitor:
//   status         idle; starting, stopping, restarting (the monitor is acting);
//                  start failed, stop failed (it gave up until a clear)
//   local_expect   started, stopped, unset: what the monitor keeps the instance at
//   global_expect  what the service's nodes aim at together: started, stopped,
//                  frozen, thawed, or unset (none). OpenSVC's other targets
//                  (deleted, purged, provisioned, unprovisioned, aborted, placed,
//                  placed@<node>, shutdown, scaled) are known and refused as not
//                  supported yet.
// The node monitor:
//   status         idle, freezing, thawing
//   local_expect   thawed, frozen
//
//   absl::Status status = CheckGlobalExpect("placed@n2");  // FAILED_PRECONDITION
#ifndef OMD_MONITOR_MONITOR_VALUES_H_
#define OMD_MONITOR_MONITOR_VALUES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace omd::monitor {

inline constexpr absl::string_view kIdle = "idle";
inline constexpr absl::string_view kStarting = "starting";
inline constexpr absl::string_view kStopping = "stopping";
inline constexpr absl::string_view kRestarting = "restarting";
inline constexpr absl::string_view kStartFailed = "start failed";
inline constexpr absl::string_view kStopFailed = "stop failed";
inline constexpr absl::string_view kFreezing = "freezing";
inline constexpr absl::string_view kThawing = "thawing";

inline constexpr absl::string_view kStarted = "started";
inline constexpr absl::string_view kStopped = "stopped";
inline constexpr absl::string_view kUnset = "unset";
inline constexpr absl::string_view kFrozen = "frozen";
inline constexpr absl::string_view kThawed = "thawed";

// starting, stopping, restarting: an action of the monitor's is under way.
bool IsTransientStatus(absl::string_view status);

// What SetServiceMonitor may set. status: idle, start failed, stop failed (the
// transient ones are the monitor's own). INVALID_ARGUMENT listing the allowed
// values otherwise; global_expect also FAILED_PRECONDITION for a target OpenSVC
// has and this daemon does not support yet.
absl::Status CheckServiceStatus(absl::string_view status);
absl::Status CheckServiceLocalExpect(absl::string_view local_expect);
absl::Status CheckGlobalExpect(absl::string_view global_expect);

// What SetNodeMonitor may set: status idle, freezing, thawing; local_expect
// thawed, frozen.
absl::Status CheckNodeStatus(absl::string_view status);
absl::Status CheckNodeLocalExpect(absl::string_view local_expect);

}  // namespace omd::monitor

#endif  // OMD_MONITOR_MONITOR_VALUES_H_

// Where the monitors' states live between daemon runs: ROOT/var/monitor/node.json
// (the node monitor) and ROOT/var/monitor/services/<svcname>.json (each local
// instance's), the messages in protobuf's JSON form, each replaced atomically
// (config/atomic_file.h), so a crash leaves the old state or the new one.
//
//   MonitorStore store(root);
//   absl::Status saved = store.SaveInstance(instance);
//   std::map<std::string, v1::InstanceMonitor> instances = store.LoadInstances();
#ifndef OMD_MONITOR_MONITOR_STORE_H_
#define OMD_MONITOR_MONITOR_STORE_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/omd.pb.h"

namespace omd::monitor {

class MonitorStore {
 public:
  explicit MonitorStore(std::string root);

  // NOT_FOUND when never saved; another error for a file that does not read
  // (corrupt, or unreadable).
  absl::StatusOr<v1::NodeMonitor> LoadNode() const;
  absl::Status SaveNode(const v1::NodeMonitor& node) const;

  // Every saved instance, by service name. A file that does not read, or whose
  // name is not a service's, is skipped with a warning in the log: the
  // instance starts afresh rather than the daemon not at all.
  std::map<std::string, v1::InstanceMonitor> LoadInstances() const;
  // instance.svcname must be a valid service name.
  absl::Status SaveInstance(const v1::InstanceMonitor& instance) const;
  // OK if there was nothing to remove.
  absl::Status RemoveInstance(absl::string_view svcname) const;

 private:
  std::string InstancePath(absl::string_view svcname) const;

  const std::string root_;
};

}  // namespace omd::monitor

#endif  // OMD_MONITOR_MONITOR_STORE_H_

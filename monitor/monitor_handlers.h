// The handlers of the monitors' methods: GetServiceMonitor, SetServiceMonitor,
// Clear and SetNodeMonitor. Each is a change in memory and a small file write
// (monitor/monitor.h), so they answer at once.
//
//   absl::Status added = AddMonitorHandlers(&monitor, &registry);
#ifndef OMD_MONITOR_MONITOR_HANDLERS_H_
#define OMD_MONITOR_MONITOR_HANDLERS_H_

#include "absl/status/status.h"
#include "monitor/monitor.h"
#include "server/handler_registry.h"

namespace omd::monitor {

absl::Status AddMonitorHandlers(Monitor* monitor, server::HandlerRegistry* registry);

}  // namespace omd::monitor

#endif  // OMD_MONITOR_MONITOR_HANDLERS_H_

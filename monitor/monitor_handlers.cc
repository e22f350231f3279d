#include "monitor/monitor_handlers.h"

#include <string>
#include <vector>

#include "proto/omd.pb.h"

namespace omd::monitor {
namespace {

template <typename Reply>
absl::StatusOr<Reply> WithInfo(absl::StatusOr<std::vector<std::string>> info) {
  if (!info.ok()) return info.status();
  Reply reply;
  for (std::string& line : *info) reply.add_info(std::move(line));
  return reply;
}

}  // namespace

absl::Status AddMonitorHandlers(Monitor* monitor, server::HandlerRegistry* registry) {
  absl::Status added = registry->AddUnary<v1::GetServiceMonitorRequest, v1::GetServiceMonitorReply>(
      "GetServiceMonitor",
      [monitor](const server::Caller&, const v1::GetServiceMonitorRequest& request) {
        return monitor->GetService(request.svcname());
      });
  added.Update(registry->AddUnary<v1::SetServiceMonitorRequest, v1::SetServiceMonitorReply>(
      "SetServiceMonitor",
      [monitor](const server::Caller&, const v1::SetServiceMonitorRequest& request) {
        return WithInfo<v1::SetServiceMonitorReply>(monitor->SetService(request));
      }));
  added.Update(registry->AddUnary<v1::ClearRequest, v1::ClearReply>(
      "Clear", [monitor](const server::Caller&, const v1::ClearRequest& request) {
        return WithInfo<v1::ClearReply>(monitor->Clear(request.svcname()));
      }));
  added.Update(registry->AddUnary<v1::SetNodeMonitorRequest, v1::SetNodeMonitorReply>(
      "SetNodeMonitor",
      [monitor](const server::Caller&, const v1::SetNodeMonitorRequest& request) {
        return WithInfo<v1::SetNodeMonitorReply>(monitor->SetNode(request));
      }));
  return added;
}

}  // namespace omd::monitor

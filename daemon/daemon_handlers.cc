#include "daemon/daemon_handlers.h"

#include "absl/strings/str_cat.h"
#include "log/log.h"

namespace omd::daemon {

absl::Status AddDaemonHandlers(DaemonControl* daemon, server::HandlerRegistry* registry) {
  absl::Status added = registry->AddUnary<v1::DaemonStatusRequest, v1::DaemonStatusReply>(
      "DaemonStatus",
      [daemon](const server::Caller&, const v1::DaemonStatusRequest&)
          -> absl::StatusOr<v1::DaemonStatusReply> { return daemon->Status(); });
  if (!added.ok()) return added;

  added = registry->AddUnary<v1::DaemonStopRequest, v1::DaemonStopReply>(
      "DaemonStop",
      [daemon](const server::Caller& caller, const v1::DaemonStopRequest& request)
          -> absl::StatusOr<v1::DaemonStopReply> {
        v1::DaemonStopReply reply;
        if (request.thread_id().empty()) {
          OMD_LOG(INFO, "daemon stop asked by %s at %s", caller.nodename, caller.address);
          daemon->RequestStop(StopKind::kStop);
          reply.add_info("the daemon stops; its service instances keep running");
          return reply;
        }
        absl::Status stopped = daemon->StopThread(request.thread_id());
        if (!stopped.ok()) return stopped;
        OMD_LOG(INFO, "thread %s stopped by %s at %s", request.thread_id(),
                caller.nodename, caller.address);
        reply.add_info(absl::StrCat("thread ", request.thread_id(), " stopped"));
        return reply;
      });
  if (!added.ok()) return added;

  added = registry->AddUnary<v1::DaemonStartRequest, v1::DaemonStartReply>(
      "DaemonStart",
      [daemon](const server::Caller& caller, const v1::DaemonStartRequest& request)
          -> absl::StatusOr<v1::DaemonStartReply> {
        if (request.thread_id().empty()) {
          return absl::InvalidArgumentError(
              "thread_id is required: which thread to start");
        }
        absl::Status started = daemon->StartThread(request.thread_id());
        if (!started.ok()) return started;
        OMD_LOG(INFO, "thread %s started by %s at %s", request.thread_id(),
                caller.nodename, caller.address);
        v1::DaemonStartReply reply;
        reply.add_info(absl::StrCat("thread ", request.thread_id(), " started"));
        return reply;
      });
  if (!added.ok()) return added;

  return registry->AddUnary<v1::DaemonShutdownRequest, v1::DaemonShutdownReply>(
      "DaemonShutdown",
      [daemon](const server::Caller& caller, const v1::DaemonShutdownRequest&)
          -> absl::StatusOr<v1::DaemonShutdownReply> {
        OMD_LOG(INFO, "daemon shutdown asked by %s at %s", caller.nodename,
                caller.address);
        daemon->RequestStop(StopKind::kShutdown);
        v1::DaemonShutdownReply reply;
        reply.add_info("the daemon stops its service instances, then itself");
        return reply;
      });
}

}  // namespace omd::daemon

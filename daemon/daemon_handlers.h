// The handlers of the daemon's own methods: DaemonStatus, DaemonStop,
// DaemonStart, DaemonShutdown. Thin: they call a DaemonControl (the daemon) and
// map its answers.
//
//   absl::Status added = AddDaemonHandlers(&daemon, &registry);
#ifndef OMD_DAEMON_DAEMON_HANDLERS_H_
#define OMD_DAEMON_DAEMON_HANDLERS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/omd.pb.h"
#include "server/handler_registry.h"

namespace omd::daemon {

// What a stop request asks for.
enum class StopKind {
  kStop,      // advertise maintenance, stop; service instances keep running
  kShutdown,  // stop the service instances, advertise maintenance, stop
};

// What the handlers need of the daemon.
class DaemonControl {
 public:
  virtual v1::DaemonStatusReply Status() const = 0;
  // NOT_FOUND for an unknown id (the message lists the known ones).
  virtual absl::Status StartThread(absl::string_view id) = 0;
  virtual absl::Status StopThread(absl::string_view id) = 0;
  // Returns at once; the daemon stops after the reply is out.
  virtual void RequestStop(StopKind kind) = 0;

 protected:
  ~DaemonControl() = default;
};

absl::Status AddDaemonHandlers(DaemonControl* daemon, server::HandlerRegistry* registry);

}  // namespace omd::daemon

#endif  // OMD_DAEMON_DAEMON_HANDLERS_H_

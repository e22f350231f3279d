// Handlers of the listener's own requests: Identify, blacklist status and clear,
// and the empty packet that makes the daemon dequeue queued actions.
#ifndef OMD_SERVER_LISTENER_HANDLERS_H_
#define OMD_SERVER_LISTENER_HANDLERS_H_

#include "absl/status/status.h"
#include "server/dequeue_runner.h"
#include "server/gate.h"
#include "server/handler_registry.h"

namespace omd::server {

// `gate` and `dequeue_runner` must outlive the registry's use.
absl::Status AddListenerHandlers(Gate* gate, DequeueRunner* dequeue_runner,
                                 HandlerRegistry* registry);

}  // namespace omd::server

#endif  // OMD_SERVER_LISTENER_HANDLERS_H_

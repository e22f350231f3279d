// ServiceAction and ListActions, on an ActionRunner.
//
// A sync ServiceAction answers when its action has finished (from the action's
// thread, HandlerRegistry::AddUnaryAsync), with its exit code and output; an
// async one answers at once with the action's id, and its pid as 0 (the runner
// knows it only once the process is done: ListActions has it then).
// ListActions of every action leaves their output out (kept whole, up to 100
// actions would not fit one reply); ListActions of one id has it.
//
//   ActionRunner runner(options);
//   absl::Status added = AddActionHandlers(&runner, &registry);
#ifndef OMD_ACTION_ACTION_HANDLERS_H_
#define OMD_ACTION_ACTION_HANDLERS_H_

#include "absl/status/status.h"
#include "action/action_runner.h"
#include "server/handler_registry.h"

namespace omd::action {

// `runner` must outlive the registry's use.
absl::Status AddActionHandlers(ActionRunner* runner, server::HandlerRegistry* registry);

}  // namespace omd::action

#endif  // OMD_ACTION_ACTION_HANDLERS_H_

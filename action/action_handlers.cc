#include "action/action_handlers.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/omd.pb.h"
#include "server/caller.h"

namespace omd::action {
namespace {

v1::ServiceActionReply SyncReply(const v1::ActionStatus& finished) {
  v1::ServiceActionReply reply;
  reply.set_exit_code(finished.exit_code());
  reply.set_stdout(finished.stdout());
  reply.set_stderr(finished.stderr());
  reply.set_pid(finished.pid());
  reply.set_session_id(finished.session_id());
  reply.set_stdout_truncated(finished.stdout_truncated());
  reply.set_stderr_truncated(finished.stderr_truncated());
  reply.set_timed_out(finished.state() == kTimedOut);
  return reply;
}

}  // namespace

absl::Status AddActionHandlers(ActionRunner* runner, server::HandlerRegistry* registry) {
  absl::Status added =
      registry->AddUnaryAsync<v1::ServiceActionRequest, v1::ServiceActionReply>(
          "ServiceAction",
          [runner](const server::Caller& caller, const v1::ServiceActionRequest& request,
                   server::HandlerRegistry::Responder<v1::ServiceActionReply> respond) {
            ActionRunner::Request action;
            action.svcname = request.svcname();
            action.command.assign(request.command().begin(), request.command().end());
            action.sync = request.sync();
            action.timeout = absl::Seconds(request.timeout_seconds());
            action.deadline = caller.deadline;
            action.requested_by = caller.nodename;
            ActionRunner::OnFinished on_finished;
            if (request.sync()) {
              on_finished = [respond](const v1::ActionStatus& finished) {
                respond(SyncReply(finished));
              };
            }
            absl::StatusOr<std::string> id = runner->Start(std::move(action), on_finished);
            if (!id.ok()) {
              respond(id.status());  // nothing ran: on_finished is never called
              return;
            }
            if (!request.sync()) {
              v1::ServiceActionReply reply;
              reply.set_session_id(*id);
              respond(std::move(reply));
            }
          });
  if (!added.ok()) return added;
  return registry->AddUnary<v1::ListActionsRequest, v1::ListActionsReply>(
      "ListActions",
      [runner](const server::Caller&,
               const v1::ListActionsRequest& request) -> absl::StatusOr<v1::ListActionsReply> {
        absl::StatusOr<std::vector<v1::ActionStatus>> listed =
            runner->List(request.session_id());
        if (!listed.ok()) return listed.status();
        v1::ListActionsReply reply;
        for (v1::ActionStatus& action : *listed) {
          if (request.session_id().empty()) {
            // Every action's output would not fit one reply (gRPC's 4 MiB):
            // the list has none, one action by its id has its own.
            action.clear_stdout();
            action.clear_stderr();
          }
          *reply.add_actions() = std::move(action);
        }
        return reply;
      });
}

}  // namespace omd::action

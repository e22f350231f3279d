// How om reaches the daemon of its node (or, with --server, another one) and
// calls one of its methods.
//
//   CommandResult result;
//   absl::StatusOr<v1::BlacklistStatusReply> reply = CallDaemon<v1::BlacklistStatusReply>(
//       context, "BlacklistStatus", v1::BlacklistStatusRequest(), result);
#ifndef OMD_CLIENT_DAEMON_CALL_H_
#define OMD_CLIENT_DAEMON_CALL_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/agent_client.h"
#include "client/command.h"
#include "config/node_config.h"
#include "google/protobuf/message.h"

namespace omd::client {

// A client of the daemon of context.root's node.conf, through its control socket
// (ROOT/var/omd.sock); of the --server daemon over TCP; or of the member that
// --node names alone, over TCP to its [cluster] addr@NAME (or NAME:1214). Sealing
// as this node with its secret.
absl::StatusOr<std::unique_ptr<AgentClient>> ConnectToDaemon(const CommandContext& context);

// UNAVAILABLE from the control socket, saying what to check.
absl::Status NotReachedLocally(const CommandContext& context, const absl::Status& status);

// Calls `method` of the daemon, and records in `result` which node answered.
template <typename Reply>
absl::StatusOr<Reply> CallDaemon(const CommandContext& context, absl::string_view method,
                                 const google::protobuf::Message& request,
                                 CommandResult& result) {
  absl::StatusOr<std::unique_ptr<AgentClient>> client = ConnectToDaemon(context);
  if (!client.ok()) return client.status();
  absl::StatusOr<Reply> reply = (*client)->template Call<Reply>(method, request);
  result.node = (*client)->daemon_node();
  if (absl::IsUnavailable(reply.status()) && context.server.empty() &&
      (context.server_node.empty() || context.server_node == (*client)->daemon_node())) {
    return NotReachedLocally(context, reply.status());
  }
  return reply;
}

}  // namespace omd::client

#endif  // OMD_CLIENT_DAEMON_CALL_H_

#include "client/daemon_call.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "config/envelope_options.h"
#include "net/unix_socket.h"

namespace omd::client {

absl::StatusOr<std::unique_ptr<AgentClient>> ConnectToDaemon(
    const CommandContext& context) {
  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(context.root);
  if (!config.ok()) return config.status();
  AgentClient::Options options;
  // The local daemon through its control socket: it works whatever the TCP
  // listener's state or address, and is never blacklisted. Another member named
  // with --node alone is reached where node.conf says ([cluster] addr@NAME).
  const bool other_member = context.server.empty() && !context.server_node.empty() &&
                            context.server_node != config->node_name;
  absl::StatusOr<std::string> target =
      !context.server.empty() ? absl::StatusOr<std::string>(context.server)
      : other_member          ? absl::StatusOr<std::string>(
                                   config::PeerTarget(*config, context.server_node))
                     : net::UnixTarget(config::ControlSocketPath(context.root));
  if (!target.ok()) return NotReachedLocally(context, target.status());
  options.target = *target;
  options.envelope = config::EnvelopeOptionsFor(*config);
  // The local daemon is this node; a --server peer is who --node says, or, unknown,
  // learned with Identify before the first request (AgentClient).
  options.recipient = !context.server_node.empty() ? context.server_node
                      : context.server.empty()     ? config->node_name
                                                   : "";
  options.reply_senders.insert(config->cluster_nodes.begin(),
                               config->cluster_nodes.end());
  options.timeout = context.timeout;
  // om's channel serves one call and is gone: reconnecting soon costs nothing,
  // and om waits at exit for that timer to let go of gRPC (client/om_main.cc).
  options.initial_reconnect_backoff = absl::Milliseconds(100);
  return AgentClient::Create(std::move(options));
}

absl::Status NotReachedLocally(const CommandContext& context,
                               const absl::Status& status) {
  return absl::UnavailableError(absl::StrCat("is omd running on ", context.root, "? (",
                                             config::ControlSocketPath(context.root),
                                             ": ", status.message(), ")"));
}

}  // namespace omd::client

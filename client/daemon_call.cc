#include "client/daemon_call.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "config/atomic_file.h"
#include "config/envelope_options.h"
#include "rpc/peer.h"

namespace omd::client {

absl::StatusOr<std::string> DaemonTarget(const CommandContext& context,
                                         const config::NodeConfig& config) {
  if (!context.server.empty()) return context.server;
  if (config.listener_port == 0) {
    absl::StatusOr<std::string> recorded =
        config::ReadFileToString(config::ListenerAddressPath(context.root), 4096);
    if (!recorded.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node.conf sets [listener] port = 0 and the daemon has not recorded its "
          "address: is omd running? (", recorded.status().message(), ")"));
    }
    return std::string(absl::StripAsciiWhitespace(*recorded));
  }
  std::string host = config.listener_addr;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  return rpc::JoinHostPort(host, config.listener_port);
}

absl::StatusOr<std::unique_ptr<AgentClient>> ConnectToDaemon(const CommandContext& context) {
  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(context.root);
  if (!config.ok()) return config.status();
  AgentClient::Options options;
  absl::StatusOr<std::string> target = DaemonTarget(context, *config);
  if (!target.ok()) return target.status();
  options.target = *target;
  options.envelope = config::EnvelopeOptionsFor(*config);
  // The local daemon is this node; a --server peer is who --node says, or, unknown,
  // learned with Identify before the first request (AgentClient).
  options.recipient = !context.server_node.empty() ? context.server_node
                      : context.server.empty()     ? config->node_name
                                                   : "";
  options.reply_senders.insert(config->cluster_nodes.begin(), config->cluster_nodes.end());
  options.timeout = context.timeout;
  // om's channel serves one call and is gone: reconnecting soon costs nothing,
  // and om waits at exit for that timer to let go of gRPC (client/om_main.cc).
  options.initial_reconnect_backoff = absl::Milliseconds(100);
  return AgentClient::Create(std::move(options));
}

}  // namespace omd::client

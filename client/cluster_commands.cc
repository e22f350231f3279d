#include "client/cluster_commands.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "client/agent_client.h"
#include "config/atomic_file.h"
#include "config/cluster_sections.h"
#include "config/envelope_options.h"
#include "config/node_config.h"
#include "crypto/envelope.h"
#include "proto/omd.pb.h"
#include "rpc/peer.h"

namespace omd::client {

// The type of --secret: Abseil prints a flag's value where it shows the flag
// (`om --helpfull` shows "currently: <value>"); this one never shows it.
struct SecretFlag {
  std::string value;
};
bool AbslParseFlag(absl::string_view text, SecretFlag* flag, std::string* /*error*/) {
  flag->value = std::string(text);
  return true;
}
std::string AbslUnparseFlag(const SecretFlag& flag) {
  return flag.value.empty() ? "" : "(not shown)";
}

}  // namespace omd::client

ABSL_FLAG(omd::client::SecretFlag, secret, {},
          "om daemon join: the cluster's secret. Every user of this host can read it in "
          "the process list while om runs: prefer --secret_file.");
ABSL_FLAG(std::string, secret_file, "",
          "om daemon join: a file whose first line is the cluster's secret; - (or "
          "/dev/stdin) reads it from standard input. Also spelt --secret-file.");
ABSL_FLAG(std::string, address, "",
          "om daemon join: where the cluster's members reach this node's daemon, "
          "host[:port]; default: node.conf's [listener] addr and port (the port the "
          "daemon bound, if 0).");

namespace omd::client {
namespace {

// A join or leave locks every member and writes every node.conf: it may take
// longer than an ordinary call.
constexpr absl::Duration kMembershipChangeDeadline = absl::Seconds(60);
constexpr size_t kMaxSecretFileBytes = 4096;

CommandResult Failed(absl::Status status) {
  CommandResult result;
  result.status = std::move(status);
  return result;
}

// The same status, its message after `context`.
absl::Status WithContext(absl::string_view context, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

// The secret from --secret or --secret_file, never quoted in an error.
absl::StatusOr<std::string> SecretFromFlags() {
  const std::string given = absl::GetFlag(FLAGS_secret).value;
  std::string path = absl::GetFlag(FLAGS_secret_file);
  if (given.empty() && path.empty()) {
    return absl::InvalidArgumentError(
        "om daemon join needs the cluster's secret: --secret_file FILE (- for standard "
        "input), or --secret SECRET");
  }
  if (!given.empty() && !path.empty()) {
    return absl::InvalidArgumentError("give the secret once: --secret or --secret_file");
  }
  std::string secret = given;
  if (!path.empty()) {
    if (path == "-") path = "/dev/stdin";
    absl::StatusOr<std::string> text = config::ReadFileToString(path, kMaxSecretFileBytes);
    if (!text.ok()) return WithContext("--secret_file", text.status());
    secret = std::string(absl::StripAsciiWhitespace(text->substr(0, text->find('\n'))));
  }
  if (secret.size() < config::kMinSecretLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the cluster's secret is shorter than ", config::kMinSecretLength, " characters"));
  }
  return secret;
}

// Where the members reach this node's daemon.
absl::StatusOr<std::string> OwnAddress(const CommandContext& context,
                                       const config::NodeConfig& config) {
  const std::string given = absl::GetFlag(FLAGS_address);
  if (!given.empty()) return config::ParsePeerAddress("--address", given);
  if (config.listener_addr == "0.0.0.0" || config.listener_addr == "::") {
    return absl::FailedPreconditionError(absl::StrCat(
        "this node listens on every address ([listener] addr = ", config.listener_addr,
        "): say where the members reach it with --address HOST:PORT"));
  }
  if (config.listener_port != 0) {
    return rpc::JoinHostPort(config.listener_addr, config.listener_port);
  }
  absl::StatusOr<std::string> recorded =
      config::ReadFileToString(config::ListenerAddressPath(context.root), 4096);
  if (!recorded.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node.conf sets [listener] port = 0 and the daemon has not recorded the port it "
        "bound: start omd first, or say where the members reach it with --address (",
        recorded.status().message(), ")"));
  }
  return config::ParsePeerAddress(config::ListenerAddressPath(context.root),
                                  absl::StripAsciiWhitespace(*recorded));
}

std::vector<std::string> OtherMembers(const config::NodeConfig& config) {
  std::vector<std::string> others;
  for (const std::string& node : config.cluster_nodes) {
    if (node != config.node_name) others.push_back(node);
  }
  std::sort(others.begin(), others.end());
  return others;
}

// A client with om's settings: one call, then gone.
AgentClient::Options ClientOptions(const CommandContext& context, std::string target) {
  AgentClient::Options options;
  options.target = std::move(target);
  options.timeout = context.timeout;
  options.initial_reconnect_backoff = absl::Milliseconds(100);  // client/om_main.cc
  return options;
}

CommandResult Join(const CommandContext& context, absl::Span<const std::string> arguments) {
  if (absl::Status none = NoArguments(arguments); !none.ok()) return Failed(none);
  if (!context.server.empty()) {
    return Failed(absl::InvalidArgumentError(
        "om daemon join names the member to join through with --node NAME or --node "
        "HOST[:PORT], not with --server"));
  }
  if (context.server_node.empty()) {
    return Failed(absl::InvalidArgumentError(
        "om daemon join needs --node: the member to join through, by its node name or "
        "as host[:port]"));
  }
  absl::StatusOr<std::string> target = config::ParsePeerAddress("--node", context.server_node);
  if (!target.ok()) return Failed(target.status());
  absl::StatusOr<std::string> secret = SecretFromFlags();
  if (!secret.ok()) return Failed(secret.status());
  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(context.root);
  if (!config.ok()) return Failed(config.status());
  const std::vector<std::string> others = OtherMembers(*config);
  auto already_member = [&] {
    return absl::FailedPreconditionError(absl::StrCat(
        "this node is a member of cluster ", config->cluster_name, " with ",
        absl::StrJoin(others, ", "), ": leave it first (om daemon leave)"));
  };
  // Another secret is another cluster: refused before anything is sent.
  if (!others.empty() && *secret != config->secret) return Failed(already_member());
  absl::StatusOr<std::string> address = OwnAddress(context, *config);
  if (!address.ok()) return Failed(address.status());

  AgentClient::Options options = ClientOptions(context, *target);
  options.envelope = crypto::JoinerEnvelopeOptions(config->node_name, *secret);
  options.any_reply_sender = true;
  absl::StatusOr<std::unique_ptr<AgentClient>> client = AgentClient::Create(std::move(options));
  if (!client.ok()) return Failed(client.status());
  CommandResult result;
  // Which node answers there, and of which cluster.
  absl::Status identified =
      (*client)->Call<v1::IdentifyReply>("Identify", v1::IdentifyRequest()).status();
  if (!identified.ok()) {
    return Failed(WithContext(absl::StrCat("cannot join through ", *target), identified));
  }
  result.node = (*client)->daemon_node();
  const std::string cluster = (*client)->daemon_cluster();
  // Joining the cluster this node is in already is harmless; another is not.
  if (!others.empty() && cluster != config->cluster_name) return Failed(already_member());

  v1::JoinRequest request;
  request.set_address(*address);
  absl::StatusOr<v1::JoinReply> reply = (*client)->Call<v1::JoinReply>(
      "Join", request, std::max(context.timeout, kMembershipChangeDeadline));
  if (!reply.ok()) {
    result.status = WithContext(absl::StrCat(result.node, " did not add this node"),
                                reply.status());
    return result;
  }
  absl::StatusOr<config::NodeConfig> joined =
      config::UpdateNodeConfig(context.root, [&](config::IniFile& ini) {
        return config::TakeClusterConfig(*reply, *secret, config->node_name, ini);
      });
  if (!joined.ok()) {
    result.status = WithContext(
        absl::StrCat(result.node, " added this node, but its answer cannot be written to ",
                     config::NodeConfigPath(context.root)),
        joined.status());
    return result;
  }
  auto& fields = *result.data.mutable_struct_value()->mutable_fields();
  fields["cluster"].set_string_value(joined->cluster_name);
  auto& nodes = *fields["nodes"].mutable_list_value();
  for (const std::string& node : joined->cluster_nodes) nodes.add_values()->set_string_value(node);
  result.text = absl::StrCat("Joined cluster ", joined->cluster_name, ": nodes ",
                             absl::StrJoin(joined->cluster_nodes, " "), ".\n");
  for (const std::string& info : reply->info()) {
    result.info.push_back(info);
    absl::StrAppend(&result.text, info, "\n");
  }
  return result;
}

CommandResult Leave(const CommandContext& context, absl::Span<const std::string> arguments) {
  if (absl::Status none = NoArguments(arguments); !none.ok()) return Failed(none);
  if (!context.server.empty() || !context.server_node.empty()) {
    return Failed(absl::InvalidArgumentError(
        "om daemon leave asks the other members itself: it takes no --server or --node"));
  }
  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(context.root);
  if (!config.ok()) return Failed(config.status());
  const std::vector<std::string> others = OtherMembers(*config);
  if (others.empty()) {
    return Failed(absl::FailedPreconditionError(absl::StrCat(
        "this node, ", config->node_name, ", is in no cluster with other members: there "
        "is nothing to leave")));
  }
  CommandResult result;
  const std::string not_a_member =
      absl::StrCat("node ", config->node_name, " is not a member of the cluster");
  std::vector<std::string> refusals;
  absl::Status last;
  for (const std::string& member : others) {
    AgentClient::Options options = ClientOptions(context, config::PeerTarget(*config, member));
    options.envelope = config::EnvelopeOptionsFor(*config);
    options.recipient = member;
    options.reply_senders.insert(config->cluster_nodes.begin(), config->cluster_nodes.end());
    absl::StatusOr<std::unique_ptr<AgentClient>> client = AgentClient::Create(std::move(options));
    if (!client.ok()) return Failed(client.status());
    absl::StatusOr<v1::LeaveReply> reply = (*client)->Call<v1::LeaveReply>(
        "Leave", v1::LeaveRequest(), std::max(context.timeout, kMembershipChangeDeadline));
    if (reply.ok()) {
      result.node = member;
      for (const std::string& info : reply->info()) result.info.push_back(info);
      break;
    }
    // Removed there already (a leave whose local half did not happen).
    if (reply.status().code() == absl::StatusCode::kPermissionDenied &&
        reply.status().message() == not_a_member) {
      result.node = member;
      result.info.push_back(absl::StrCat(member, ": this node was no member there any more"));
      break;
    }
    last = reply.status();
    refusals.push_back(absl::StrCat(member, ": ", reply.status().ToString()));
  }
  if (result.node.empty()) {
    return Failed(absl::Status(
        last.code(), absl::StrCat("no member removed this node, whose node.conf is "
                                  "unchanged: ",
                                  absl::StrJoin(refusals, "; "))));
  }
  absl::StatusOr<config::NodeConfig> left =
      config::UpdateNodeConfig(context.root, [&](config::IniFile& ini) {
        return config::MakeStandalone(config->node_name, config::NewClusterSecret(), ini);
      });
  if (!left.ok()) {
    result.status = WithContext(
        absl::StrCat(result.node, " removed this node, but ",
                     config::NodeConfigPath(context.root),
                     " cannot be made standalone; run om daemon leave again"),
        left.status());
    return result;
  }
  auto& fields = *result.data.mutable_struct_value()->mutable_fields();
  fields["cluster"].set_string_value(config->cluster_name);
  fields["removed_by"].set_string_value(result.node);
  result.text = absl::StrCat("Left cluster ", config->cluster_name,
                             ": this node stands alone now, with a new secret.\n");
  for (const std::string& info : result.info) absl::StrAppend(&result.text, info, "\n");
  return result;
}

}  // namespace

std::vector<Command> ClusterCommands() {
  return {
      Command{{"daemon", "join"},
              "Join a cluster through one of its members: --node NAME (port 1214) or "
              "--node HOST[:PORT], and the cluster's secret, --secret_file FILE (- for "
              "standard input) or --secret SECRET (visible in the process list). Waits "
              "up to 60 s, or --timeout if longer.",
              Join,
              {"secret", "secret_file", "address"}},
      Command{{"daemon", "leave"},
              "Leave the cluster: another member removes this node, which then stands "
              "alone, with a new secret.",
              Leave,
              {}},
  };
}

}  // namespace omd::client

#include "cluster/peers.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "config/envelope_options.h"
#include "config/names.h"

namespace omd::cluster {
namespace {

int Milliseconds(absl::Duration duration) {
  return static_cast<int>(
      absl::ToInt64Milliseconds(std::clamp(duration, absl::Milliseconds(1), absl::Hours(1))));
}

}  // namespace

GateVerdict GateVerdictOf(const absl::Status& status) {
  const absl::string_view message = status.message();
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return GateVerdict::kAdmitted;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kResourceExhausted:  // limits, or the replay guard's share
    case absl::StatusCode::kUnknown:
      return GateVerdict::kUnknown;
    case absl::StatusCode::kPermissionDenied:
      // A blacklisted sender's messages are not counted again (step 2).
      if (message == "sender is blacklisted after repeated invalid messages") {
        return GateVerdict::kUnknown;
      }
      return GateVerdict::kCountedRefusal;  // an invalid name, not a member (step 3)
    case absl::StatusCode::kUnauthenticated:
      // Step 7: authentic, but stale or replayed; not counted.
      if (absl::StartsWith(message, "send time is ") || message == "replayed request" ||
          message == "sent before this node's unclean restart; resend") {
        return GateVerdict::kUnknown;
      }
      // This side's checks of the reply (client/agent_client.cc): the peer
      // admitted the request, then answered something this node does not trust.
      if (absl::StartsWith(message, "reply ")) return GateVerdict::kAdmitted;
      return GateVerdict::kCountedRefusal;  // steps 4 and 5
    case absl::StatusCode::kInvalidArgument:
      if (message == "request is not an omd.v1.Envelope") return GateVerdict::kCountedRefusal;
      return GateVerdict::kAdmitted;  // the handler's: the payload, a field
    default:
      return GateVerdict::kAdmitted;  // a handler's own error, after the gate
  }
}

Peers::Peers(Options options) : options_(std::move(options)) {}

absl::Time Peers::Now() const {
  if (options_.clock) return options_.clock();
  return absl::UnixEpoch() +
         absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

void Peers::SetConfig(const config::NodeConfig& config) {
  sync::MutexLock lock(&mutex_);
  config_ = config;
  // Clients are rebuilt at their next call, with the new secret and target; the
  // channels of targets still in use are kept, with their connections. The
  // refusal counts stay: the peers' counts of this node do too.
  std::map<std::string, std::shared_ptr<grpc::Channel>> kept;
  for (auto& [node, peer] : peers_) {
    peer.client = nullptr;
    const std::string target = TargetLocked(node);
    auto it = channels_.find(target);
    if (it != channels_.end()) kept.insert(*it);
  }
  channels_ = std::move(kept);
}

void Peers::LearnAddresses(const std::map<std::string, std::string>& addresses) {
  sync::MutexLock lock(&mutex_);
  for (const auto& [node, address] : addresses) {
    std::string& learned = learned_[node];
    if (learned == address) continue;
    learned = address;
    auto peer = peers_.find(node);
    if (peer != peers_.end()) peer->second.client = nullptr;  // rebuilt for the new target
  }
}

std::string Peers::TargetLocked(absl::string_view node) const {
  if (config_->node_addresses.count(std::string(node)) == 0) {
    auto learned = learned_.find(node);
    if (learned != learned_.end()) return learned->second;
  }
  return config::PeerTarget(*config_, node);
}

std::shared_ptr<grpc::Channel> Peers::ChannelLocked(const std::string& target) {
  std::shared_ptr<grpc::Channel>& channel = channels_[target];
  if (channel == nullptr) {
    grpc::ChannelArguments arguments;
    // As the daemon's keepalive policy expects (daemon/daemon.cc).
    arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                     Milliseconds(options_.reconnect_backoff));
    arguments.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, Milliseconds(options_.reconnect_backoff));
    arguments.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
                     Milliseconds(options_.max_reconnect_backoff));
    channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
  }
  return channel;
}

absl::StatusOr<std::shared_ptr<client::AgentClient>> Peers::ClientFor(absl::string_view node) {
  if (!config::IsValidName(node)) {
    return absl::InvalidArgumentError("a peer's name must be a valid node name");
  }
  const absl::Time now = Now();
  sync::MutexLock lock(&mutex_);
  if (!config_.has_value()) {
    return absl::FailedPreconditionError("no node.conf given to the peers' client yet");
  }
  Peer& peer = peers_[std::string(node)];
  if (peer.refusals_in_a_row >= options_.refusals_before_hold) {
    if (now < peer.held_until) {
      return absl::UnavailableError(absl::StrCat(
          node, " refused this node's last ", peer.refusals_in_a_row, " messages (",
          peer.last_refusal, "): not calling it for another ",
          absl::FormatDuration(absl::Ceil(peer.held_until - now, absl::Seconds(1))),
          ", lest it blacklist this node"));
    }
    // One call tries again; the others wait for its outcome (Record).
    peer.held_until = now + peer.next_hold;
  }
  if (peer.client == nullptr) {
    client::AgentClient::Options options;
    options.target = TargetLocked(node);
    options.channel = ChannelLocked(options.target);
    options.envelope = config::EnvelopeOptionsFor(*config_);
    options.recipient = std::string(node);
    options.reply_senders = {std::string(node)};
    options.wait_for_ready = true;  // a peer that restarted is called within the deadline
    absl::StatusOr<std::unique_ptr<client::AgentClient>> made =
        client::AgentClient::Create(std::move(options));
    if (!made.ok()) return made.status();
    peer.client = *std::move(made);
  }
  return peer.client;
}

void Peers::Record(absl::string_view node, const absl::Status& status) {
  const GateVerdict verdict = GateVerdictOf(status);
  if (verdict == GateVerdict::kUnknown) return;
  const absl::Time now = Now();
  sync::MutexLock lock(&mutex_);
  auto it = peers_.find(node);
  if (it == peers_.end()) return;
  Peer& peer = it->second;
  if (verdict == GateVerdict::kAdmitted) {
    peer.refusals_in_a_row = 0;
    peer.held_until = absl::InfinitePast();
    peer.next_hold = options_.first_hold;
    peer.last_refusal.clear();
    return;
  }
  ++peer.refusals_in_a_row;
  peer.last_refusal = absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                                   status.message());
  if (peer.refusals_in_a_row == options_.refusals_before_hold) {
    peer.next_hold = options_.first_hold;
  }
  if (peer.refusals_in_a_row >= options_.refusals_before_hold) {
    peer.held_until = now + peer.next_hold;
    peer.next_hold = std::min(2 * peer.next_hold, options_.max_hold);
  }
}

std::string Peers::TargetOf(absl::string_view node) const {
  sync::MutexLock lock(&mutex_);
  if (!config_.has_value()) return "";
  return TargetLocked(node);
}

void Peers::Disconnect(absl::string_view node) {
  sync::MutexLock lock(&mutex_);
  auto it = peers_.find(node);
  if (it == peers_.end() || !config_.has_value()) return;
  it->second.client = nullptr;
  channels_.erase(TargetLocked(node));
}

int Peers::RefusalsInARow(absl::string_view node) const {
  sync::MutexLock lock(&mutex_);
  auto it = peers_.find(node);
  return it == peers_.end() ? 0 : it->second.refusals_in_a_row;
}

}  // namespace omd::cluster

// Calls to the daemons of other nodes, as this node: what heartbeats,
// announcements and membership changes use.
//
// Each peer gets one gRPC channel, kept across calls, to where config::PeerTarget
// says it is reached ([cluster] addr@<node>, else its name on port 1214; a node
// node.conf has no address for is reached where LearnAddresses last said), and an
// AgentClient bound to that node: every request names it as recipient, so that
// it cannot be replayed to another node, and only that node's sealed reply is
// accepted. SetConfig takes node.conf again whenever it changes (a new secret, new
// addresses, new members); calls in flight finish with the configuration they
// started with.
//
//   Peers peers(Peers::Options{});
//   peers.SetConfig(config);
//   absl::StatusOr<v1::ClusterLockReply> reply = peers.Call<v1::ClusterLockReply>(
//       "node2", "ClusterLock", request, absl::Seconds(2));
//
// A peer that does not take this node's messages (it has another secret, or does
// not count this node as a member yet: a joiner whose daemon has not loaded its
// new node.conf) counts each of them, and blacklists this node at the 5th in a
// row (docs/PROTOCOL.md, section 4). So after 3 such refusals in a row, calls to
// that peer are held: they fail at once, UNAVAILABLE, for 5 s; then one call may
// try again, and each refusal after that doubles the wait, up to 5 minutes. A
// reply that shows the peer admitted a message (a success, or its handler's
// error) ends the count. A peer that keeps refusing this node still blacklists it,
// after a quarter of a minute at the earliest, which is right if this node is
// really not in its cluster any more.
//
// Thread-safe; a call blocks its caller at most `timeout`.
#ifndef OMD_CLUSTER_PEERS_H_
#define OMD_CLUSTER_PEERS_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/agent_client.h"
#include "config/node_config.h"
#include "crypto/envelope.h"
#include "google/protobuf/message.h"
#include "sync/mutex.h"

namespace omd::cluster {

// What a call's outcome says about the peer's gate (docs/PROTOCOL.md, 5.1).
enum class GateVerdict {
  kAdmitted,        // the peer's gate let the message through: its count is reset
  kCountedRefusal,  // refused at a step that counts toward the blacklist
  kUnknown,         // no connection, a deadline, or a refusal that is not counted
};
GateVerdict GateVerdictOf(const absl::Status& status);

class Peers {
 public:
  struct Options {
    // Refusals in a row after which calls to a peer are held.
    int refusals_before_hold = 3;
    absl::Duration first_hold = absl::Seconds(5);
    absl::Duration max_hold = absl::Minutes(5);
    // How soon a channel tries to connect again after a failure, at first and at
    // most: a peer that restarts is reached again within max_reconnect_backoff.
    absl::Duration reconnect_backoff = absl::Seconds(1);
    absl::Duration max_reconnect_backoff = absl::Seconds(5);
    // A monotonic clock for the holds; empty: std::chrono::steady_clock.
    std::function<absl::Time()> clock;
  };

  explicit Peers(Options options);

  Peers(const Peers&) = delete;
  Peers& operator=(const Peers&) = delete;

  // This node's configuration, from now on: who it is, its cluster's secrets and
  // the peers' addresses. Until the first call, every Call is FAILED_PRECONDITION.
  void SetConfig(const config::NodeConfig& config);

  // Calls omd.v1.Agent/`method` of `node`'s daemon, whose `carries` option must
  // name the types of `request` and Reply, within `timeout` (waiting for a
  // connection meanwhile: DEADLINE_EXCEEDED if the peer cannot be reached). The
  // gRPC status of the peer's refusal, or UNAVAILABLE while calls to it are held.
  template <typename Reply>
  absl::StatusOr<Reply> Call(absl::string_view node, absl::string_view method,
                             const google::protobuf::Message& request,
                             absl::Duration timeout) {
    absl::StatusOr<std::shared_ptr<client::AgentClient>> client = ClientFor(node);
    if (!client.ok()) return client.status();
    absl::StatusOr<Reply> reply = (*client)->template Call<Reply>(method, request, timeout);
    Record(node, reply.status());
    return reply;
  }

  // Call without blocking a thread (AgentClient::CallAsync): held or refused like
  // Call, its outcome recorded like a call's, then given to `on_done`, once. The
  // Peers must outlive the call.
  template <typename Reply>
  void CallAsync(absl::string_view node, absl::string_view method,
                 const google::protobuf::Message& request, absl::Duration timeout,
                 std::function<void(absl::StatusOr<Reply>)> on_done) {
    absl::StatusOr<std::shared_ptr<client::AgentClient>> client = ClientFor(node);
    if (!client.ok()) {
      on_done(client.status());
      return;
    }
    client::AgentClient& agent = **client;
    agent.template CallAsync<Reply>(
        method, request, timeout,
        // The client travels with the call: a reconfiguration may drop it meanwhile.
        [this, node = std::string(node), client = *std::move(client),
         on_done = std::move(on_done)](absl::StatusOr<Reply> reply) {
          Record(node, reply.status());
          on_done(std::move(reply));
        });
  }

  // Opens a server stream to `node`'s daemon (AgentClient::Stream): held or
  // refused like Call, and its outcome (an error at once, or on_done's status)
  // recorded like a call's. The Peers must outlive the call.
  template <typename Reply>
  absl::StatusOr<std::unique_ptr<client::StreamCall>> Stream(
      absl::string_view node, absl::string_view method,
      const google::protobuf::Message& request, std::function<void(const Reply&)> on_reply,
      std::function<void(absl::Status)> on_done,
      client::AgentClient::StreamOptions options = client::AgentClient::StreamOptions()) {
    absl::StatusOr<std::shared_ptr<client::AgentClient>> client = ClientFor(node);
    if (!client.ok()) return client.status();
    absl::StatusOr<std::unique_ptr<client::StreamCall>> call =
        (*client)->template Stream<Reply>(
            method, request, std::move(on_reply),
            [this, node = std::string(node), on_done = std::move(on_done)](absl::Status status) {
              Record(node, status);
              if (on_done) on_done(std::move(status));
            },
            std::move(options));
    if (!call.ok()) Record(node, call.status());
    return call;
  }

  // Addresses ("host:port") that other members' views give for nodes, used for
  // those that this node's node.conf has no address for: a membership change
  // reaches a member it has just heard of, or one that it has just removed (to
  // release its lock), before or after node.conf says so.
  void LearnAddresses(const std::map<std::string, std::string>& addresses);

  // Where `node` is called: "host:port". Empty before SetConfig.
  std::string TargetOf(absl::string_view node) const;

  // The peer's refusals in a row, as counted here.
  int RefusalsInARow(absl::string_view node) const;

  // Lets go of the peer's client and of its target's channel: a channel to a
  // peer that is down keeps reconnecting (every `max_reconnect_backoff`), which
  // is wasted on a peer that is not called for a while. Calls in flight keep
  // theirs; the next call makes new ones. Its refusal count stays.
  void Disconnect(absl::string_view node);

 private:
  struct Peer {
    std::shared_ptr<client::AgentClient> client;  // null: made at the next call
    int refusals_in_a_row = 0;
    absl::Time held_until = absl::InfinitePast();
    absl::Duration next_hold;
    std::string last_refusal;  // the peer's message, for the held call's error
  };

  absl::Time Now() const;
  absl::StatusOr<std::shared_ptr<client::AgentClient>> ClientFor(absl::string_view node);
  void Record(absl::string_view node, const absl::Status& status);
  std::shared_ptr<grpc::Channel> ChannelLocked(const std::string& target)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::string TargetLocked(absl::string_view node) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const Options options_;
  mutable sync::Mutex mutex_;
  std::optional<config::NodeConfig> config_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, Peer, std::less<>> peers_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::string, std::less<>> learned_ ABSL_GUARDED_BY(mutex_);
  // By target: peers at one address share it; kept while a peer uses it.
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::cluster

#endif  // OMD_CLUSTER_PEERS_H_

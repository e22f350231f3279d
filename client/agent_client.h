// A client of the omd.v1.Agent service: seals each request, calls it with a
// deadline, and authenticates the reply (sealed by a cluster member, answering
// this very request).
//
//   AgentClient::Options options;
//   options.target = "127.0.0.1:1214";
//   options.envelope = config::EnvelopeOptionsFor(node_config);
//   options.reply_senders = {"node1", "node2"};
//   auto client = AgentClient::Create(std::move(options)).value();
//   absl::StatusOr<v1::BlacklistStatusReply> reply =
//       client->Call<v1::BlacklistStatusReply>("BlacklistStatus",
//                                              v1::BlacklistStatusRequest());
//
// One salt per client: the server derives its key once for the whole connection.
//
// Every request names its recipient, so that it cannot be replayed to another
// node. A client that knows the daemon only by its address (no `recipient`) first
// calls Identify, the one method that may go to any node, and binds every later
// request to the node that answered; a reply from any other node is refused.
//
// A joiner (om daemon join) seals with crypto::JoinerEnvelopeOptions and sets
// `any_reply_sender`: it has no cluster.nodes yet, and only a holder of the
// secret could seal the reply. daemon_cluster() is then the cluster it reached.
#ifndef OMD_CLIENT_AGENT_CLIENT_H_
#define OMD_CLIENT_AGENT_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "crypto/envelope.h"
#include "google/protobuf/message.h"
#include "sync/mutex.h"

namespace omd::client {

class AgentClient {
 public:
  struct Options {
    std::string target;  // "host:port"; ignored when `channel` is set
    std::shared_ptr<grpc::Channel> channel;
    crypto::EnvelopeOptions envelope;  // this node, its cluster and secrets
    // The daemon's node name, bound into each request so that it cannot be
    // replayed to another node; empty: learned with Identify at the first call.
    std::string recipient;
    // Node names whose sealed replies are accepted: the cluster's members.
    absl::flat_hash_set<std::string> reply_senders;
    // A joiner's client: a reply sealed by any valid node name is accepted.
    bool any_reply_sender = false;
    absl::Duration timeout = absl::Seconds(15);  // deadline of every unary call
    // Delay before the channel reconnects after a failed connection; zero: gRPC's
    // default (1 s). The pending reconnection timer keeps gRPC's library alive
    // after the channel is destroyed, which a short-lived process waits for
    // (client/om_main.cc). Ignored when `channel` is set.
    absl::Duration initial_reconnect_backoff = absl::ZeroDuration();
    // Calls wait, within their deadline, for the channel to connect, rather than
    // fail at once while it waits out a reconnection backoff: for daemons, whose
    // peers restart, and whose calls have short deadlines.
    bool wait_for_ready = false;
  };

  static absl::StatusOr<std::unique_ptr<AgentClient>> Create(Options options);

  // The node whose daemon answers, once known (given, or learned by a call).
  std::string daemon_node() const;
  // The cluster named by the last authentic reply; empty before one.
  std::string daemon_cluster() const;

  // Calls omd.v1.Agent/`method_name`, whose `carries` option must name the types of
  // `request` and Reply.
  template <typename Reply>
  absl::StatusOr<Reply> Call(absl::string_view method_name,
                             const google::protobuf::Message& request) {
    return Call<Reply>(method_name, request, options_.timeout);
  }

  // The same, with a deadline of its own.
  template <typename Reply>
  absl::StatusOr<Reply> Call(absl::string_view method_name,
                             const google::protobuf::Message& request,
                             absl::Duration timeout) {
    absl::StatusOr<std::string> payload =
        CallRaw(method_name, request, Reply::descriptor()->full_name(), timeout);
    if (!payload.ok()) return payload.status();
    Reply reply;
    if (!reply.ParseFromString(*payload)) {
      return absl::DataLossError(absl::StrCat("reply of ", method_name, " is not a ",
                                              Reply::descriptor()->full_name()));
    }
    return reply;
  }

 private:
  explicit AgentClient(Options options);

  absl::StatusOr<std::string> CallRaw(absl::string_view method_name,
                                      const google::protobuf::Message& request,
                                      absl::string_view reply_type, absl::Duration timeout);

  // Calls Identify if the recipient is not known yet.
  absl::Status BindRecipient(absl::Duration timeout);

  const Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  crypto::EnvelopeCodec codec_;
  const std::string salt_;
  mutable sync::Mutex mutex_;
  std::string recipient_ ABSL_GUARDED_BY(mutex_);
  std::string cluster_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::client

#endif  // OMD_CLIENT_AGENT_CLIENT_H_

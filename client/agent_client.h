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
// A server-streaming method is read with the callback API (no thread per call);
// each reply is authenticated like a unary one, and must carry the next
// sequence number (docs/PROTOCOL.md, section 5):
//
//   AgentClient::StreamOptions options;
//   options.timeout = absl::InfiniteDuration();  // a follow
//   absl::StatusOr<std::unique_ptr<StreamCall>> call =
//       client->Stream<v1::ServiceLogsReply>("ServiceLogs", request,
//           [](const v1::ServiceLogsReply& reply) { ... },
//           [](absl::Status status) { ... }, options);
//   ...
//   (*call)->Cancel();  // or destroy it: it cancels and waits for on_done
//
// A joiner (om daemon join) seals with crypto::JoinerEnvelopeOptions and sets
// `any_reply_sender`: it has no cluster.nodes yet, and only a holder of the
// secret could seal the reply. daemon_cluster() is then the cluster it reached.
#ifndef OMD_CLIENT_AGENT_CLIENT_H_
#define OMD_CLIENT_AGENT_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
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

// One server-streaming call in progress (AgentClient::Stream). It keeps what it
// needs alive (the channel and the client's codec): it may outlive its client.
class StreamCall {
 public:
  class Reactor;  // client/agent_client.cc
  explicit StreamCall(std::unique_ptr<Reactor> reactor);
  // Cancels the call if it is still on, and waits until on_done has run: never
  // destroy it from its own on_message or on_done.
  ~StreamCall();

  StreamCall(const StreamCall&) = delete;
  StreamCall& operator=(const StreamCall&) = delete;

  // Asks gRPC to end the call now (on_done then gets CANCELLED). Idempotent.
  void Cancel();
  // Whether on_done has run.
  bool done() const;

 private:
  std::unique_ptr<Reactor> reactor_;
};

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

  struct StreamOptions {
    // The whole call's deadline; InfiniteDuration(): none (a follow).
    absl::Duration timeout = absl::InfiniteDuration();
    // Each reply's payload, once authenticated and in sequence; the next one is
    // read only after it returns. On gRPC's thread: it must not block for long.
    std::function<void(std::string payload)> on_message;
    // Exactly once: OK at the stream's end, the daemon's status, CANCELLED after
    // Cancel, or UNAUTHENTICATED (the call cancelled) for a reply that fails a
    // check.
    std::function<void(absl::Status)> on_done;
  };

  // Calls the server-streaming omd.v1.Agent/`method_name` (its `carries` must name
  // the request's type and `reply_type`). Only to a known node: without a
  // recipient, FAILED_PRECONDITION (no Identify first).
  absl::StatusOr<std::unique_ptr<StreamCall>> Stream(absl::string_view method_name,
                                                     const google::protobuf::Message& request,
                                                     absl::string_view reply_type,
                                                     StreamOptions options);

  // The same with each reply parsed as a Reply; one that does not parse ends the
  // call (DATA_LOSS).
  template <typename Reply>
  absl::StatusOr<std::unique_ptr<StreamCall>> Stream(
      absl::string_view method_name, const google::protobuf::Message& request,
      std::function<void(const Reply&)> on_reply, std::function<void(absl::Status)> on_done,
      StreamOptions options = StreamOptions()) {
    options.on_done = std::move(on_done);
    return StreamRaw(
        method_name, request, Reply::descriptor()->full_name(), std::move(options),
        [method = std::string(method_name),
         on_reply = std::move(on_reply)](std::string payload) -> absl::Status {
          Reply reply;
          if (!reply.ParseFromString(payload)) {
            return absl::DataLossError(absl::StrCat("reply of ", method, " is not a ",
                                                    Reply::descriptor()->full_name()));
          }
          on_reply(reply);
          return absl::OkStatus();
        });
  }

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
    return ParseReply<Reply>(method_name, CallRaw(method_name, request,
                                                  Reply::descriptor()->full_name(), timeout));
  }

  // The same without blocking a thread for the call: `on_done` runs once, with
  // the checked reply or the error, on a gRPC thread (or at once, for an error
  // found before sending). The client must outlive the call. A recipient still
  // to learn is learned first, with a blocking Identify.
  template <typename Reply>
  void CallAsync(absl::string_view method_name, const google::protobuf::Message& request,
                 absl::Duration timeout, std::function<void(absl::StatusOr<Reply>)> on_done) {
    CallRawAsync(method_name, request, Reply::descriptor()->full_name(), timeout,
                 [method = std::string(method_name),
                  on_done = std::move(on_done)](absl::StatusOr<std::string> payload) {
                   on_done(ParseReply<Reply>(method, std::move(payload)));
                 });
  }

 private:
  explicit AgentClient(Options options);

  template <typename Reply>
  static absl::StatusOr<Reply> ParseReply(absl::string_view method_name,
                                          absl::StatusOr<std::string> payload) {
    if (!payload.ok()) return payload.status();
    Reply reply;
    if (!reply.ParseFromString(*payload)) {
      return absl::DataLossError(absl::StrCat("reply of ", method_name, " is not a ",
                                              Reply::descriptor()->full_name()));
    }
    return reply;
  }

  // A unary call from its sealed request to its reply (agent_client.cc).
  struct PendingCall;
  absl::StatusOr<std::unique_ptr<PendingCall>> StartCall(absl::string_view method_name,
                                                         const google::protobuf::Message& request,
                                                         absl::string_view reply_type,
                                                         absl::Duration timeout);
  // The reply's payload, once it is checked to answer the call.
  absl::StatusOr<std::string> FinishCall(PendingCall& call);

  absl::StatusOr<std::string> CallRaw(absl::string_view method_name,
                                      const google::protobuf::Message& request,
                                      absl::string_view reply_type, absl::Duration timeout);
  void CallRawAsync(absl::string_view method_name, const google::protobuf::Message& request,
                    absl::string_view reply_type, absl::Duration timeout,
                    std::function<void(absl::StatusOr<std::string>)> on_done);

  // Stream's body: `handle` takes each checked payload; an error ends the call.
  absl::StatusOr<std::unique_ptr<StreamCall>> StreamRaw(
      absl::string_view method_name, const google::protobuf::Message& request,
      absl::string_view reply_type, StreamOptions options,
      std::function<absl::Status(std::string)> handle);

  // Calls Identify if the recipient is not known yet.
  absl::Status BindRecipient(absl::Duration timeout);

  const Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  // Shared with the streams in progress, which may outlive the client.
  const std::shared_ptr<const crypto::EnvelopeCodec> codec_;
  const std::string salt_;
  mutable sync::Mutex mutex_;
  std::string recipient_ ABSL_GUARDED_BY(mutex_);
  std::string cluster_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::client

#endif  // OMD_CLIENT_AGENT_CLIENT_H_

#include "client/agent_client.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>

#include <grpcpp/support/client_callback.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "config/names.h"
#include "proto/omd.pb.h"
#include "rpc/agent_methods.h"
#include "rpc/status.h"
#include "sync/mutex.h"

namespace omd::client {
namespace {

// The method a request for any node may call: it tells who answers.
constexpr absl::string_view kIdentify = "Identify";

std::shared_ptr<grpc::Channel> NewChannel(const AgentClient::Options& options) {
  grpc::ChannelArguments arguments;
  // Matches the daemon's keepalive policy (daemon/daemon.cc), for long streams.
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  arguments.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  if (options.initial_reconnect_backoff > absl::ZeroDuration()) {
    arguments.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                     static_cast<int>(absl::ToInt64Milliseconds(
                         std::min(options.initial_reconnect_backoff, absl::Hours(1)))));
  }
  return grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(),
                                   arguments);
}

// What a stream's reply must be, beyond its tag (docs/PROTOCOL.md, section 5).
struct StreamExpectations {
  std::string path;
  std::string recipient;  // the bound node: the only sender accepted
  std::string salt;
  uint32_t key_generation = 0;
  std::string request_id;
};

}  // namespace

// One stream's reading: each reply read only after the previous one is handled.
class StreamCall::Reactor final : public grpc::ClientReadReactor<v1::Envelope> {
 public:
  Reactor(std::shared_ptr<grpc::Channel> channel,
          std::shared_ptr<const crypto::EnvelopeCodec> codec, StreamExpectations expected,
          std::function<absl::Status(std::string)> handle,
          std::function<void(absl::Status)> on_done)
      : channel_(std::move(channel)),
        codec_(std::move(codec)),
        expected_(std::move(expected)),
        handle_(std::move(handle)),
        on_done_(std::move(on_done)) {}

  void Begin(const v1::Envelope& request, absl::Duration timeout, bool wait_for_ready) {
    request_ = request;
    if (timeout != absl::InfiniteDuration()) {
      context_.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    }
    context_.set_wait_for_ready(wait_for_ready);
    grpc::internal::ClientCallbackReaderFactory<v1::Envelope>::Create<v1::Envelope>(
        channel_.get(),
        grpc::internal::RpcMethod(expected_.path.c_str(),
                                  grpc::internal::RpcMethod::SERVER_STREAMING),
        &context_, &request_, this);
    StartRead(&reply_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream ended: OnDone has its status
    absl::Status checked;
    {
      // gRPC serializes the reactions, through code TSan cannot see: the lock
      // shows the order of successive replies' checks.
      sync::MutexLock lock(&read_mutex_);
      checked = Check();
    }
    if (checked.ok()) {
      if (!Cancelled()) StartRead(&reply_);
      return;
    }
    {
      sync::MutexLock lock(&mutex_);
      if (error_.ok()) error_ = checked;
    }
    context_.TryCancel();
  }

  void OnDone(const grpc::Status& status) override {
    absl::Status outcome = rpc::FromGrpcStatus(status);
    {
      sync::MutexLock lock(&mutex_);
      if (!error_.ok()) {
        outcome = error_;
      } else if (cancelled_) {
        outcome = absl::CancelledError("the stream was cancelled");
      }
    }
    if (on_done_) on_done_(outcome);
    // The owner may destroy this reactor as soon as it sees done: the signal,
    // shared, outlives the unlock (which wakes the waiter) here.
    std::shared_ptr<DoneSignal> signal = signal_;
    sync::MutexLock lock(&signal->mutex);
    signal->done = true;
  }

  void Cancel() {
    if (done()) return;
    {
      sync::MutexLock lock(&mutex_);
      if (cancelled_) return;
      cancelled_ = true;
    }
    context_.TryCancel();
  }

  bool Cancelled() const {
    sync::MutexLock lock(&mutex_);
    return cancelled_;
  }

  bool done() const {
    sync::MutexLock lock(&signal_->mutex);
    return signal_->done;
  }

  void WaitDone() {
    std::shared_ptr<DoneSignal> signal = signal_;
    sync::MutexLock lock(&signal->mutex);
    signal->mutex.Await(
        [&signal]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(signal->mutex) { return signal->done; });
  }

 private:
  // Section 5's checks, and the sequence; then the payload to its handler.
  absl::Status Check() ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mutex_) {
    if (reply_.salt() != expected_.salt || reply_.key_generation() != expected_.key_generation) {
      return absl::UnauthenticatedError("stream reply is not sealed with this request's key");
    }
    absl::StatusOr<crypto::OpenedEnvelope> opened =
        codec_->Open(crypto::Direction::kReply, expected_.path, reply_);
    if (opened.ok()) {
      absl::Status fresh = codec_->CheckSendTime(opened->sent_at);
      if (!fresh.ok()) opened = fresh;
    }
    if (!opened.ok()) {
      return absl::UnauthenticatedError(
          absl::StrCat("stream reply is not authentic: ", opened.status().message()));
    }
    if (opened->in_reply_to != expected_.request_id) {
      return absl::UnauthenticatedError("stream reply does not answer this request");
    }
    if (opened->nodename != expected_.recipient) {
      return absl::UnauthenticatedError(absl::StrCat("stream reply sealed by ",
                                                     opened->nodename, ", not by ",
                                                     expected_.recipient));
    }
    if (opened->sequence != sequence_ + 1) {
      return absl::UnauthenticatedError(absl::StrCat(
          "stream reply ", opened->sequence, " where ", sequence_ + 1, " was due"));
    }
    ++sequence_;
    return handle_(std::move(opened->payload));
  }

  const std::shared_ptr<grpc::Channel> channel_;
  const std::shared_ptr<const crypto::EnvelopeCodec> codec_;
  const StreamExpectations expected_;
  const std::function<absl::Status(std::string)> handle_;
  const std::function<void(absl::Status)> on_done_;
  grpc::ClientContext context_;
  v1::Envelope request_;
  v1::Envelope reply_;   // one read at a time
  sync::Mutex read_mutex_;
  uint64_t sequence_ ABSL_GUARDED_BY(read_mutex_) = 0;  // of the last reply handled
  mutable sync::Mutex mutex_;
  absl::Status error_ ABSL_GUARDED_BY(mutex_);
  bool cancelled_ ABSL_GUARDED_BY(mutex_) = false;
  struct DoneSignal {
    sync::Mutex mutex;
    bool done ABSL_GUARDED_BY(mutex) = false;
  };
  const std::shared_ptr<DoneSignal> signal_ = std::make_shared<DoneSignal>();
};

StreamCall::StreamCall(std::unique_ptr<Reactor> reactor) : reactor_(std::move(reactor)) {}

StreamCall::~StreamCall() {
  reactor_->Cancel();
  reactor_->WaitDone();
}

void StreamCall::Cancel() { reactor_->Cancel(); }

bool StreamCall::done() const { return reactor_->done(); }

absl::StatusOr<std::unique_ptr<StreamCall>> AgentClient::Stream(
    absl::string_view method_name, const google::protobuf::Message& request,
    absl::string_view reply_type, StreamOptions options) {
  std::function<void(std::string)> on_message = std::move(options.on_message);
  return StreamRaw(method_name, request, reply_type, std::move(options),
                   [on_message = std::move(on_message)](std::string payload) {
                     if (on_message) on_message(std::move(payload));
                     return absl::OkStatus();
                   });
}

absl::StatusOr<std::unique_ptr<StreamCall>> AgentClient::StreamRaw(
    absl::string_view method_name, const google::protobuf::Message& request,
    absl::string_view reply_type, StreamOptions options,
    std::function<absl::Status(std::string)> handle) {
  absl::StatusOr<const google::protobuf::MethodDescriptor*> method =
      rpc::FindServerStreamMethod(method_name, request.GetDescriptor()->full_name(),
                                  reply_type);
  if (!method.ok()) return method.status();
  StreamExpectations expected;
  expected.path = rpc::MethodPath(**method);
  expected.recipient = daemon_node();
  if (expected.recipient.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(method_name, ": a stream goes to a known node; this client has none"));
  }
  if (!options_.any_reply_sender && !options_.reply_senders.contains(expected.recipient)) {
    return absl::FailedPreconditionError(
        absl::StrCat(method_name, ": ", expected.recipient, " is not a cluster member"));
  }
  absl::StatusOr<v1::Envelope> sealed =
      codec_->Seal(crypto::Direction::kRequest, expected.path, expected.recipient, salt_,
                   request.SerializeAsString(), &expected.request_id);
  if (!sealed.ok()) return sealed.status();
  expected.salt = sealed->salt();
  expected.key_generation = sealed->key_generation();
  auto reactor = std::make_unique<StreamCall::Reactor>(
      channel_, codec_, std::move(expected), std::move(handle), std::move(options.on_done));
  StreamCall::Reactor* started = reactor.get();
  auto call = std::make_unique<StreamCall>(std::move(reactor));
  started->Begin(*sealed, options.timeout, options_.wait_for_ready);
  return call;
}

AgentClient::AgentClient(Options options)
    : options_(std::move(options)),
      channel_(options_.channel != nullptr ? options_.channel : NewChannel(options_)),
      codec_(std::make_shared<const crypto::EnvelopeCodec>(options_.envelope)),
      salt_(crypto::EnvelopeCodec::NewSalt()),
      recipient_(options_.recipient) {}

std::string AgentClient::daemon_node() const {
  sync::MutexLock lock(&mutex_);
  return recipient_;
}

std::string AgentClient::daemon_cluster() const {
  sync::MutexLock lock(&mutex_);
  return cluster_;
}

absl::Status AgentClient::BindRecipient(absl::Duration timeout) {
  if (!daemon_node().empty()) return absl::OkStatus();
  return CallRaw(kIdentify, v1::IdentifyRequest(), v1::IdentifyReply::descriptor()->full_name(),
                 timeout)
      .status();
}

absl::StatusOr<std::unique_ptr<AgentClient>> AgentClient::Create(Options options) {
  if (options.channel == nullptr && options.target.empty()) {
    return absl::InvalidArgumentError("no daemon address to connect to");
  }
  if (options.envelope.secrets.empty()) {
    return absl::InvalidArgumentError("no cluster secret to seal requests with");
  }
  return std::unique_ptr<AgentClient>(new AgentClient(std::move(options)));
}

struct AgentClient::PendingCall {
  std::string path;
  grpc::internal::RpcMethod method;
  std::string recipient;
  std::string request_id;
  v1::Envelope sealed;
  v1::Envelope reply;
  grpc::ClientContext context;

  explicit PendingCall(std::string method_path)
      : path(std::move(method_path)),
        method(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC) {}
};

absl::StatusOr<std::unique_ptr<AgentClient::PendingCall>> AgentClient::StartCall(
    absl::string_view method_name, const google::protobuf::Message& request,
    absl::string_view reply_type, absl::Duration timeout) {
  absl::StatusOr<const google::protobuf::MethodDescriptor*> method =
      rpc::FindUnaryMethod(method_name, request.GetDescriptor()->full_name(), reply_type);
  if (!method.ok()) return method.status();
  if (method_name != kIdentify) {
    absl::Status bound = BindRecipient(timeout);
    if (!bound.ok()) return bound;
  }
  auto call = std::make_unique<PendingCall>(rpc::MethodPath(**method));
  call->recipient = daemon_node();
  absl::StatusOr<v1::Envelope> sealed =
      codec_->Seal(crypto::Direction::kRequest, call->path, call->recipient, salt_,
                   request.SerializeAsString(), &call->request_id);
  if (!sealed.ok()) return sealed.status();
  call->sealed = *std::move(sealed);
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  call->context.set_wait_for_ready(options_.wait_for_ready);
  return call;
}

absl::StatusOr<std::string> AgentClient::CallRaw(absl::string_view method_name,
                                                 const google::protobuf::Message& request,
                                                 absl::string_view reply_type,
                                                 absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<PendingCall>> call =
      StartCall(method_name, request, reply_type, timeout);
  if (!call.ok()) return call.status();
  // What the generated stub does for a unary method, with the path chosen at run
  // time; the typed message travels inside the envelope.
  grpc::Status status = grpc::internal::BlockingUnaryCall<v1::Envelope, v1::Envelope>(
      channel_.get(), (*call)->method, &(*call)->context, (*call)->sealed, &(*call)->reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  return FinishCall(**call);
}

void AgentClient::CallRawAsync(absl::string_view method_name,
                               const google::protobuf::Message& request,
                               absl::string_view reply_type, absl::Duration timeout,
                               std::function<void(absl::StatusOr<std::string>)> on_done) {
  absl::StatusOr<std::unique_ptr<PendingCall>> started =
      StartCall(method_name, request, reply_type, timeout);
  if (!started.ok()) {
    on_done(started.status());
    return;
  }
  PendingCall* call = started->release();  // owned by the completion below
  grpc::internal::CallbackUnaryCall<v1::Envelope, v1::Envelope>(
      channel_.get(), call->method, &call->context, &call->sealed, &call->reply,
      [this, call, on_done = std::move(on_done)](grpc::Status status) {
        absl::StatusOr<std::string> result;
        {
          std::unique_ptr<PendingCall> owned(call);
          result = status.ok() ? FinishCall(*owned) : rpc::FromGrpcStatus(status);
        }
        // The call's context, and the reference on the channel it holds, are
        // gone before on_done: a caller that then drops the client drops the
        // channel itself. Else the channel's last reference went here, on
        // gRPC's thread, whose teardown raced the process's exit (TSan: a
        // callback thread left unjoined).
        on_done(std::move(result));
      });
}

absl::StatusOr<std::string> AgentClient::FinishCall(PendingCall& call) {
  const v1::Envelope& reply = call.reply;
  const std::string& recipient = call.recipient;
  if (reply.salt() != call.sealed.salt() ||
      reply.key_generation() != call.sealed.key_generation()) {
    return absl::UnauthenticatedError("reply is not sealed with this request's key");
  }
  absl::StatusOr<crypto::OpenedEnvelope> opened =
      codec_->Open(crypto::Direction::kReply, call.path, reply);
  if (opened.ok()) {
    absl::Status fresh = codec_->CheckSendTime(opened->sent_at);
    if (!fresh.ok()) opened = fresh;
  }
  if (!opened.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("reply is not authentic: ", opened.status().message()));
  }
  if (opened->in_reply_to != call.request_id) {
    return absl::UnauthenticatedError("reply does not answer this request");
  }
  if (opened->sequence != 0) {
    return absl::UnauthenticatedError("a unary reply numbered as a stream's");
  }
  // A joiner trusts any valid name: only a holder of the secret sealed this.
  const bool trusted = options_.any_reply_sender ? config::IsValidName(opened->nodename)
                                                 : options_.reply_senders.contains(opened->nodename);
  if (!trusted) {
    return absl::UnauthenticatedError(
        absl::StrCat("reply sealed by ", opened->nodename, ", not a cluster member"));
  }
  if (!recipient.empty() && opened->nodename != recipient) {
    return absl::UnauthenticatedError(
        absl::StrCat("reply sealed by ", opened->nodename, ", not by ", recipient));
  }
  {
    sync::MutexLock lock(&mutex_);
    if (recipient.empty()) recipient_ = opened->nodename;
    cluster_ = opened->cluster;
  }
  return std::move(opened->payload);
}

}  // namespace omd::client

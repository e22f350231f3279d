#include "client/agent_client.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "config/names.h"
#include "proto/omd.pb.h"
#include "rpc/agent_methods.h"
#include "rpc/status.h"

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

}  // namespace

AgentClient::AgentClient(Options options)
    : options_(std::move(options)),
      channel_(options_.channel != nullptr ? options_.channel : NewChannel(options_)),
      codec_(options_.envelope),
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

absl::StatusOr<std::string> AgentClient::CallRaw(absl::string_view method_name,
                                                 const google::protobuf::Message& request,
                                                 absl::string_view reply_type,
                                                 absl::Duration timeout) {
  absl::StatusOr<const google::protobuf::MethodDescriptor*> method =
      rpc::FindUnaryMethod(method_name, request.GetDescriptor()->full_name(), reply_type);
  if (!method.ok()) return method.status();
  const std::string path = rpc::MethodPath(**method);
  if (method_name != kIdentify) {
    absl::Status bound = BindRecipient(timeout);
    if (!bound.ok()) return bound;
  }
  const std::string recipient = daemon_node();

  std::string request_id;
  absl::StatusOr<v1::Envelope> sealed = codec_.Seal(
      crypto::Direction::kRequest, path, recipient, salt_, request.SerializeAsString(),
      &request_id);
  if (!sealed.ok()) return sealed.status();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context.set_wait_for_ready(options_.wait_for_ready);
  v1::Envelope reply;
  // What the generated stub does for a unary method, with the path chosen at run
  // time; the typed message travels inside the envelope.
  grpc::Status status = grpc::internal::BlockingUnaryCall<v1::Envelope, v1::Envelope>(
      channel_.get(),
      grpc::internal::RpcMethod(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC),
      &context, *sealed, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);

  if (reply.salt() != sealed->salt() ||
      reply.key_generation() != sealed->key_generation()) {
    return absl::UnauthenticatedError("reply is not sealed with this request's key");
  }
  absl::StatusOr<crypto::OpenedEnvelope> opened =
      codec_.Open(crypto::Direction::kReply, path, reply);
  if (opened.ok()) {
    absl::Status fresh = codec_.CheckSendTime(opened->sent_at);
    if (!fresh.ok()) opened = fresh;
  }
  if (!opened.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("reply is not authentic: ", opened.status().message()));
  }
  if (opened->in_reply_to != request_id) {
    return absl::UnauthenticatedError("reply does not answer this request");
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

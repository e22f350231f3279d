#include "server/agent_service.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/codegen/server_callback_handlers.h>
#include <grpcpp/impl/rpc_service_method.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "rpc/agent_methods.h"
#include "proto/omd.pb.h"
#include "rpc/status.h"

namespace omd::server {
namespace {

grpc::Status Unimplemented(absl::string_view method_name) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      absl::StrCat(method_name, " is not implemented by this daemon yet"));
}

// A call whose stream ended before its message (reset, cut off, deadline): there
// is nothing to judge, so nothing reaches the gate or counts against anyone. A
// message of zero bytes is a message, and goes to the gate.
grpc::Status NoMessage() {
  return grpc::Status(grpc::StatusCode::CANCELLED, "the call ended before its request");
}

// The call's deadline; none (gRPC's infinite future) is absl's.
absl::Time CallDeadline(const grpc::CallbackServerContext& context) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// A server-streaming call refused before any stream: by the gate, or for want of a
// handler.
class GatedWriteReactor : public grpc::ServerWriteReactor<v1::Envelope> {
 public:
  explicit GatedWriteReactor(grpc::Status status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

AgentService::AgentService(Gate* gate, std::atomic<int64_t>* dispatched_calls,
                           std::atomic<int64_t>* open_streams)
    : gate_(gate), dispatched_calls_(dispatched_calls), open_streams_(open_streams) {}

absl::StatusOr<std::unique_ptr<AgentService>> AgentService::Create(
    Gate* gate, const HandlerRegistry* handlers, std::atomic<int64_t>* dispatched_calls,
    std::atomic<int64_t>* open_streams) {
  std::unique_ptr<AgentService> service(
      new AgentService(gate, dispatched_calls, open_streams));
  const google::protobuf::ServiceDescriptor& descriptor = rpc::AgentService();
  for (int i = 0; i < descriptor.method_count(); ++i) {
    const google::protobuf::MethodDescriptor& rpc_method = *descriptor.method(i);
    if (rpc_method.client_streaming()) {
      return absl::FailedPreconditionError(
          absl::StrCat(rpc_method.full_name(), ": client streaming is not supported by the gate"));
    }
    Method& method = service->methods_.emplace_back();
    method.path = rpc::MethodPath(rpc_method);
    method.name = rpc_method.name();
    const v1::Access& access = rpc_method.options().GetExtension(v1::access);
    method.access.non_members = access.non_members();
    method.access.any_recipient = access.any_recipient();
    method.unary_handler = handlers->FindUnary(rpc_method.name());
    method.stream_handler = handlers->FindServerStream(rpc_method.name());
    const auto type = rpc_method.server_streaming() ? grpc::internal::RpcMethod::SERVER_STREAMING
                                             : grpc::internal::RpcMethod::NORMAL_RPC;
    // What generated code does for a callback service, for every method alike.
    service->AddMethod(
        new grpc::internal::RpcServiceMethod(method.path.c_str(), type, nullptr));
    AgentService* self = service.get();
    if (rpc_method.server_streaming()) {
      service->MarkMethodCallback(
          i, new grpc::internal::CallbackServerStreamingHandler<grpc::ByteBuffer, v1::Envelope>(
                 [self, &method](grpc::CallbackServerContext* context,
                                 const grpc::ByteBuffer* request) {
                   return self->HandleServerStream(method, context, request);
                 }));
    } else {
      service->MarkMethodCallback(
          i, new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer, v1::Envelope>(
                 [self, &method](grpc::CallbackServerContext* context,
                                 const grpc::ByteBuffer* request, v1::Envelope* reply) {
                   return self->HandleUnary(method, context, request, reply);
                 }));
    }
  }
  return service;
}

grpc::ServerUnaryReactor* AgentService::HandleUnary(const Method& method,
                                                    grpc::CallbackServerContext* context,
                                                    const grpc::ByteBuffer* request,
                                                    v1::Envelope* reply) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (!request->Valid()) {
    reactor->Finish(NoMessage());
    return reactor;
  }
  absl::StatusOr<AdmittedRequest> admitted =
      gate_->Admit(method.path, method.access, context->peer(), *request);
  if (!admitted.ok()) {
    reactor->Finish(rpc::ToGrpcStatus(admitted.status()));
    return reactor;
  }
  dispatched_calls_->fetch_add(1, std::memory_order_relaxed);
  if (method.unary_handler == nullptr) {
    reactor->Finish(Unimplemented(method.name));
    return reactor;
  }
  // The reply may come later, from another thread (HandlerRegistry::AddUnaryAsync):
  // gRPC keeps `reply` and the reactor until Finish (and a server's shutdown waits
  // for it), and the admitted request, whose view seals the reply, and the path
  // travel with the responder.
  auto request_state = std::make_shared<AdmittedRequest>(*std::move(admitted));
  request_state->caller.deadline = CallDeadline(*context);
  const Caller& caller = request_state->caller;
  const std::string& payload = request_state->envelope.payload;
  (*method.unary_handler)(
      caller, payload,
      [gate = gate_, path = method.path, reactor, reply,
       request_state](absl::StatusOr<std::string> answer) {
        if (!answer.ok()) {
          reactor->Finish(rpc::ToGrpcStatus(answer.status()));
          return;
        }
        absl::StatusOr<v1::Envelope> sealed = gate->SealReply(*request_state, path, *answer);
        if (!sealed.ok()) {
          reactor->Finish(rpc::ToGrpcStatus(sealed.status()));
          return;
        }
        *reply = *std::move(sealed);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

grpc::ServerWriteReactor<v1::Envelope>* AgentService::HandleServerStream(
    const Method& method, grpc::CallbackServerContext* context,
    const grpc::ByteBuffer* request) {
  if (!request->Valid()) return new GatedWriteReactor(NoMessage());
  absl::StatusOr<AdmittedRequest> admitted =
      gate_->Admit(method.path, method.access, context->peer(), *request);
  if (!admitted.ok()) return new GatedWriteReactor(rpc::ToGrpcStatus(admitted.status()));
  dispatched_calls_->fetch_add(1, std::memory_order_relaxed);
  if (method.stream_handler == nullptr) return new GatedWriteReactor(Unimplemented(method.name));
  auto request_state = std::make_shared<AdmittedRequest>(*std::move(admitted));
  request_state->caller.deadline = CallDeadline(*context);
  StreamWriter::Started started = StreamWriter::Start(
      request_state, method.path, method.stream_handler->max_queued, &open_streams_);
  // A stopping server finished the stream already: no handler to call.
  if (started.refused) return started.reactor;
  method.stream_handler->handler(request_state->caller, request_state->envelope.payload,
                                 started.stream);
  return started.reactor;
}

void AgentService::FinishStreams(const absl::Status& status) {
  open_streams_.FinishAll(status);
}

}  // namespace omd::server

// The omd.v1.Agent service as gRPC serves it: built from the service descriptor,
// every method wired to the gate, then to its typed handler.
//
// Requests arrive as raw bytes (grpc::ByteBuffer), not as a parsed Envelope: bytes
// that do not parse must reach the gate too, to be counted against their source,
// rather than be refused by gRPC where nobody counts them.
//
// gRPC C++ interceptors cannot stop a handler (grpc/grpc#24017), so the gate is not
// an interceptor: this service has no per-method code at all. It walks
// omd.v1.Agent's descriptor and registers one callback handler per method, and each
// of them calls Gate::Admit before looking up the typed handler. A method without a
// typed handler answers UNIMPLEMENTED, also after the gate. The generated
// Agent::Service class, which would let a method bypass the gate, is never used.
//
//   HandlerRegistry handlers = ...;
//   std::atomic<int64_t> dispatched{0};
//   std::atomic<int64_t> open_streams{0};
//   auto service = AgentService::Create(&gate, &handlers, &dispatched, &open_streams).value();
//   builder.RegisterService(service.get());
//   ...
//   service->FinishStreams(absl::UnavailableError("the daemon is stopping"));
//   server->Shutdown();
//
// A server-streaming method is gated the same way; admitted, its handler gets a
// StreamWriter (server/stream_writer.h) over a reactor of gRPC's callback API.
#ifndef OMD_SERVER_AGENT_SERVICE_H_
#define OMD_SERVER_AGENT_SERVICE_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "proto/omd.pb.h"
#include "server/gate.h"
#include "server/handler_registry.h"
#include "server/server_stream.h"
#include "server/stream_writer.h"

namespace omd::server {

class AgentService final : public grpc::Service, public StreamingService {
 public:
  // Fails if the descriptor has a method kind the gate cannot front (client
  // streaming), so such a method can never be served ungated. `dispatched_calls`
  // counts the calls the gate admitted and passed on, to a handler or to
  // UNIMPLEMENTED: the proof, in tests, that refused calls reached neither. It is
  // shared by the services of successive gRPC servers (server/listener.h), and
  // so is `open_streams` (if not null): the server streams open now.
  static absl::StatusOr<std::unique_ptr<AgentService>> Create(
      Gate* gate, const HandlerRegistry* handlers, std::atomic<int64_t>* dispatched_calls,
      std::atomic<int64_t>* open_streams = nullptr);

  // StreamingService: ends this service's open streams with `status` (once
  // their queued replies are sent), and refuses new ones with it.
  void FinishStreams(const absl::Status& status) override;

 private:
  struct Method {
    std::string path;  // "/omd.v1.Agent/Name"; gRPC keeps a pointer to it
    std::string name;
    MethodAccess access;
    const HandlerRegistry::UnaryHandler* unary_handler = nullptr;
    const HandlerRegistry::ServerStreamHandler* stream_handler = nullptr;
  };

  AgentService(Gate* gate, std::atomic<int64_t>* dispatched_calls,
               std::atomic<int64_t>* open_streams);

  grpc::ServerUnaryReactor* HandleUnary(const Method& method,
                                        grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        v1::Envelope* reply);
  grpc::ServerWriteReactor<v1::Envelope>* HandleServerStream(
      const Method& method, grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request);

  Gate* const gate_;
  std::atomic<int64_t>* const dispatched_calls_;
  std::deque<Method> methods_;  // a deque: addresses stay put as it grows
  OpenStreams open_streams_;
};

}  // namespace omd::server

#endif  // OMD_SERVER_AGENT_SERVICE_H_

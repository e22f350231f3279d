// The omd.v1.Agent service as gRPC serves it: built from the service descriptor,
// every method wired to the gate, then to its typed handler.
//
// gRPC C++ interceptors cannot stop a handler (grpc/grpc#24017), so the gate is not
// an interceptor: this service has no per-method code at all. It walks
// omd.v1.Agent's descriptor and registers one callback handler per method, and each
// of them calls Gate::Admit before looking up the typed handler. A method without a
// typed handler answers UNIMPLEMENTED, also after the gate. The generated
// Agent::Service class, which would let a method bypass the gate, is never used.
//
//   HandlerRegistry handlers = ...;
//   auto service = AgentService::Create(&gate, &handlers).value();
//   builder.RegisterService(service.get());
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

namespace omd::server {

class AgentService final : public grpc::Service {
 public:
  // Fails if the descriptor has a method kind the gate cannot front (client
  // streaming), so such a method can never be served ungated.
  static absl::StatusOr<std::unique_ptr<AgentService>> Create(
      Gate* gate, const HandlerRegistry* handlers);

  // Calls the gate admitted and passed on, to a handler or to UNIMPLEMENTED: the
  // proof, in tests, that refused calls reached neither.
  int64_t dispatched_calls() const {
    return dispatched_calls_.load(std::memory_order_relaxed);
  }

 private:
  struct Method {
    std::string path;  // "/omd.v1.Agent/Name"; gRPC keeps a pointer to it
    std::string name;
    bool open_to_non_members = false;
    const HandlerRegistry::UnaryHandler* unary_handler = nullptr;
  };

  explicit AgentService(Gate* gate);

  grpc::ServerUnaryReactor* HandleUnary(const Method& method,
                                        grpc::CallbackServerContext* context,
                                        const v1::Envelope* request,
                                        v1::Envelope* reply);
  grpc::ServerWriteReactor<v1::Envelope>* HandleServerStream(
      const Method& method, grpc::CallbackServerContext* context,
      const v1::Envelope* request);

  Gate* const gate_;
  std::deque<Method> methods_;  // a deque: addresses stay put as it grows
  std::atomic<int64_t> dispatched_calls_{0};
};

}  // namespace omd::server

#endif  // OMD_SERVER_AGENT_SERVICE_H_

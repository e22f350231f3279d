// The typed handlers of the Agent service, by method name.
//
// A handler sees only what the gate admitted: the authenticated caller and the typed
// request. Registration checks the types against the method's `carries` option, so
// a handler cannot be wired to a method whose envelopes carry something else.
//
//   HandlerRegistry registry;
//   absl::Status added = registry.AddUnary<v1::BlacklistStatusRequest,
//                                          v1::BlacklistStatusReply>(
//       "BlacklistStatus", [&](const Caller& caller, const auto& request) { ... });
//
// A handler whose work must not hold one of gRPC's threads (a membership change
// calls every member) answers later, from any thread, through its responder:
//
//   registry.AddUnaryAsync<v1::JoinRequest, v1::JoinReply>(
//       "Join", [&](const Caller& caller, const v1::JoinRequest& request,
//                   HandlerRegistry::Responder<v1::JoinReply> respond) {
//         worker.Post([=] { respond(Work(caller, request)); });
//       });
//
// A server-streaming method's handler gets the stream (server/server_stream.h),
// which it may keep and write from any thread; it returns at once:
//
//   registry.AddServerStream<v1::ServiceLogsRequest, v1::ServiceLogsReply>(
//       "ServiceLogs", [&](const Caller& caller, const v1::ServiceLogsRequest& request,
//                          std::shared_ptr<ServerStream<v1::ServiceLogsReply>> stream) {
//         feed.Follow(request, stream);
//       });
//
// Fill it before building the service; it is read-only afterwards.
#ifndef OMD_SERVER_HANDLER_REGISTRY_H_
#define OMD_SERVER_HANDLER_REGISTRY_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "rpc/agent_methods.h"
#include "server/caller.h"
#include "server/server_stream.h"

namespace omd::server {

class HandlerRegistry {
 public:
  // Answers a call: exactly once, from any thread.
  template <typename Reply>
  using Responder = std::function<void(absl::StatusOr<Reply>)>;

  // Takes the request payload, and gives the serialized reply to `respond`.
  using UnaryHandler = std::function<void(const Caller&, absl::string_view payload,
                                          Responder<std::string> respond)>;

  template <typename Request, typename Reply>
  absl::Status AddUnary(
      absl::string_view method_name,
      std::function<absl::StatusOr<Reply>(const Caller&, const Request&)> handler) {
    return AddUnaryAsync<Request, Reply>(
        method_name, [handler = std::move(handler)](const Caller& caller,
                                                    const Request& request,
                                                    Responder<Reply> respond) {
          respond(handler(caller, request));
        });
  }

  template <typename Request, typename Reply>
  absl::Status AddUnaryAsync(
      absl::string_view method_name,
      std::function<void(const Caller&, const Request&, Responder<Reply>)> handler) {
    absl::Status carried = rpc::FindUnaryMethod(method_name,
                                                Request::descriptor()->full_name(),
                                                Reply::descriptor()->full_name())
                               .status();
    if (!carried.ok()) return carried;
    unary_[std::string(method_name)] = [handler = std::move(handler)](
                                           const Caller& caller, absl::string_view payload,
                                           Responder<std::string> respond) {
      Request request;
      if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        respond(absl::InvalidArgumentError(absl::StrCat(
            "request payload is not a valid ", Request::descriptor()->full_name())));
        return;
      }
      handler(caller, request,
              [respond = std::move(respond)](absl::StatusOr<Reply> reply) {
                if (!reply.ok()) {
                  respond(reply.status());
                } else {
                  respond(reply->SerializeAsString());
                }
              });
    };
    return absl::OkStatus();
  }

  // A server-streaming method's handler: the request payload and the stream.
  struct ServerStreamHandler {
    // Replies waiting in a stream beyond which Write refuses more.
    size_t max_queued = 64;
    std::function<void(const Caller&, absl::string_view payload,
                       std::shared_ptr<RawServerStream> stream)>
        handler;
  };

  // A request that does not parse ends the stream with INVALID_ARGUMENT before
  // `handler` sees it. `max_queued`: see ServerStream::Write.
  template <typename Request, typename Reply>
  absl::Status AddServerStream(
      absl::string_view method_name,
      std::function<void(const Caller&, const Request&, std::shared_ptr<ServerStream<Reply>>)>
          handler,
      size_t max_queued = 64) {
    absl::Status carried = rpc::FindServerStreamMethod(method_name,
                                                       Request::descriptor()->full_name(),
                                                       Reply::descriptor()->full_name())
                               .status();
    if (!carried.ok()) return carried;
    if (max_queued == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(method_name, ": a stream must queue at least one reply"));
    }
    ServerStreamHandler& entry = server_stream_[std::string(method_name)];
    entry.max_queued = max_queued;
    entry.handler = [handler = std::move(handler)](const Caller& caller,
                                                   absl::string_view payload,
                                                   std::shared_ptr<RawServerStream> raw) {
      Request request;
      if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        raw->Finish(absl::InvalidArgumentError(absl::StrCat(
            "request payload is not a valid ", Request::descriptor()->full_name())));
        return;
      }
      handler(caller, request, std::make_shared<ServerStream<Reply>>(std::move(raw)));
    };
    return absl::OkStatus();
  }

  // nullptr when the method has no handler (yet).
  const UnaryHandler* FindUnary(absl::string_view method_name) const;
  const ServerStreamHandler* FindServerStream(absl::string_view method_name) const;

 private:
  absl::flat_hash_map<std::string, UnaryHandler> unary_;
  absl::flat_hash_map<std::string, ServerStreamHandler> server_stream_;
};

}  // namespace omd::server

#endif  // OMD_SERVER_HANDLER_REGISTRY_H_

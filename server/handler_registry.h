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
// Fill it before building the service; it is read-only afterwards.
#ifndef OMD_SERVER_HANDLER_REGISTRY_H_
#define OMD_SERVER_HANDLER_REGISTRY_H_

#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "rpc/agent_methods.h"
#include "server/caller.h"

namespace omd::server {

class HandlerRegistry {
 public:
  // Takes the request payload, returns the serialized reply.
  using UnaryHandler =
      std::function<absl::StatusOr<std::string>(const Caller&, absl::string_view)>;

  template <typename Request, typename Reply>
  absl::Status AddUnary(
      absl::string_view method_name,
      std::function<absl::StatusOr<Reply>(const Caller&, const Request&)> handler) {
    absl::Status carried = rpc::FindUnaryMethod(method_name,
                                                Request::descriptor()->full_name(),
                                                Reply::descriptor()->full_name())
                               .status();
    if (!carried.ok()) return carried;
    unary_[std::string(method_name)] =
        [handler = std::move(handler)](
            const Caller& caller,
            absl::string_view payload) -> absl::StatusOr<std::string> {
      Request request;
      if (!request.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "request payload is not a valid ", Request::descriptor()->full_name()));
      }
      absl::StatusOr<Reply> reply = handler(caller, request);
      if (!reply.ok()) return reply.status();
      return reply->SerializeAsString();
    };
    return absl::OkStatus();
  }

  // nullptr when the method has no handler (yet).
  const UnaryHandler* FindUnary(absl::string_view method_name) const;

 private:
  absl::flat_hash_map<std::string, UnaryHandler> unary_;
};

}  // namespace omd::server

#endif  // OMD_SERVER_HANDLER_REGISTRY_H_

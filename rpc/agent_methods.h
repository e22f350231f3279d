// The omd.v1.Agent service as its descriptor describes it: its methods, their
// paths, and the typed messages their envelopes carry (the `carries` option).
//
//   const MethodDescriptor* method =
//       FindUnaryMethod("BlacklistStatus", "omd.v1.BlacklistStatusRequest",
//                       "omd.v1.BlacklistStatusReply").value();
//   std::string path = MethodPath(*method);  // "/omd.v1.Agent/BlacklistStatus"
#ifndef OMD_RPC_AGENT_METHODS_H_
#define OMD_RPC_AGENT_METHODS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace omd::rpc {

const google::protobuf::ServiceDescriptor& AgentService();

// The gRPC path of a method: "/<service full name>/<method name>".
std::string MethodPath(const google::protobuf::MethodDescriptor& method);

// The unary Agent method `method_name`, if its envelopes carry `request_type` and
// `reply_type` (full message names); INVALID_ARGUMENT otherwise, saying why.
absl::StatusOr<const google::protobuf::MethodDescriptor*> FindUnaryMethod(
    absl::string_view method_name, absl::string_view request_type,
    absl::string_view reply_type);

// The same for a server-streaming method (ServiceLogs), whose every reply
// carries `reply_type`.
absl::StatusOr<const google::protobuf::MethodDescriptor*> FindServerStreamMethod(
    absl::string_view method_name, absl::string_view request_type,
    absl::string_view reply_type);

}  // namespace omd::rpc

#endif  // OMD_RPC_AGENT_METHODS_H_

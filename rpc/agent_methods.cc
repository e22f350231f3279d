#include "rpc/agent_methods.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "proto/omd.pb.h"

namespace omd::rpc {

const google::protobuf::ServiceDescriptor& AgentService() {
  return *v1::Envelope::descriptor()->file()->FindServiceByName("Agent");
}

std::string MethodPath(const google::protobuf::MethodDescriptor& method) {
  return absl::StrCat("/", method.service()->full_name(), "/", method.name());
}

namespace {

absl::StatusOr<const google::protobuf::MethodDescriptor*> FindMethod(
    absl::string_view method_name, bool server_streaming, absl::string_view request_type,
    absl::string_view reply_type) {
  const google::protobuf::MethodDescriptor* method =
      AgentService().FindMethodByName(std::string(method_name));
  if (method == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("no method ", method_name));
  }
  if (method->client_streaming() || method->server_streaming() != server_streaming) {
    return absl::InvalidArgumentError(absl::StrCat(
        method_name, server_streaming ? " is not server-streaming" : " is not unary"));
  }
  const v1::Carries& carries = method->options().GetExtension(v1::carries);
  if (carries.request() != request_type || carries.reply() != reply_type) {
    return absl::InvalidArgumentError(absl::StrCat(
        method_name, " carries ", carries.request(), " -> ", carries.reply(), ", not ",
        request_type, " -> ", reply_type));
  }
  return method;
}

}  // namespace

absl::StatusOr<const google::protobuf::MethodDescriptor*> FindUnaryMethod(
    absl::string_view method_name, absl::string_view request_type,
    absl::string_view reply_type) {
  return FindMethod(method_name, /*server_streaming=*/false, request_type, reply_type);
}

absl::StatusOr<const google::protobuf::MethodDescriptor*> FindServerStreamMethod(
    absl::string_view method_name, absl::string_view request_type,
    absl::string_view reply_type) {
  return FindMethod(method_name, /*server_streaming=*/true, request_type, reply_type);
}

}  // namespace omd::rpc

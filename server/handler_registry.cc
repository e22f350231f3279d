#include "server/handler_registry.h"

#include "proto/omd.pb.h"

namespace omd::server {

const google::protobuf::ServiceDescriptor& AgentServiceDescriptor() {
  return *v1::Envelope::descriptor()->file()->FindServiceByName("Agent");
}

absl::Status HandlerRegistry::CheckCarries(absl::string_view method_name,
                                           absl::string_view request_type,
                                           absl::string_view reply_type) {
  const google::protobuf::MethodDescriptor* method =
      AgentServiceDescriptor().FindMethodByName(std::string(method_name));
  if (method == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("no method ", method_name));
  }
  if (method->client_streaming() || method->server_streaming()) {
    return absl::InvalidArgumentError(absl::StrCat(method_name, " is not unary"));
  }
  const v1::Carries& carries = method->options().GetExtension(v1::carries);
  if (carries.request() != request_type || carries.reply() != reply_type) {
    return absl::InvalidArgumentError(absl::StrCat(
        method_name, " carries ", carries.request(), " -> ", carries.reply(),
        ", not ", request_type, " -> ", reply_type));
  }
  return absl::OkStatus();
}

const HandlerRegistry::UnaryHandler* HandlerRegistry::FindUnary(
    absl::string_view method_name) const {
  auto it = unary_.find(method_name);
  return it == unary_.end() ? nullptr : &it->second;
}

}  // namespace omd::server

#include "server/handler_registry.h"


namespace omd::server {

const HandlerRegistry::UnaryHandler* HandlerRegistry::FindUnary(
    absl::string_view method_name) const {
  auto it = unary_.find(method_name);
  return it == unary_.end() ? nullptr : &it->second;
}

const HandlerRegistry::ServerStreamHandler* HandlerRegistry::FindServerStream(
    absl::string_view method_name) const {
  auto it = server_stream_.find(method_name);
  return it == server_stream_.end() ? nullptr : &it->second;
}

}  // namespace omd::server

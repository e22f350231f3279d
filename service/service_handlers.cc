#include "service/service_handlers.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/omd.pb.h"
#include "server/caller.h"
#include "service/service_config.h"

namespace omd::service {

absl::Status AddServiceHandlers(std::string root, server::HandlerRegistry* registry) {
  return registry->AddUnary<v1::GetServiceConfigRequest, v1::GetServiceConfigReply>(
      "GetServiceConfig",
      [root = std::move(root)](const server::Caller&, const v1::GetServiceConfigRequest& request)
          -> absl::StatusOr<v1::GetServiceConfigReply> {
        absl::StatusOr<ServiceConfigFile> file =
            ReadServiceConfigFile(root, request.svcname());
        if (!file.ok()) return file.status();
        v1::GetServiceConfigReply reply;
        reply.set_config(std::move(file->text));
        reply.set_mtime_unix_ms(absl::ToUnixMillis(file->mtime));
        return reply;
      });
}

}  // namespace omd::service

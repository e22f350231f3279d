// The daemon's handlers of services' files: GetServiceConfig.
//
//   server::HandlerRegistry registry;
//   absl::Status added = service::AddServiceHandlers(root, &registry);
#ifndef OMD_SERVICE_SERVICE_HANDLERS_H_
#define OMD_SERVICE_SERVICE_HANDLERS_H_

#include <string>

#include "absl/status/status.h"
#include "server/handler_registry.h"

namespace omd::service {

// GetServiceConfig: DIR/etc/<svcname>.conf's text and modification time
// (a small file read, answered at once). INVALID_ARGUMENT for a bad name,
// NOT_FOUND for a service that does not exist.
absl::Status AddServiceHandlers(std::string root, server::HandlerRegistry* registry);

}  // namespace omd::service

#endif  // OMD_SERVICE_SERVICE_HANDLERS_H_

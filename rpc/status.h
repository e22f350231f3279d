// The one place where absl::Status and grpc::Status are converted.
//
// Inside omd everything returns absl::Status with the canonical codes, which gRPC
// shares; only the edges (the gated service, the client) convert.
#ifndef OMD_RPC_STATUS_H_
#define OMD_RPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace omd::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace omd::rpc

#endif  // OMD_RPC_STATUS_H_

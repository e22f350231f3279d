// Who sent a request that the gate admitted.
#ifndef OMD_SERVER_CALLER_H_
#define OMD_SERVER_CALLER_H_

#include <string>

#include "absl/time/time.h"

namespace omd::server {

struct Caller {
  std::string nodename;  // authenticated by the envelope's tag
  std::string address;   // the peer's IP address (127.0.0.1 on the control channel)
  bool control_channel = false;  // came through the local control socket
  // When the caller stops waiting for the reply (gRPC's deadline of the call): a
  // handler whose work takes time ends it by then, as the reply is lost after.
  absl::Time deadline = absl::InfiniteFuture();
};

}  // namespace omd::server

#endif  // OMD_SERVER_CALLER_H_

// The listening socket omd accepts on itself (net/connection_guard.h), and the
// file-descriptor limit its connections count against.
//
//   absl::StatusOr<ListenSocket> socket = Listen("127.0.0.1", 1214);
//   uint64_t limit = RaiseFileLimit();  // soft RLIMIT_NOFILE raised to the hard one
#ifndef OMD_NET_LISTEN_SOCKET_H_
#define OMD_NET_LISTEN_SOCKET_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace omd::net {

struct ListenSocket {
  int fd = -1;   // non-blocking, close-on-exec, listening
  int port = 0;  // the bound port (the one chosen when asked for 0)
};

// A TCP socket bound to `address`:`port` (0: any free port) and listening. No
// SO_REUSEPORT: a second daemon on the same port must fail, not share it. "::"
// accepts IPv4 too. UNAVAILABLE when the address is in use or not local.
absl::StatusOr<ListenSocket> Listen(absl::string_view address, int port);

// Raises the soft RLIMIT_NOFILE to the hard limit, so that the caps on
// connections, not the limit, decide who is refused. Returns the soft limit now
// in force.
uint64_t RaiseFileLimit();

}  // namespace omd::net

#endif  // OMD_NET_LISTEN_SOCKET_H_

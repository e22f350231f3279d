// UNIX stream sockets by path, for the daemon's local control channel: listening
// on one (with the mode it must have from the start), and naming one as a gRPC
// target.
//
// A socket's path must fit sockaddr_un (107 bytes), which a root in a deep test
// directory may not: longer paths are reached through the directory's descriptor
// ("/proc/self/fd/N/name").
//
//   absl::StatusOr<int> fd = ListenUnix("/srv/omd/var/omd.sock", 0600);
//   std::string target = UnixTarget("/srv/omd/var/omd.sock");  // "unix:/srv/omd/..."
#ifndef OMD_NET_UNIX_SOCKET_H_
#define OMD_NET_UNIX_SOCKET_H_

#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace omd::net {

// A non-blocking, close-on-exec socket listening on `path` with `mode`, set
// before it listens (so nobody connects through a looser mode). A stale socket
// file left by a daemon that died is replaced; one that a live process still
// listens on is UNAVAILABLE ("in use"), and a path that is not a socket is
// FAILED_PRECONDITION.
absl::StatusOr<int> ListenUnix(absl::string_view path, mode_t mode);

// A gRPC channel target for the socket at `path` ("unix:PATH"). For a path too
// long for sockaddr_un, the directory is opened (O_PATH) and kept open for the
// life of the process, and the target goes through /proc/self/fd.
absl::StatusOr<std::string> UnixTarget(absl::string_view path);

}  // namespace omd::net

#endif  // OMD_NET_UNIX_SOCKET_H_

// The address part of a gRPC peer string, for connections gRPC accepted itself
// (the daemon's own come through net/connection_guard.h, named "fd:N"); and
// host:port, joined for gRPC targets and split from configuration.
//
//   PeerAddress("ipv4:127.0.0.2:51234") == "127.0.0.2"
//   PeerAddress("ipv6:[::1]:51234") == "::1"
//   PeerAddress("unix:/run/omd.sock") == "unix:/run/omd.sock"
//   JoinHostPort("::1", 1214) == "[::1]:1214"
//   SplitHostPort("[::1]:1215", 1214)->port == 1215
#ifndef OMD_RPC_PEER_H_
#define OMD_RPC_PEER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace omd::rpc {

// Drops the scheme and the port, which changes with every connection; anything
// unrecognised is returned whole.
std::string PeerAddress(absl::string_view peer);

// "host:port", with an IPv6 host in brackets: "[::1]:1214".
std::string JoinHostPort(absl::string_view host, int port);

struct HostPort {
  std::string host;  // without brackets
  int port = 0;
};

// The host and port of "host:port" or "[IPv6]:port"; without a port, of "host",
// "[IPv6]" or a bare IPv6 address ("fe80::1"), which take `default_port`.
// Checks the form only, not what the host is. INVALID_ARGUMENT saying what is
// wrong, without quoting `text`: an empty host, a '[' not closed, something
// other than ":port" after ']', a port that is not a number from 1 to 65535.
absl::StatusOr<HostPort> SplitHostPort(absl::string_view text, int default_port);

}  // namespace omd::rpc

#endif  // OMD_RPC_PEER_H_

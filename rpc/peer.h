// The address part of a gRPC peer string, for connections gRPC accepted itself
// (the daemon's own come through net/connection_guard.h, named "fd:N"); and
// host:port joined for gRPC targets.
//
//   PeerAddress("ipv4:127.0.0.2:51234") == "127.0.0.2"
//   PeerAddress("ipv6:[::1]:51234") == "::1"
//   PeerAddress("unix:/run/omd.sock") == "unix:/run/omd.sock"
#ifndef OMD_RPC_PEER_H_
#define OMD_RPC_PEER_H_

#include <string>

#include "absl/strings/string_view.h"

namespace omd::rpc {

// Drops the scheme and the port, which changes with every connection; anything
// unrecognised is returned whole.
std::string PeerAddress(absl::string_view peer);

// "host:port", with an IPv6 host in brackets: "[::1]:1214".
std::string JoinHostPort(absl::string_view host, int port);

}  // namespace omd::rpc

#endif  // OMD_RPC_PEER_H_

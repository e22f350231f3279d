// Sources the kernel drops before omd sees them: a classic BPF program on the
// listening socket that discards TCP segments (SYNs included) from a list of IPv4
// addresses and IPv6 /64 prefixes.
//
// Refusing a banned outsider at accept still costs the daemon a handshake, an
// accept and a close for every attempt; dropped in the kernel, the attempts cost it
// nothing, and the sender's connect() times out as if omd were not there. Accepted
// sockets inherit the listening socket's filter: the connection guard detaches it
// from each one (DetachSourceFilter), so established connections never run it.
//
//   absl::Status dropped = AttachSourceFilter(listen_fd, {source_a, source_b});
//   ... accept4 ... DetachSourceFilter(accepted_fd);
#ifndef OMD_NET_SOURCE_FILTER_H_
#define OMD_NET_SOURCE_FILTER_H_

#include <linux/filter.h>

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "net/address.h"

namespace omd::net {

// The most sources one program drops (a program has at most 4096 instructions);
// the first ones of the list are kept.
inline constexpr size_t kMaxDroppedIpv4Sources = 1000;
inline constexpr size_t kMaxDroppedIpv6Sources = 400;

// The program that drops `sources` (IpAddress::SourceKey()s) and accepts the rest.
std::vector<sock_filter> SourceFilterProgram(const std::vector<IpAddress>& sources);

// Replaces the socket's filter with one dropping `sources`; an empty list removes
// it.
absl::Status AttachSourceFilter(int fd, const std::vector<IpAddress>& sources);

// Removes the filter an accepted socket inherited.
void DetachSourceFilter(int fd);

}  // namespace omd::net

#endif  // OMD_NET_SOURCE_FILTER_H_

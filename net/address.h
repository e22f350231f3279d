// IP addresses as omd's listener sees them: who connected, and the key under which
// a source is counted (connection caps, the blacklist).
//
// A source is an IPv4 address, or an IPv6 /64: one IPv6 host commonly holds a whole
// /64, so counting per address would give an attacker 2^64 fresh identities. An
// IPv4 peer of a dual-stack socket (::ffff:a.b.c.d) is the IPv4 address.
//
//   std::optional<IpAddress> peer = IpAddress::FromSockaddr(addr, length);
//   IpAddress key = peer->SourceKey();  // 2001:db8:1:2::/64, or 10.0.0.7
//   std::string text = key.ToString();
#ifndef OMD_NET_ADDRESS_H_
#define OMD_NET_ADDRESS_H_

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace omd::net {

class IpAddress {
 public:
  // 0.0.0.0
  IpAddress() = default;

  static std::optional<IpAddress> FromSockaddr(const sockaddr* address, socklen_t length);
  // "10.0.0.7", "2001:db8::1", "::ffff:10.0.0.7" (which is 10.0.0.7); no port, no
  // brackets, no prefix.
  static std::optional<IpAddress> Parse(absl::string_view text);

  bool is_v4() const { return v4_; }
  // 32 or 128 for an address, 64 for an IPv6 source key.
  int prefix_length() const { return prefix_length_; }
  // Network order: IPv4 in the first 4 bytes, the rest zero.
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }

  // The key a source is counted under: itself for IPv4, its /64 for IPv6.
  IpAddress SourceKey() const;

  // "10.0.0.7", "2001:db8::1", "2001:db8:1:2::/64".
  std::string ToString() const;

  friend bool operator==(const IpAddress& a, const IpAddress& b) {
    return a.v4_ == b.v4_ && a.prefix_length_ == b.prefix_length_ && a.bytes_ == b.bytes_;
  }
  friend bool operator!=(const IpAddress& a, const IpAddress& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const IpAddress& a) {
    return H::combine(std::move(h), a.v4_, a.prefix_length_, a.bytes_);
  }

 private:
  bool v4_ = true;
  int prefix_length_ = 32;
  // IPv4: the first 4 bytes; IPv6: all 16, host bits zero in a key.
  std::array<uint8_t, 16> bytes_{};
};

// The addresses of this host's interfaces (getifaddrs), loopback included.
std::vector<IpAddress> LocalInterfaceAddresses();

}  // namespace omd::net

#endif  // OMD_NET_ADDRESS_H_

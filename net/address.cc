#include "net/address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace omd::net {
namespace {

constexpr uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

}  // namespace

std::optional<IpAddress> IpAddress::FromSockaddr(const sockaddr* address,
                                                 socklen_t length) {
  IpAddress result;
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    std::memcpy(result.bytes_.data(), &v4->sin_addr, 4);
    return result;
  }
  if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    const uint8_t* bytes = v6->sin6_addr.s6_addr;
    if (std::memcmp(bytes, kV4MappedPrefix, sizeof(kV4MappedPrefix)) == 0) {
      std::memcpy(result.bytes_.data(), bytes + 12, 4);
      return result;
    }
    result.v4_ = false;
    result.prefix_length_ = 128;
    std::memcpy(result.bytes_.data(), bytes, 16);
    return result;
  }
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::Parse(absl::string_view text) {
  const std::string terminated(text);
  sockaddr_in v4{};
  if (inet_pton(AF_INET, terminated.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    return FromSockaddr(reinterpret_cast<const sockaddr*>(&v4), sizeof(v4));
  }
  sockaddr_in6 v6{};
  if (inet_pton(AF_INET6, terminated.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    return FromSockaddr(reinterpret_cast<const sockaddr*>(&v6), sizeof(v6));
  }
  return std::nullopt;
}

IpAddress IpAddress::SourceKey() const {
  if (v4_ || prefix_length_ <= 64) return *this;
  IpAddress key = *this;
  key.prefix_length_ = 64;
  std::memset(key.bytes_.data() + 8, 0, 8);
  return key;
}

std::string IpAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(v4_ ? AF_INET : AF_INET6, bytes_.data(), text, sizeof(text));
  if (!v4_ && prefix_length_ < 128) return absl::StrCat(text, "/", prefix_length_);
  return text;
}

std::vector<IpAddress> LocalInterfaceAddresses() {
  std::vector<IpAddress> addresses;
  ifaddrs* interfaces = nullptr;
  if (getifaddrs(&interfaces) != 0) return addresses;
  for (const ifaddrs* entry = interfaces; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    const socklen_t length = entry->ifa_addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6)
                                                                     : sizeof(sockaddr_in);
    if (std::optional<IpAddress> address = IpAddress::FromSockaddr(entry->ifa_addr, length)) {
      addresses.push_back(*address);
    }
  }
  freeifaddrs(interfaces);
  return addresses;
}

}  // namespace omd::net

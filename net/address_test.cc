#include "net/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace omd::net {
namespace {

IpAddress Ip(const char* text) {
  std::optional<IpAddress> address = IpAddress::Parse(text);
  EXPECT_TRUE(address.has_value()) << text;
  return address.value_or(IpAddress());
}

TEST(IpAddressTest, ParsesAndPrints) {
  EXPECT_EQ(Ip("10.0.0.7").ToString(), "10.0.0.7");
  EXPECT_EQ(Ip("2001:db8::1").ToString(), "2001:db8::1");
  EXPECT_TRUE(Ip("10.0.0.7").is_v4());
  EXPECT_FALSE(Ip("::1").is_v4());
  EXPECT_FALSE(IpAddress::Parse("10.0.0.7:1214").has_value());
  EXPECT_FALSE(IpAddress::Parse("[::1]").has_value());
  EXPECT_FALSE(IpAddress::Parse("").has_value());
  EXPECT_FALSE(IpAddress::Parse("node1").has_value());
}

// A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d: the same source.
TEST(IpAddressTest, Ipv4MappedIsIpv4) {
  EXPECT_EQ(Ip("::ffff:10.0.0.7"), Ip("10.0.0.7"));
  sockaddr_in6 mapped{};
  mapped.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "::ffff:127.0.0.5", &mapped.sin6_addr);
  std::optional<IpAddress> address =
      IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&mapped), sizeof(mapped));
  ASSERT_TRUE(address.has_value());
  EXPECT_EQ(address->ToString(), "127.0.0.5");
}

TEST(IpAddressTest, FromSockaddrRefusesOtherFamilies) {
  sockaddr unix_address{};
  unix_address.sa_family = AF_UNIX;
  EXPECT_FALSE(IpAddress::FromSockaddr(&unix_address, sizeof(unix_address)).has_value());
  sockaddr_in short_v4{};
  short_v4.sin_family = AF_INET;
  EXPECT_FALSE(IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&short_v4), 2)
                   .has_value());
}

// An IPv6 host usually holds a whole /64: its sources are counted as one.
TEST(IpAddressTest, Ipv6SourcesArePer64) {
  const IpAddress a = Ip("2001:db8:1:2:aaaa::1");
  const IpAddress b = Ip("2001:db8:1:2:bbbb::2");
  const IpAddress other = Ip("2001:db8:1:3::1");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.SourceKey(), b.SourceKey());
  EXPECT_NE(a.SourceKey(), other.SourceKey());
  EXPECT_EQ(a.SourceKey().ToString(), "2001:db8:1:2::/64");
  EXPECT_EQ(a.SourceKey().prefix_length(), 64);
  EXPECT_EQ(a.SourceKey().SourceKey(), a.SourceKey());
  // IPv4 sources are whole addresses.
  EXPECT_EQ(Ip("10.0.0.7").SourceKey(), Ip("10.0.0.7"));
  EXPECT_NE(Ip("10.0.0.7").SourceKey(), Ip("10.0.0.8").SourceKey());
  // A key is not the address it came from (nor a real address of that /64).
  EXPECT_NE(a.SourceKey(), Ip("2001:db8:1:2::"));
}

TEST(IpAddressTest, HashesAsItCompares) {
  absl::flat_hash_set<IpAddress> set = {Ip("10.0.0.7"), Ip("::ffff:10.0.0.7"), Ip("::1"),
                                        Ip("2001:db8::1").SourceKey()};
  EXPECT_EQ(set.size(), 3u);
  EXPECT_TRUE(set.contains(Ip("2001:db8::99").SourceKey()));
}

TEST(LocalInterfaceAddressesTest, IncludesLoopback) {
  std::vector<IpAddress> local = LocalInterfaceAddresses();
  EXPECT_NE(std::find(local.begin(), local.end(), Ip("127.0.0.1")), local.end());
}

}  // namespace
}  // namespace omd::net

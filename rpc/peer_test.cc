#include "rpc/peer.h"

#include "gtest/gtest.h"

namespace omd::rpc {
namespace {

TEST(PeerAddressTest, DropsSchemeAndPort) {
  EXPECT_EQ(PeerAddress("ipv4:127.0.0.2:51234"), "127.0.0.2");
  EXPECT_EQ(PeerAddress("ipv6:[::1]:51234"), "::1");
}

// What gRPC 1.51 really prints for IPv6 peers.
TEST(PeerAddressTest, DecodesPercentEncodedBrackets) {
  EXPECT_EQ(PeerAddress("ipv6:%5B::1%5D:51234"), "::1");
  EXPECT_EQ(PeerAddress("ipv6:%5Bfe80::1%25eth0%5D:1214"), "fe80::1%eth0");
}

TEST(PeerAddressTest, MapsIpv4OverIpv6ToIpv4) {
  EXPECT_EQ(PeerAddress("ipv6:%5B::ffff:127.0.0.5%5D:40000"), "127.0.0.5");
  EXPECT_EQ(PeerAddress("ipv6:[::ffff:10.1.2.3]:40000"), "10.1.2.3");
}

TEST(JoinHostPortTest, BracketsIpv6Hosts) {
  EXPECT_EQ(JoinHostPort("127.0.0.1", 1214), "127.0.0.1:1214");
  EXPECT_EQ(JoinHostPort("::1", 1214), "[::1]:1214");
}

TEST(PeerAddressTest, KeepsWhatItDoesNotKnow) {
  EXPECT_EQ(PeerAddress("unix:/run/omd.sock"), "unix:/run/omd.sock");
  EXPECT_EQ(PeerAddress(""), "");
  EXPECT_EQ(PeerAddress("ipv4:10.0.0.1"), "10.0.0.1");
}

}  // namespace
}  // namespace omd::rpc

#include "rpc/peer.h"

#include "gtest/gtest.h"

namespace omd::rpc {
namespace {

TEST(PeerAddressTest, DropsSchemeAndPort) {
  EXPECT_EQ(PeerAddress("ipv4:127.0.0.2:51234"), "127.0.0.2");
  EXPECT_EQ(PeerAddress("ipv6:[::1]:51234"), "::1");
  EXPECT_EQ(PeerAddress("ipv6:[fe80::1%25eth0]:1214"), "fe80::1%25eth0");
}

TEST(PeerAddressTest, KeepsWhatItDoesNotKnow) {
  EXPECT_EQ(PeerAddress("unix:/run/omd.sock"), "unix:/run/omd.sock");
  EXPECT_EQ(PeerAddress(""), "");
  EXPECT_EQ(PeerAddress("ipv4:10.0.0.1"), "10.0.0.1");
}

}  // namespace
}  // namespace omd::rpc

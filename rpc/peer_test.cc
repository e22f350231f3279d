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

TEST(SplitHostPortTest, SplitsEveryForm) {
  struct Case {
    const char* text;
    const char* host;
    int port;
  };
  for (const Case& test : {Case{"10.0.0.2:1215", "10.0.0.2", 1215},
                           Case{"10.0.0.2", "10.0.0.2", 1214},
                           Case{"n2.example.com:65535", "n2.example.com", 65535},
                           Case{"n2", "n2", 1214},
                           Case{"[fe80::1]:1", "fe80::1", 1},
                           Case{"[::1]", "::1", 1214},
                           Case{"fe80::1", "fe80::1", 1214},
                           Case{"::", "::", 1214}}) {
    absl::StatusOr<HostPort> split = SplitHostPort(test.text, 1214);
    ASSERT_TRUE(split.ok()) << test.text << ": " << split.status();
    EXPECT_EQ(split->host, test.host) << test.text;
    EXPECT_EQ(split->port, test.port) << test.text;
    // What JoinHostPort makes splits back.
    absl::StatusOr<HostPort> again = SplitHostPort(JoinHostPort(split->host, split->port), 1);
    ASSERT_TRUE(again.ok()) << test.text;
    EXPECT_EQ(again->host, split->host);
    EXPECT_EQ(again->port, split->port);
  }
}

TEST(SplitHostPortTest, SaysWhatIsWrong) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& test : {
           Case{"", "empty host"},
           Case{":1214", "empty host"},
           Case{"[]:1214", "empty host"},
           Case{"[::1", "'[' without ']'"},
           Case{"[::1]1214", "only \":port\" may follow ']'"},
           Case{"[::1]:", "the port is not a number from 1 to 65535"},
           Case{"10.0.0.2:", "the port is not a number from 1 to 65535"},
           Case{"10.0.0.2:0", "the port is not a number from 1 to 65535"},
           Case{"10.0.0.2:65536", "the port is not a number from 1 to 65535"},
           Case{"10.0.0.2:+80", "the port is not a number from 1 to 65535"},
           Case{"10.0.0.2: 80", "the port is not a number from 1 to 65535"},
           Case{"10.0.0.2:http", "the port is not a number from 1 to 65535"},
           Case{"10.0.0.2:0000001214", "the port is not a number from 1 to 65535"},
       }) {
    absl::StatusOr<HostPort> split = SplitHostPort(test.text, 1214);
    EXPECT_EQ(split.status().code(), absl::StatusCode::kInvalidArgument) << test.text;
    EXPECT_EQ(split.status().message(), test.message) << test.text;
  }
}

TEST(PeerAddressTest, KeepsWhatItDoesNotKnow) {
  EXPECT_EQ(PeerAddress("unix:/run/omd.sock"), "unix:/run/omd.sock");
  EXPECT_EQ(PeerAddress(""), "");
  EXPECT_EQ(PeerAddress("ipv4:10.0.0.1"), "10.0.0.1");
}

}  // namespace
}  // namespace omd::rpc

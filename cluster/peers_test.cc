// Peers against a real omd: calls bound to the node called, targets from
// node.conf, and the hold that keeps a peer refusing this node from blacklisting it.
#include "cluster/peers.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config/node_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/omd.pb.h"
#include "sync/mutex.h"
#include "testing/daemon_harness.h"

namespace omd::cluster {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class FakeClock {
 public:
  absl::Time Now() const {
    sync::MutexLock lock(&mutex_);
    return now_;
  }
  void Advance(absl::Duration d) {
    sync::MutexLock lock(&mutex_);
    now_ += d;
  }

 private:
  mutable sync::Mutex mutex_;
  absl::Time now_ ABSL_GUARDED_BY(mutex_) = absl::UnixEpoch() + absl::Hours(1);
};

TEST(GateVerdictTest, TellsCountedRefusalsFromTheRest) {
  EXPECT_EQ(GateVerdictOf(absl::OkStatus()), GateVerdict::kAdmitted);
  for (const absl::Status& counted :
       {absl::PermissionDeniedError("node node2 is not a member of the cluster"),
        absl::PermissionDeniedError("invalid sender node name"),
        absl::UnauthenticatedError("message authentication failed"),
        absl::UnauthenticatedError("envelope of another cluster"),
        absl::UnauthenticatedError("envelope for another node"),
        absl::InvalidArgumentError("request is not an omd.v1.Envelope")}) {
    EXPECT_EQ(GateVerdictOf(counted), GateVerdict::kCountedRefusal) << counted;
  }
  for (const absl::Status& unknown :
       {absl::UnavailableError("connection refused"),
        absl::DeadlineExceededError("deadline"),
        absl::PermissionDeniedError("sender is blacklisted after repeated invalid messages"),
        absl::UnauthenticatedError("replayed request"),
        absl::UnauthenticatedError("send time is 2m away from this node's clock (limit 1m)"),
        absl::UnauthenticatedError("sent before this node's unclean restart; resend"),
        absl::ResourceExhaustedError("replay guard: full")}) {
    EXPECT_EQ(GateVerdictOf(unknown), GateVerdict::kUnknown) << unknown;
  }
  for (const absl::Status& admitted :
       {absl::FailedPreconditionError("the cluster lock is held by node3"),
        absl::InvalidArgumentError("request payload is not a valid omd.v1.JoinRequest"),
        absl::UnimplementedError("ServiceAction is not implemented by this daemon yet"),
        absl::UnauthenticatedError("reply sealed by node3, not by node1")}) {
    EXPECT_EQ(GateVerdictOf(admitted), GateVerdict::kAdmitted) << admitted;
  }
}

class PeersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::DaemonProcess::Options options;
    options.node.node_name = "node1";
    options.node.cluster_nodes = {"node1", "node2"};
    absl::StatusOr<std::unique_ptr<testing::DaemonProcess>> daemon =
        testing::DaemonProcess::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    node1_ = *std::move(daemon);
  }

  void TearDown() override {
    if (node1_ != nullptr) {
      EXPECT_EQ(node1_->Stop(), absl::OkStatus());
    }
  }

  // node2's node.conf, reaching node1 at its daemon (and node3 there too).
  config::NodeConfig Node2Config(const std::string& secret = testing::kTestSecret,
                                 const std::string& extra = "") {
    absl::StatusOr<config::NodeConfig> config = config::ParseNodeConfig(absl::StrCat(
        "[node]\nname = node2\n[cluster]\nname = test\nsecret = ", secret,
        "\nnodes = node1 node2\naddr@node1 = ", node1_->address(), "\n", extra));
    EXPECT_TRUE(config.ok()) << config.status();
    return config.value_or(config::NodeConfig());
  }

  Peers::Options Options() {
    Peers::Options options;
    options.clock = [this] { return clock_.Now(); };
    return options;
  }

  absl::Status Status(Peers& peers, const std::string& node = "node1") {
    return peers
        .Call<v1::BlacklistStatusReply>(node, "BlacklistStatus", v1::BlacklistStatusRequest(),
                                        absl::Seconds(10))
        .status();
  }

  // node1's count of node2's invalid messages, from its own om.
  std::string Node1Blacklist() {
    return testing::RunOm(node1_->root(), {"daemon", "blacklist", "status", "--output", "json"})
        .stdout_text;
  }

  FakeClock clock_;
  std::unique_ptr<testing::DaemonProcess> node1_;
};

TEST_F(PeersTest, CallsTheNodeAtItsAddressBoundToIt) {
  Peers peers(Options());
  EXPECT_EQ(Status(peers).code(), absl::StatusCode::kFailedPrecondition);
  peers.SetConfig(Node2Config());
  EXPECT_EQ(peers.TargetOf("node1"), node1_->address());
  EXPECT_EQ(peers.TargetOf("node4"), "node4:1214");  // by name, without an address
  absl::StatusOr<v1::BlacklistStatusReply> reply = peers.Call<v1::BlacklistStatusReply>(
      "node1", "BlacklistStatus", v1::BlacklistStatusRequest(), absl::Seconds(10));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->entries().empty());
  // A request for node3 that reaches node1 is refused there: it names node3.
  peers.SetConfig(Node2Config(testing::kTestSecret, "addr@node3 = " + node1_->address() + "\n"));
  absl::Status misdirected = Status(peers, "node3");
  EXPECT_EQ(misdirected.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(misdirected.message(), "envelope for another node");
  EXPECT_EQ(Status(peers, "no/such").code(), absl::StatusCode::kInvalidArgument);
  // An address learned from a member's view serves a node that node.conf has
  // none for, and only such a node.
  peers.LearnAddresses({{"node4", node1_->address()}, {"node1", "127.0.0.1:1"}});
  EXPECT_EQ(peers.TargetOf("node4"), node1_->address());
  EXPECT_EQ(peers.TargetOf("node1"), node1_->address());
  EXPECT_EQ(Status(peers, "node4").message(), "envelope for another node");  // node1 answers
  EXPECT_TRUE(Status(peers).ok());
  // The wrong types for the method.
  EXPECT_EQ(peers
                .Call<v1::JoinReply>("node1", "BlacklistStatus", v1::BlacklistStatusRequest(),
                                     absl::Seconds(10))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// Three refusals, then the peer is left alone (node1 counts 3, not 5); once the
// hold is over, a call with the right secret gets through and ends the count.
TEST_F(PeersTest, APeerThatRefusesIsHeldBeforeItBlacklistsThisNode) {
  Peers peers(Options());
  peers.SetConfig(Node2Config("not-the-cluster-secret-at-all"));
  for (int i = 1; i <= 3; ++i) {
    absl::Status refused = Status(peers);
    EXPECT_EQ(refused.code(), absl::StatusCode::kUnauthenticated) << i;
    EXPECT_EQ(refused.message(), "message authentication failed") << i;
  }
  EXPECT_EQ(peers.RefusalsInARow("node1"), 3);
  for (int i = 0; i < 5; ++i) {
    absl::Status held = Status(peers);
    EXPECT_EQ(held.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(held.message()),
                StartsWith("node1 refused this node's last 3 messages (UNAUTHENTICATED: "
                           "message authentication failed): not calling it for another 5s"));
  }
  EXPECT_EQ(Node1Blacklist(),
            "{\"data\": {\"node2@127.0.0.1\": 3}, \"node\": \"node1\", \"status\": 0}\n");

  peers.SetConfig(Node2Config());  // the right secret: still held, for now
  EXPECT_EQ(Status(peers).code(), absl::StatusCode::kUnavailable);
  clock_.Advance(absl::Seconds(5));
  EXPECT_TRUE(Status(peers).ok());
  EXPECT_EQ(peers.RefusalsInARow("node1"), 0);
  EXPECT_TRUE(Status(peers).ok());
  EXPECT_EQ(Node1Blacklist(), "{\"data\": {}, \"node\": \"node1\", \"status\": 0}\n");
}

// Each refusal after the hold doubles it: a peer that keeps refusing gets one
// message per hold, so the 5th comes a quarter of a minute after the 3rd.
TEST_F(PeersTest, HoldsDoubleWhileThePeerKeepsRefusing) {
  Peers peers(Options());
  peers.SetConfig(Node2Config("not-the-cluster-secret-at-all"));
  for (int i = 0; i < 3; ++i) Status(peers).IgnoreError();
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(Status(peers).code(), absl::StatusCode::kUnauthenticated);  // the 4th
  absl::Status held = Status(peers);
  EXPECT_EQ(held.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(held.message()), HasSubstr("last 4 messages"));
  EXPECT_THAT(std::string(held.message()), HasSubstr("another 10s"));
  clock_.Advance(absl::Seconds(9));
  EXPECT_EQ(Status(peers).code(), absl::StatusCode::kUnavailable);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Status(peers).code(), absl::StatusCode::kUnauthenticated);  // the 5th
  EXPECT_THAT(std::string(Status(peers).message()), HasSubstr("another 20s"));
}

// An unreachable peer is no refusal: nothing is held.
TEST_F(PeersTest, AnUnreachablePeerIsNotHeld) {
  Peers peers(Options());
  peers.SetConfig(Node2Config(testing::kTestSecret, "addr@node3 = 127.0.0.1:1\n"));
  // Calls wait for a connection until their deadline (a peer that restarts is
  // reached within it), so an unreachable peer's are DEADLINE_EXCEEDED.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(peers
                  .Call<v1::BlacklistStatusReply>("node3", "BlacklistStatus",
                                                  v1::BlacklistStatusRequest(),
                                                  absl::Milliseconds(500))
                  .status()
                  .code(),
              absl::StatusCode::kDeadlineExceeded);
  }
  EXPECT_EQ(peers.RefusalsInARow("node3"), 0);
  EXPECT_TRUE(Status(peers).ok());
}

// node1's count of the connections it accepted, asked through `peers`.
int64_t Node1Accepted(Peers& peers) {
  absl::StatusOr<v1::DaemonStatusReply> status = peers.Call<v1::DaemonStatusReply>(
      "node1", "DaemonStatus", v1::DaemonStatusRequest(), absl::Seconds(10));
  EXPECT_TRUE(status.ok()) << status.status();
  return status.ok() ? static_cast<int64_t>(status->listener().accepted()) : -1;
}

// Disconnect lets the connection go: the next call makes a new one, and works.
TEST_F(PeersTest, DisconnectLetsTheConnectionGoAndTheNextCallMakesOne) {
  Peers peers(Options());
  peers.SetConfig(Node2Config());
  const int64_t accepted = Node1Accepted(peers);
  ASSERT_GT(accepted, 0);
  EXPECT_EQ(Node1Accepted(peers), accepted);  // the same connection
  peers.Disconnect("node1");
  EXPECT_EQ(Node1Accepted(peers), accepted + 1);
  EXPECT_EQ(Node1Accepted(peers), accepted + 1);
  EXPECT_TRUE(Status(peers).ok());
  peers.Disconnect("node9");  // never called: nothing to let go
}

// Calls from many threads while the configuration changes under them.
TEST_F(PeersTest, CallsAndReconfigurationsFromManyThreads) {
  Peers peers(Options());
  peers.SetConfig(Node2Config());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        if (!Status(peers).ok()) ++failures;
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 20; ++i) peers.SetConfig(Node2Config());
  });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace omd::cluster

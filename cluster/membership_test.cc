// The membership's worker and its handlers, in process, on a node.conf of its
// own (a one-node cluster: no peer is called). Changes across real daemons are
// in testing/cluster_e2e_test.cc.
#include "cluster/membership.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config/atomic_file.h"
#include "config/node_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/omd.pb.h"
#include "sync/mutex.h"
#include "testing/daemon_harness.h"

namespace omd::cluster {
namespace {

using ::testing::ElementsAre;

// What a Done saw; Wait blocks until it came. (A sync::Mutex, not an
// absl::Notification: ThreadSanitizer sees what it orders.)
class Answer {
 public:
  Membership::Done Done() {
    return [this](absl::StatusOr<Membership::Outcome> outcome) {
      sync::MutexLock lock(&mutex_);
      outcome_ = std::move(outcome);
      done_ = true;
    };
  }
  const absl::StatusOr<Membership::Outcome>& Wait() {
    sync::MutexLock lock(&mutex_);
    EXPECT_TRUE(mutex_.AwaitWithTimeout(
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return done_; }, absl::Seconds(60)));
    return outcome_;  // not written again once done
  }
  bool HasCome() const {
    sync::MutexLock lock(&mutex_);
    return done_;
  }

 private:
  mutable sync::Mutex mutex_;
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
  absl::StatusOr<Membership::Outcome> outcome_ ABSL_GUARDED_BY(mutex_) =
      absl::UnknownError("no answer");
};

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::NewTempDir("membership");
    testing::NodeConfSpec spec;
    spec.node_name = "node1";
    spec.port = 1215;
    ASSERT_TRUE(testing::WriteNodeConf(root_, spec).ok());
    peers_.SetConfig(config::LoadNodeConfig(root_).value());
  }

  Membership::Options Options() {
    Membership::Options options;
    options.root = root_;
    options.lock_wait = absl::Milliseconds(500);
    options.config_written = [this] { ++written_; };
    return options;
  }

  static MembershipChange Join(const std::string& node, const std::string& address = "") {
    return {MembershipChange::kJoin, node, address};
  }

  std::string root_;
  ClusterLock lock_{ClusterLock::Options()};
  Peers peers_{Peers::Options()};
  std::atomic<int> written_{0};
};

TEST_F(MembershipTest, AJoinIsWrittenAndReported) {
  Membership membership(Options(), &lock_, &peers_);
  Answer answer;
  membership.Submit(Join("node2", "10.0.0.2:1214"), answer.Done());
  const absl::StatusOr<Membership::Outcome>& outcome = answer.Wait();
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_THAT(outcome->view.nodes, ElementsAre("node1", "node2"));
  EXPECT_EQ(outcome->view.version, 1u);
  // The first member gives its own address too.
  EXPECT_EQ(outcome->view.addresses,
            (std::map<std::string, std::string>{{"node1", "127.0.0.1:1215"},
                                                {"node2", "10.0.0.2:1214"}}));
  EXPECT_TRUE(outcome->info.empty());
  EXPECT_THAT(outcome->config.cluster_nodes, ElementsAre("node1", "node2"));
  EXPECT_EQ(written_.load(), 1);
  EXPECT_THAT(config::LoadNodeConfig(root_)->cluster_nodes, ElementsAre("node1", "node2"));
  EXPECT_FALSE(lock_.IsHeldBy("node1", std::string(16, '\0')));
  // Joining twice writes nothing.
  Answer again;
  membership.Submit(Join("node2", "10.0.0.2:1214"), again.Done());
  ASSERT_TRUE(again.Wait().ok());
  EXPECT_EQ(again.Wait()->view.version, 1u);
  EXPECT_EQ(written_.load(), 1);
}

TEST_F(MembershipTest, ANodeCannotRemoveItself) {
  Membership membership(Options(), &lock_, &peers_);
  Answer answer;
  membership.Submit({MembershipChange::kLeave, "node1", ""}, answer.Done());
  EXPECT_EQ(answer.Wait().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(answer.Wait().status().message(),
            "node node1 cannot remove itself from the cluster: ask another member");
  EXPECT_EQ(written_.load(), 0);
}

// Another change holds this node's lock for longer than the wait: ABORTED, and
// nothing written.
TEST_F(MembershipTest, ALockHeldTooLongAbortsTheChange) {
  ASSERT_TRUE(lock_.Acquire("node9", ClusterLock::NewToken(), absl::Seconds(10))->granted);
  const std::string before = config::ReadFileToString(config::NodeConfigPath(root_), 1 << 20).value();
  Membership membership(Options(), &lock_, &peers_);
  Answer answer;
  membership.Submit(Join("node2"), answer.Done());
  EXPECT_EQ(answer.Wait().status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(answer.Wait().status().message(),
            "the cluster lock is held by node9 (at node1) for another membership change, "
            "for more than 500ms: try again");
  EXPECT_EQ(config::ReadFileToString(config::NodeConfigPath(root_), 1 << 20).value(), before);
  EXPECT_EQ(written_.load(), 0);
}

TEST_F(MembershipTest, TooManyWaitingChangesAreRefused) {
  ASSERT_TRUE(lock_.Acquire("node9", ClusterLock::NewToken(), absl::Seconds(10))->granted);
  Membership::Options options = Options();
  options.max_queued = 1;
  options.lock_wait = absl::Seconds(30);
  Membership membership(options, &lock_, &peers_);
  Answer running, refused;
  std::vector<std::unique_ptr<Answer>> probes;  // each kept until answered
  membership.Submit(Join("node2"), running.Done());
  // The first is taken by the worker (it waits for the lock), the next waits.
  while (true) {
    probes.push_back(std::make_unique<Answer>());
    membership.Submit(Join("node3"), probes.back()->Done());
    if (!probes.back()->HasCome()) {
      membership.Submit(Join("node4"), refused.Done());
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));  // the worker had not taken the first yet
  }
  for (size_t i = 0; i + 1 < probes.size(); ++i) {
    EXPECT_EQ(probes[i]->Wait().status().code(), absl::StatusCode::kResourceExhausted);
  }
  EXPECT_EQ(refused.Wait().status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.Wait().status().message(),
            "too many membership changes are waiting (1); retry later");
  // Stopping answers the running change and the waiting one.
  membership.Stop();
  EXPECT_EQ(running.Wait().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(running.Wait().status().message(), "the daemon is stopping");
  EXPECT_EQ(probes.back()->Wait().status().message(), "the daemon is stopping");
  Answer late;
  membership.Submit(Join("node5"), late.Done());
  EXPECT_EQ(late.Wait().status().message(), "the daemon is stopping");
  EXPECT_EQ(written_.load(), 0);
}

TEST_F(MembershipTest, LockRequestsGrantWithTheViewOnDisk) {
  Membership membership(Options(), &lock_, &peers_);
  ASSERT_TRUE(config::UpdateNodeConfig(root_, [](config::IniFile& ini) {
                return ini.Set("cluster", "nodes_version", "7");
              }).ok());
  v1::ClusterLockRequest request;
  request.set_token(ClusterLock::NewToken());
  absl::StatusOr<v1::ClusterLockReply> granted = membership.HandleLock("node2", request);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_TRUE(granted->granted());
  EXPECT_THAT(granted->nodes(), ElementsAre("node1"));
  EXPECT_EQ(granted->nodes_version(), 7u);
  v1::ClusterLockRequest other;
  other.set_token(ClusterLock::NewToken());
  absl::StatusOr<v1::ClusterLockReply> refused = membership.HandleLock("node3", other);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->granted());
  EXPECT_EQ(refused->held_by(), "node2");
  EXPECT_TRUE(refused->nodes().empty());
  request.set_release(true);
  EXPECT_TRUE(membership.HandleLock("node2", request).ok());
  EXPECT_FALSE(lock_.IsHeldBy("node2", request.token()));

  // A node.conf whose version is no number: no grant is left behind.
  ASSERT_TRUE(config::UpdateNodeConfig(root_, [](config::IniFile& ini) {
                return ini.Set("cluster", "nodes_version", "seven");
              }).ok());
  request.set_release(false);
  absl::StatusOr<v1::ClusterLockReply> broken = membership.HandleLock("node2", request);
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(lock_.IsHeldBy("node2", request.token()));
}

TEST_F(MembershipTest, PushesFromTheHolderAreWrittenOnce) {
  Membership membership(Options(), &lock_, &peers_);
  const std::string token = ClusterLock::NewToken();
  ASSERT_TRUE(lock_.Acquire("node2", token, absl::Seconds(10))->granted);
  v1::SetClusterMembersRequest push;
  push.set_lock_token(token);
  push.add_nodes("node1");
  push.add_nodes("node2");
  (*push.mutable_addresses())["node2"] = "10.0.0.2:1214";
  push.set_nodes_version(3);
  ASSERT_TRUE(membership.HandleSetMembers("node2", push).ok());
  EXPECT_EQ(written_.load(), 1);
  const config::NodeConfig config = config::LoadNodeConfig(root_).value();
  EXPECT_THAT(config.cluster_nodes, ElementsAre("node1", "node2"));
  EXPECT_EQ(config.node_addresses.at("node2"), "10.0.0.2:1214");
  EXPECT_EQ(config.ini.Get("cluster", "nodes_version"), "3");
  ASSERT_TRUE(membership.HandleSetMembers("node2", push).ok());  // the same: not rewritten
  EXPECT_EQ(written_.load(), 1);
  EXPECT_EQ(membership.HandleSetMembers("node3", push).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace omd::cluster

#include "cluster/cluster_lock.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sync/mutex.h"

namespace omd::cluster {
namespace {

// A clock the test moves by hand.
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
  std::function<absl::Time()> AsFunction() {
    return [this] { return Now(); };
  }

 private:
  mutable sync::Mutex mutex_;
  absl::Time now_ ABSL_GUARDED_BY(mutex_) = absl::UnixEpoch() + absl::Hours(1);
};

class ClusterLockTest : public ::testing::Test {
 protected:
  ClusterLock::Options Options() {
    ClusterLock::Options options;
    options.clock = clock_.AsFunction();
    return options;
  }

  FakeClock clock_;
  ClusterLock lock_{Options()};
  const std::string token1_ = ClusterLock::NewToken();
  const std::string token2_ = ClusterLock::NewToken();
};

TEST_F(ClusterLockTest, TokensAreFreshAndSized) {
  EXPECT_EQ(token1_.size(), ClusterLock::kTokenBytes);
  EXPECT_NE(token1_, token2_);
}

TEST_F(ClusterLockTest, OneHolderAtATime) {
  absl::StatusOr<ClusterLock::Grant> first = lock_.Acquire("node1", token1_, absl::Seconds(5));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->granted);
  EXPECT_EQ(first->lease, absl::Seconds(5));
  EXPECT_TRUE(lock_.IsHeldBy("node1", token1_));

  absl::StatusOr<ClusterLock::Grant> second = lock_.Acquire("node2", token2_, absl::Seconds(5));
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->granted);
  EXPECT_EQ(second->held_by, "node1");
  EXPECT_FALSE(lock_.IsHeldBy("node2", token2_));
  EXPECT_TRUE(lock_.IsHeldBy("node1", token1_));  // unchanged

  ASSERT_TRUE(lock_.Release("node1", token1_).ok());
  EXPECT_FALSE(lock_.IsHeldBy("node1", token1_));
  second = lock_.Acquire("node2", token2_, absl::Seconds(5));
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->granted);
}

TEST_F(ClusterLockTest, TheLeaseRunsOutByItself) {
  ASSERT_TRUE(lock_.Acquire("node1", token1_, absl::Seconds(3))->granted);
  clock_.Advance(absl::Seconds(3) - absl::Milliseconds(1));
  EXPECT_TRUE(lock_.IsHeldBy("node1", token1_));
  EXPECT_FALSE(lock_.Acquire("node2", token2_, absl::Seconds(3))->granted);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_FALSE(lock_.IsHeldBy("node1", token1_));
  EXPECT_TRUE(lock_.Acquire("node2", token2_, absl::Seconds(3))->granted);
  // The expired holder's release changes nothing, and says nothing is its.
  absl::Status late = lock_.Release("node1", token1_);
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(late.message(), "the cluster lock is held by node2, not by node1");
  EXPECT_TRUE(lock_.IsHeldBy("node2", token2_));
}

TEST_F(ClusterLockTest, LeasesAreCapped) {
  absl::StatusOr<ClusterLock::Grant> grant = lock_.Acquire("node1", token1_, absl::Hours(1));
  EXPECT_EQ(grant->lease, absl::Seconds(10));
  clock_.Advance(absl::Seconds(10));
  EXPECT_FALSE(lock_.IsHeldBy("node1", token1_));
  grant = lock_.Acquire("node1", token1_, absl::ZeroDuration());  // the default
  EXPECT_EQ(grant->lease, absl::Seconds(10));
}

TEST_F(ClusterLockTest, TheHolderRenews) {
  ASSERT_TRUE(lock_.Acquire("node1", token1_, absl::Seconds(4))->granted);
  clock_.Advance(absl::Seconds(3));
  ASSERT_TRUE(lock_.Acquire("node1", token1_, absl::Seconds(4))->granted);
  clock_.Advance(absl::Seconds(3));
  EXPECT_TRUE(lock_.IsHeldBy("node1", token1_));  // 6 s after the first grant
}

TEST_F(ClusterLockTest, AWrongTokenReleasesNothing) {
  ASSERT_TRUE(lock_.Acquire("node1", token1_, absl::Seconds(5))->granted);
  absl::Status wrong = lock_.Release("node1", token2_);
  EXPECT_EQ(wrong.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(wrong.message(), "the cluster lock is held by node1 under another token");
  absl::Status other = lock_.Release("node2", token1_);  // a token is not a name
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(other.message(), "the cluster lock is held by node1, not by node2");
  EXPECT_TRUE(lock_.IsHeldBy("node1", token1_));
  EXPECT_FALSE(lock_.IsHeldBy("node1", token2_));
  // Releasing a free lock is harmless (a retried release).
  ASSERT_TRUE(lock_.Release("node1", token1_).ok());
  EXPECT_TRUE(lock_.Release("node1", token1_).ok());
}

TEST_F(ClusterLockTest, AHoldersNewTokenTakesOverFromItsOldOne) {
  ASSERT_TRUE(lock_.Acquire("node1", token1_, absl::Seconds(5))->granted);
  ASSERT_TRUE(lock_.Acquire("node1", token2_, absl::Seconds(5))->granted);
  EXPECT_FALSE(lock_.IsHeldBy("node1", token1_));
  EXPECT_TRUE(lock_.IsHeldBy("node1", token2_));
  EXPECT_EQ(lock_.Release("node1", token1_).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ClusterLockTest, BadRequestsAreRefused) {
  absl::StatusOr<ClusterLock::Grant> short_token = lock_.Acquire("node1", "short", absl::Seconds(1));
  EXPECT_EQ(short_token.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(short_token.status().message(), "a cluster lock token must be 16 bytes");
  EXPECT_EQ(lock_.Acquire("", token1_, absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(lock_.Acquire("node2", token2_, absl::Seconds(1))->granted);  // still free
}

// Many would-be holders at once: exactly one holds it at any time.
TEST(ClusterLockConcurrencyTest, ExactlyOneHolderUnderContention) {
  ClusterLock lock{ClusterLock::Options()};
  std::atomic<int> holding{0};
  std::atomic<int> most{0};
  std::atomic<int> grants{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string name = "node" + std::to_string(t);
      const std::string token = ClusterLock::NewToken();
      for (int i = 0; i < 200; ++i) {
        absl::StatusOr<ClusterLock::Grant> grant = lock.Acquire(name, token, absl::Seconds(10));
        if (!grant.ok() || !grant->granted) continue;
        const int now = ++holding;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        ++grants;
        --holding;
        EXPECT_TRUE(lock.Release(name, token).ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(most.load(), 1);
  EXPECT_GT(grants.load(), 0);
}

}  // namespace
}  // namespace omd::cluster

#include "crypto/replay_guard.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace omd::crypto {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

TEST(ReplayGuardTest, AdmitsEachIdOnce) {
  ReplayGuard guard({});
  EXPECT_TRUE(guard.Admit("id-1", kNow, kNow).ok());
  EXPECT_TRUE(guard.Admit("id-2", kNow, kNow).ok());
  absl::Status replay = guard.Admit("id-1", kNow, kNow + absl::Seconds(5));
  EXPECT_EQ(replay.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(replay.message(), "replayed request");
  EXPECT_EQ(guard.size(), 2u);
}

TEST(ReplayGuardTest, ForgetsIdsOlderThanTheWindow) {
  ReplayGuard guard({.window = absl::Seconds(60)});
  ASSERT_TRUE(guard.Admit("old", kNow, kNow).ok());
  ASSERT_TRUE(guard.Admit("new", kNow + absl::Seconds(100), kNow + absl::Seconds(100)).ok());
  EXPECT_EQ(guard.size(), 1u);
}

TEST(ReplayGuardTest, FullGuardRaisesAFloorInsteadOfForgetting) {
  ReplayGuard guard({.window = absl::Seconds(60), .capacity = 2});
  ASSERT_TRUE(guard.Admit("a", kNow - absl::Seconds(3), kNow).ok());
  ASSERT_TRUE(guard.Admit("b", kNow - absl::Seconds(2), kNow).ok());
  // The third id overflows: the oldest second is dropped and becomes the floor.
  ASSERT_TRUE(guard.Admit("c", kNow - absl::Seconds(1), kNow).ok());
  EXPECT_EQ(guard.size(), 2u);
  // "a" was forgotten, but its replay is still refused, by the floor.
  EXPECT_EQ(guard.Admit("a", kNow - absl::Seconds(3), kNow).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(guard.Admit("b", kNow - absl::Seconds(2), kNow).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(guard.Admit("d", kNow, kNow).ok());
}

}  // namespace
}  // namespace omd::crypto

namespace omd::crypto {
namespace {

// Threads racing to admit the same ids: each id is admitted exactly once.
TEST(ReplayGuardTest, ConcurrentAdmitsAcceptEachIdOnce) {
  ReplayGuard guard({});
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (guard.Admit("id-" + std::to_string(i), kNow, kNow).ok()) ++admitted;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(admitted.load(), 1000);
  EXPECT_EQ(guard.size(), 1000u);
}

}  // namespace
}  // namespace omd::crypto

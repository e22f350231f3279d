#include "sync/mutex.h"

#include <cstdint>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace omd::sync {
namespace {

TEST(MutexTest, ExcludesConcurrentWriters) {
  Mutex mutex;
  int64_t counter = 0;  // guarded by mutex; TSan checks the claim
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        MutexLock lock(&mutex);
        ++counter;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  MutexLock lock(&mutex);
  EXPECT_EQ(counter, 80000);
}

TEST(MutexTest, AwaitReturnsOnceTheConditionHolds) {
  Mutex mutex;
  bool ready = false;
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(20));
    MutexLock lock(&mutex);
    ready = true;
  });
  {
    MutexLock lock(&mutex);
    mutex.Await([&] { return ready; });
    EXPECT_TRUE(ready);
  }
  setter.join();
}

TEST(MutexTest, AwaitWithTimeoutGivesUp) {
  Mutex mutex;
  MutexLock lock(&mutex);
  const absl::Time start = absl::Now();
  EXPECT_FALSE(mutex.AwaitWithTimeout([] { return false; }, absl::Milliseconds(50)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
  EXPECT_TRUE(mutex.AwaitWithTimeout([] { return true; }, absl::ZeroDuration()));
}

}  // namespace
}  // namespace omd::sync

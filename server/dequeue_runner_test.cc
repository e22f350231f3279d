#include "server/dequeue_runner.h"

#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/barrier.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::server {
namespace {

using ::testing::HasSubstr;

// Generous: only reached when something is broken.
constexpr absl::Duration kWaitLimit = absl::Seconds(30);

class DequeueRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmpdir = getenv("TEST_TMPDIR");
    ASSERT_NE(tmpdir, nullptr);
    runs_file_ = absl::StrCat(
        tmpdir, "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name(), ".runs");
  }

  // A command that appends a line to runs_file_ and then takes `duration`.
  DequeueRunner::Options RecordingCommand(const std::string& sleep_seconds) {
    DequeueRunner::Options options;
    options.argv = {"/bin/sh", "-c",
                    absl::StrCat("echo x >> '", runs_file_, "'; sleep ",
                                 sleep_seconds)};
    return options;
  }

  // Whether `count` runs reached the command's first line within kWaitLimit.
  bool WaitForRecordedRuns(int count) {
    const absl::Time deadline = absl::Now() + kWaitLimit;
    while (RecordedRuns() < count) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return true;
  }

  // How many runs reached the command's first line.
  int RecordedRuns() const {
    std::ifstream file(runs_file_);
    std::string contents((std::istreambuf_iterator<char>(file)),
                         std::istreambuf_iterator<char>());
    return static_cast<int>(std::count(contents.begin(), contents.end(), '\n'));
  }

  std::string runs_file_;
};

TEST_F(DequeueRunnerTest, NothingRunsWithoutATrigger) {
  DequeueRunner runner(RecordingCommand("0"));
  EXPECT_TRUE(runner.WaitForIdleForTesting(kWaitLimit));
  runner.Stop();
  EXPECT_EQ(runner.runs_started(), 0);
  EXPECT_EQ(runner.runs_completed(), 0);
  EXPECT_EQ(RecordedRuns(), 0);
}

TEST_F(DequeueRunnerTest, SingleTriggerRunsExactlyOnce) {
  DequeueRunner runner(RecordingCommand("0"));
  runner.Trigger();
  ASSERT_TRUE(runner.WaitForIdleForTesting(kWaitLimit));
  EXPECT_EQ(runner.runs_started(), 1);
  EXPECT_EQ(runner.runs_completed(), 1);
  EXPECT_EQ(RecordedRuns(), 1);
}

TEST_F(DequeueRunnerTest, TriggersAfterARunFinishedEachRunAgain) {
  DequeueRunner runner(RecordingCommand("0"));
  for (int i = 1; i <= 3; ++i) {
    runner.Trigger();
    ASSERT_TRUE(runner.WaitForIdleForTesting(kWaitLimit));
    EXPECT_EQ(runner.runs_completed(), i);
  }
  EXPECT_EQ(RecordedRuns(), 3);
}

TEST_F(DequeueRunnerTest, TriggersDuringARunCauseExactlyOneMoreRun) {
  DequeueRunner runner(RecordingCommand("0.5"));
  runner.Trigger();
  ASSERT_TRUE(runner.WaitForRunsStartedForTesting(1, kWaitLimit));
  for (int i = 0; i < 10; ++i) runner.Trigger();
  // The triggers above must have landed during the first run for this test
  // to mean anything.
  ASSERT_EQ(runner.runs_completed(), 0);

  ASSERT_TRUE(runner.WaitForIdleForTesting(kWaitLimit));
  EXPECT_EQ(runner.runs_started(), 2);
  EXPECT_EQ(runner.runs_completed(), 2);
  EXPECT_EQ(RecordedRuns(), 2);
}

TEST_F(DequeueRunnerTest, TriggersFromManyThreadsDuringARunCoalesce) {
  constexpr int kThreads = 16;
  constexpr int kTriggersPerThread = 50;
  DequeueRunner runner(RecordingCommand("0.5"));
  runner.Trigger();
  ASSERT_TRUE(runner.WaitForRunsStartedForTesting(1, kWaitLimit));

  absl::Barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&runner, &start] {
      start.Block();
      for (int i = 0; i < kTriggersPerThread; ++i) runner.Trigger();
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(runner.runs_completed(), 0);

  ASSERT_TRUE(runner.WaitForIdleForTesting(kWaitLimit));
  EXPECT_EQ(runner.runs_completed(), 2);
  EXPECT_EQ(RecordedRuns(), 2);
}

TEST_F(DequeueRunnerTest, ConcurrentTriggersWhileIdleAreNeitherLostNorMultiplied) {
  constexpr int kThreads = 16;
  constexpr int kTriggersPerThread = 20;
  DequeueRunner runner(RecordingCommand("0"));
  absl::Barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&runner, &start] {
      start.Block();
      for (int i = 0; i < kTriggersPerThread; ++i) runner.Trigger();
    });
  }
  for (std::thread& thread : threads) thread.join();

  ASSERT_TRUE(runner.WaitForIdleForTesting(kWaitLimit));
  // How many runs depends on timing; at least one after the last trigger, and
  // never more than one per trigger.
  EXPECT_GE(runner.runs_completed(), 1);
  EXPECT_LE(runner.runs_completed(), kThreads * kTriggersPerThread);
  EXPECT_EQ(runner.runs_started(), runner.runs_completed());
  EXPECT_EQ(RecordedRuns(), runner.runs_completed());
}

TEST_F(DequeueRunnerTest, TriggerReturnsImmediatelyDuringARun) {
  DequeueRunner runner(RecordingCommand("2"));
  runner.Trigger();
  ASSERT_TRUE(runner.WaitForRunsStartedForTesting(1, kWaitLimit));
  absl::Time before = absl::Now();
  runner.Trigger();
  absl::Duration took = absl::Now() - before;
  EXPECT_EQ(runner.runs_completed(), 0);
  EXPECT_LT(took, absl::Milliseconds(100)) << "a run takes 2s";
}

// A daemon must stop promptly: Stop() terminates the run in progress rather than
// waiting out its timeout, and starts no other.
TEST_F(DequeueRunnerTest, StopTerminatesTheCurrentRunAndStartsNoOther) {
  DequeueRunner runner(RecordingCommand("60"));
  runner.Trigger();
  ASSERT_TRUE(WaitForRecordedRuns(1));
  runner.Trigger();  // requested, but dropped (with a warning) by Stop
  const absl::Time before = absl::Now();
  runner.Stop();
  EXPECT_LT(absl::Now() - before, absl::Seconds(10));
  EXPECT_EQ(runner.runs_started(), 1);
  EXPECT_EQ(runner.runs_completed(), 1);
  EXPECT_EQ(RecordedRuns(), 1);

  runner.Trigger();  // ignored with a warning, must not crash or block
  runner.Stop();     // idempotent
  EXPECT_EQ(runner.runs_started(), 1);
}

TEST_F(DequeueRunnerTest, AHungRunIsKilledAtItsTimeout) {
  DequeueRunner::Options options = RecordingCommand("300");
  options.timeout = absl::Milliseconds(200);
  DequeueRunner runner(std::move(options));
  runner.Trigger();
  EXPECT_TRUE(runner.WaitForIdleForTesting(absl::Seconds(10)));
  EXPECT_EQ(runner.runs_completed(), 1);
}

TEST_F(DequeueRunnerTest, DestructorStopsARunningRunner) {
  const absl::Time before = absl::Now();
  {
    DequeueRunner runner(RecordingCommand("60"));
    runner.Trigger();
    ASSERT_TRUE(WaitForRecordedRuns(1));
  }
  EXPECT_LT(absl::Now() - before, absl::Seconds(10));
  EXPECT_EQ(RecordedRuns(), 1);
}

TEST_F(DequeueRunnerTest, FailedRunIsLoggedAndTheRunnerCarriesOn) {
  DequeueRunner::Options options;
  options.argv = {"/bin/sh", "-c",
                  "echo 'first problem' >&2; echo 'second line' >&2; exit 7"};
  DequeueRunner runner(std::move(options));

  ::testing::internal::CaptureStderr();
  runner.Trigger();
  bool idle = runner.WaitForIdleForTesting(kWaitLimit);
  std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(idle);
  EXPECT_EQ(runner.runs_completed(), 1);
  EXPECT_THAT(logged, HasSubstr("exit code 7"));
  EXPECT_THAT(logged, HasSubstr("first problem"));
  EXPECT_THAT(logged, ::testing::Not(HasSubstr("second line")));

  runner.Trigger();
  ASSERT_TRUE(runner.WaitForIdleForTesting(kWaitLimit));
  EXPECT_EQ(runner.runs_completed(), 2);
}

TEST_F(DequeueRunnerTest, MissingProgramIsLoggedAndCounted) {
  DequeueRunner::Options options;
  options.argv = {"/nonexistent/om"};
  DequeueRunner runner(std::move(options));

  ::testing::internal::CaptureStderr();
  runner.Trigger();
  bool idle = runner.WaitForIdleForTesting(kWaitLimit);
  std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(idle);
  EXPECT_EQ(runner.runs_completed(), 1);
  EXPECT_THAT(logged, HasSubstr("NOT_FOUND"));
}

TEST_F(DequeueRunnerTest, TimedOutRunIsLogged) {
  DequeueRunner::Options options;
  options.argv = {"/bin/sleep", "300"};
  options.timeout = absl::Milliseconds(100);
  DequeueRunner runner(std::move(options));

  ::testing::internal::CaptureStderr();
  runner.Trigger();
  bool idle = runner.WaitForIdleForTesting(kWaitLimit);
  std::string logged = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(idle);
  EXPECT_THAT(logged, HasSubstr("timed out after 100ms"));
}

TEST_F(DequeueRunnerTest, WaitForIdleTimesOutWhileARunIsInProgress) {
  DequeueRunner runner(RecordingCommand("2"));
  runner.Trigger();
  EXPECT_FALSE(runner.WaitForIdleForTesting(absl::Milliseconds(100)));
}

}  // namespace
}  // namespace omd::server

#include "daemon/supervisor.h"

#include <atomic>
#include <stdexcept>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/eventually.h"

namespace omd::daemon {
namespace {

using ::omd::testing::Eventually;

using ::testing::HasSubstr;

Supervisor::Options FastRestarts() {
  Supervisor::Options options;
  options.initial_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(40);
  return options;
}

// Polls `condition` for up to 10 s.
ThreadState StateOf(const Supervisor& supervisor, const std::string& id) {
  for (const ThreadState& state : supervisor.States()) {
    if (state.id == id) return state;
  }
  return ThreadState();
}

absl::Status RunUntilStopped(const StopSignal& stop) {
  while (!stop.WaitFor(absl::Seconds(1))) {
  }
  return absl::OkStatus();
}

TEST(SupervisorTest, ThreadsStartStopped) {
  Supervisor supervisor;
  supervisor.Add("worker", RunUntilStopped);
  EXPECT_EQ(StateOf(supervisor, "worker").state, "stopped");
  supervisor.StartAll();
  EXPECT_EQ(StateOf(supervisor, "worker").state, "running");
}

TEST(SupervisorTest, StoppedOnPurposeStaysStopped) {
  std::atomic<int> runs{0};
  Supervisor supervisor(FastRestarts());
  supervisor.Add("worker", [&runs](const StopSignal& stop) {
    ++runs;
    return RunUntilStopped(stop);
  });
  supervisor.StartAll();
  ASSERT_TRUE(supervisor.Stop("worker").ok());
  absl::SleepFor(absl::Milliseconds(100));  // several backoffs: nothing restarts it
  const ThreadState state = StateOf(supervisor, "worker");
  EXPECT_EQ(state.state, "stopped");
  EXPECT_EQ(state.restarts, 0u);
  EXPECT_EQ(runs.load(), 1);
  ASSERT_TRUE(supervisor.Start("worker").ok());
  EXPECT_TRUE(Eventually([&] { return runs.load() == 2; }));
  EXPECT_EQ(StateOf(supervisor, "worker").state, "running");
}

TEST(SupervisorTest, ErrorsExceptionsAndUnaskedReturnsAreRestarted) {
  std::atomic<int> runs{0};
  Supervisor supervisor(FastRestarts());
  supervisor.Add("flaky", [&runs](const StopSignal& stop) -> absl::Status {
    switch (++runs) {
      case 1:
        return absl::UnavailableError("cannot listen on 127.0.0.1:1: in use");
      case 2:
        throw std::runtime_error("injected crash");
      case 3:
        return absl::OkStatus();  // nobody asked it to stop
      default:
        return RunUntilStopped(stop);
    }
  });
  supervisor.StartAll();
  ASSERT_TRUE(Eventually([&] { return runs.load() == 4; }));
  const ThreadState state = StateOf(supervisor, "flaky");
  EXPECT_EQ(state.state, "running");
  EXPECT_EQ(state.restarts, 3u);
  EXPECT_THAT(state.last_error, HasSubstr("returned without being asked to stop"));
}

TEST(SupervisorTest, LastErrorNamesTheException) {
  Supervisor supervisor(FastRestarts());
  supervisor.Add("crashy", [](const StopSignal&) -> absl::Status {
    throw std::runtime_error("injected crash");
  });
  supervisor.StartAll();
  ASSERT_TRUE(Eventually([&] { return StateOf(supervisor, "crashy").restarts >= 2; }));
  EXPECT_THAT(StateOf(supervisor, "crashy").last_error, HasSubstr("injected crash"));
  // Stopping one that is waiting out its backoff works too, and it stays stopped.
  ASSERT_TRUE(supervisor.Stop("crashy").ok());
  EXPECT_EQ(StateOf(supervisor, "crashy").state, "stopped");
}

TEST(SupervisorTest, BackoffGrowsWhileItKeepsFailing) {
  std::atomic<int> runs{0};
  Supervisor::Options options;
  options.initial_backoff = absl::Milliseconds(50);
  options.max_backoff = absl::Milliseconds(400);
  Supervisor supervisor(options);
  supervisor.Add("failing", [&runs](const StopSignal&) {
    ++runs;
    return absl::InternalError("down");
  });
  supervisor.StartAll();
  // 50 + 100 + 200 + 400 ms of backoff before the fifth run: at 300 ms, no more
  // than 3 runs can have happened; without backoff there would be thousands.
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_LE(runs.load(), 3);
  EXPECT_GE(runs.load(), 1);
}

TEST(SupervisorTest, UnknownIdsAreNotFoundAndListTheKnownOnes) {
  Supervisor supervisor;
  supervisor.Add("listener", RunUntilStopped);
  supervisor.Add("housekeeper", RunUntilStopped);
  for (const absl::Status& status : {supervisor.Stop("nope"), supervisor.Start("nope")}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
    EXPECT_THAT(status.message(), HasSubstr("housekeeper, listener"));
  }
}

TEST(SupervisorTest, DoubleStartAndDoubleStopAreClearErrors) {
  Supervisor supervisor;
  supervisor.Add("worker", RunUntilStopped);
  EXPECT_EQ(supervisor.Stop("worker").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(supervisor.Start("worker").ok());
  const absl::Status again = supervisor.Start("worker");
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.message(), HasSubstr("already running"));
}

}  // namespace
}  // namespace omd::daemon

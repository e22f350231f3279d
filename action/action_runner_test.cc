// ActionRunner with real processes: action_test_program stands in for om.
#include "action/action_runner.h"

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sync/mutex.h"
#include "testing/eventually.h"
#include "testing/runfiles.h"

namespace omd::action {
namespace {

using ::omd::testing::Eventually;

using ::testing::HasSubstr;
using ::testing::SizeIs;

std::string TestProgram() { return ::omd::testing::Runfile("action/action_test_program"); }

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

ActionRunner::Options TestOptions() {
  ActionRunner::Options options;
  options.argv_prefix = {TestProgram()};
  return options;
}

ActionRunner::Request Command(std::vector<std::string> command, bool sync = true) {
  ActionRunner::Request request;
  request.svcname = "svc1";
  request.command = std::move(command);
  request.sync = sync;
  request.requested_by = "node2";
  return request;
}

// Polls `condition` every 20 ms for up to 20 s (a loaded machine is slow).
// What on_finished got, for the test's thread. Shared with the callback, which
// may still be returning when the test is done with it.
class Outcome {
 public:
  ActionRunner::OnFinished Callback() {
    return [state = state_](const v1::ActionStatus& finished) {
      sync::MutexLock lock(&state->mu);
      EXPECT_FALSE(state->status.has_value()) << "on_finished called twice";
      state->status = finished;
    };
  }
  // The finished action, waiting up to 30 s for it.
  std::optional<v1::ActionStatus> Wait() {
    sync::MutexLock lock(&state_->mu);
    State* const state = state_.get();
    state->mu.AwaitWithTimeout(
        [state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) { return state->status.has_value(); },
        absl::Seconds(30));
    return state->status;
  }
  bool done() {
    sync::MutexLock lock(&state_->mu);
    return state_->status.has_value();
  }

 private:
  struct State {
    sync::Mutex mu;
    std::optional<v1::ActionStatus> status ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// Gone: no such process, or a zombie nobody has reaped yet (an orphan's reaper
// may be slow); bounded by Eventually.
bool ProcessGone(int64_t pid) {
  if (kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return true;
  const size_t after_name = line.rfind(')');
  return after_name != std::string::npos && after_name + 2 < line.size() &&
         line[after_name + 2] == 'Z';
}

int64_t ReadPid(const std::string& path) {
  std::ifstream file(path);
  std::string text;
  std::getline(file, text);
  int64_t pid = 0;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) ? pid : 0;
}

TEST(ActionRunnerTest, ASyncActionGivesItsOutputAndExitCode) {
  ActionRunner runner(TestOptions());
  Outcome outcome;
  absl::StatusOr<std::string> id =
      runner.Start(Command({"print", "hello\n", "warning\n", "0"}), outcome.Callback());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->size(), 32u);
  EXPECT_TRUE(std::all_of(id->begin(), id->end(), [](char c) {
    return absl::ascii_isxdigit(static_cast<unsigned char>(c));
  })) << *id;
  std::optional<v1::ActionStatus> finished = outcome.Wait();
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->session_id(), *id);
  EXPECT_EQ(finished->state(), kSucceeded);
  EXPECT_EQ(finished->exit_code(), 0);
  EXPECT_EQ(finished->stdout(), "hello\n");
  EXPECT_EQ(finished->stderr(), "warning\n");
  EXPECT_FALSE(finished->stdout_truncated());
  EXPECT_FALSE(finished->stderr_truncated());
  EXPECT_GT(finished->pid(), 0);
  EXPECT_EQ(finished->svcname(), "svc1");
  EXPECT_THAT(finished->command(), ::testing::ElementsAre("print", "hello\n", "warning\n", "0"));
  EXPECT_EQ(finished->requested_by(), "node2");
  EXPECT_TRUE(finished->sync());
  EXPECT_GT(finished->started_unix_ms(), 0);
  EXPECT_GE(finished->finished_unix_ms(), finished->started_unix_ms());
}

TEST(ActionRunnerTest, ANonZeroExitIsAFailureWithItsCode) {
  ActionRunner runner(TestOptions());
  Outcome outcome;
  ASSERT_TRUE(runner.Start(Command({"print", "", "it broke\n", "3"}), outcome.Callback()).ok());
  std::optional<v1::ActionStatus> finished = outcome.Wait();
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->state(), kFailed);
  EXPECT_EQ(finished->exit_code(), 3);
  EXPECT_EQ(finished->stderr(), "it broke\n");
}

TEST(ActionRunnerTest, AProgramThatDoesNotExistIsAFailure) {
  ActionRunner::Options options;
  options.argv_prefix = {TempPath("no-such-om")};
  ActionRunner runner(std::move(options));
  Outcome outcome;
  ASSERT_TRUE(runner.Start(Command({"start"}), outcome.Callback()).ok());
  std::optional<v1::ActionStatus> finished = outcome.Wait();
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->state(), kFailed);
  EXPECT_EQ(finished->exit_code(), -1);
  EXPECT_THAT(finished->stderr(), HasSubstr("could not run"));
  EXPECT_THAT(finished->stderr(), HasSubstr("NOT_FOUND"));
}

TEST(ActionRunnerTest, AnAsyncActionIsListedRunningThenWithItsResult) {
  ActionRunner runner(TestOptions());
  const absl::Time before = absl::Now();
  absl::StatusOr<std::string> id = runner.Start(Command({"sleep", "2"}, /*sync=*/false));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_LT(absl::Now() - before, absl::Seconds(1)) << "Start must not wait for the action";
  absl::StatusOr<std::vector<v1::ActionStatus>> listed = runner.List(*id);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_THAT(*listed, SizeIs(1));
  EXPECT_EQ((*listed)[0].state(), kRunning);
  EXPECT_EQ((*listed)[0].finished_unix_ms(), 0);
  EXPECT_FALSE((*listed)[0].sync());
  EXPECT_EQ(runner.running(), 1);
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<std::vector<v1::ActionStatus>> now = runner.List(*id);
    return now.ok() && now->size() == 1 && (*now)[0].state() == kSucceeded;
  }));
  listed = runner.List("");
  ASSERT_TRUE(listed.ok());
  ASSERT_THAT(*listed, SizeIs(1));
  EXPECT_EQ((*listed)[0].exit_code(), 0);
  EXPECT_GT((*listed)[0].pid(), 0);
  EXPECT_GE((*listed)[0].finished_unix_ms() - (*listed)[0].started_unix_ms(), 1900);
  EXPECT_EQ(runner.running(), 0);
}

TEST(ActionRunnerTest, AnUnknownIdIsNotFound) {
  ActionRunner runner(TestOptions());
  absl::StatusOr<std::vector<v1::ActionStatus>> listed = runner.List("0123abcd");
  EXPECT_EQ(listed.status().code(), absl::StatusCode::kNotFound) << listed.status();
  EXPECT_THAT(listed.status().message(), HasSubstr("0123abcd"));
  listed = runner.List("");
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT(*listed, SizeIs(0));
}

// The action and what it started are killed at its timeout: SIGTERM to its
// process group, then (ignore-term) SIGKILL.
class HangTest : public ::testing::TestWithParam<bool> {};

TEST_P(HangTest, AHangingActionAndItsChildrenAreKilledAtItsTimeout) {
  const bool ignore_term = GetParam();
  ActionRunner runner(TestOptions());
  const std::string pid_file = TempPath(absl::StrCat("hang", ignore_term, ".pid"));
  std::remove(pid_file.c_str());
  ActionRunner::Request request = Command({"hang", pid_file});
  if (ignore_term) request.command.push_back("ignore-term");
  request.timeout = absl::Seconds(1);
  Outcome outcome;
  const absl::Time started = absl::Now();
  ASSERT_TRUE(runner.Start(request, outcome.Callback()).ok());
  ASSERT_TRUE(Eventually([&] { return ReadPid(pid_file) > 0; }));
  const int64_t child = ReadPid(pid_file);
  EXPECT_FALSE(ProcessGone(child));
  std::optional<v1::ActionStatus> finished = outcome.Wait();
  ASSERT_TRUE(finished.has_value());
  EXPECT_GE(absl::Now() - started, absl::Seconds(1));
  EXPECT_EQ(finished->state(), kTimedOut);
  EXPECT_EQ(finished->exit_code(), -1);
  EXPECT_EQ(finished->stdout(), "hanging\n");
  ASSERT_GT(finished->pid(), 0);
  EXPECT_TRUE(Eventually([&] { return ProcessGone(finished->pid()); }, absl::Seconds(5)));
  EXPECT_TRUE(Eventually([&] { return ProcessGone(child); }, absl::Seconds(5)))
      << "the action's child " << child << " outlived it";
}

INSTANTIATE_TEST_SUITE_P(Signals, HangTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "IgnoringTerm" : "Plain"; });

TEST(ActionRunnerTest, ASyncActionEndsWithItsCallersDeadline) {
  ActionRunner runner(TestOptions());
  ActionRunner::Request request = Command({"sleep", "60"});
  request.deadline = absl::Now() + absl::Seconds(1);
  Outcome outcome;
  const absl::Time started = absl::Now();
  ASSERT_TRUE(runner.Start(request, outcome.Callback()).ok());
  std::optional<v1::ActionStatus> finished = outcome.Wait();
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->state(), kTimedOut);
  // Killed kReplyMargin before the deadline (SIGTERM ends `sleep` at once).
  EXPECT_LT(absl::Now() - started, absl::Seconds(10));

  request.deadline = absl::Now() + kReplyMargin / 2;
  absl::StatusOr<std::string> late = runner.Start(request, outcome.Callback());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded) << late.status();
  absl::StatusOr<std::vector<v1::ActionStatus>> listed = runner.List("");
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT(*listed, SizeIs(1));
}

TEST(ActionRunnerTest, PastTheCapNothingRuns) {
  ActionRunner::Options options = TestOptions();
  options.max_running = 2;
  ActionRunner runner(std::move(options));
  const std::string marker = TempPath("cap.pid");
  std::remove(marker.c_str());
  ASSERT_TRUE(runner.Start(Command({"sleep", "60"}, false)).ok());
  ASSERT_TRUE(runner.Start(Command({"sleep", "60"}, false)).ok());
  Outcome outcome;
  absl::StatusOr<std::string> third =
      runner.Start(Command({"hang", marker}, false), outcome.Callback());
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted) << third.status();
  EXPECT_THAT(third.status().message(), HasSubstr("2 actions are running"));
  absl::StatusOr<std::vector<v1::ActionStatus>> listed = runner.List("");
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT(*listed, SizeIs(2));
  EXPECT_EQ(runner.running(), 2);
  runner.Stop();
  EXPECT_FALSE(outcome.done());
  EXPECT_EQ(ReadPid(marker), 0) << "the refused action ran";
}

TEST(ActionRunnerTest, BadRequestsAreRefusedAndNothingRuns) {
  std::atomic<int> checks{0};
  ActionRunner::Options options = TestOptions();
  options.check_command = [&checks](absl::string_view,
                                    absl::Span<const std::string> command) {
    ++checks;
    if (!command.empty() && command[0] == "--root") {
      return absl::InvalidArgumentError("om's global flags are not for actions");
    }
    return absl::OkStatus();
  };
  ActionRunner runner(std::move(options));
  const std::vector<std::string> good = {"print", "x", "", "0"};
  for (const std::string& name : std::vector<std::string>{"", "Web", "a_b", "a..b", "-web", ".web", "daemon", "node", "svc", "a/b",
        std::string(64, 'a')}) {
    ActionRunner::Request request = Command(good);
    request.svcname = name;
    absl::StatusOr<std::string> id = runner.Start(request);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(id.status().message(), HasSubstr("service name")) << name;
  }
  EXPECT_EQ(checks.load(), 0);
  std::vector<std::vector<std::string>> bad_commands = {
      {}, {"print", std::string("a\0b", 3), "", "0"},
      {"print", std::string(kMaxArgumentBytes + 1, 'a'), "", "0"},
      std::vector<std::string>(kMaxCommandArguments + 1, "x")};
  for (const std::vector<std::string>& command : bad_commands) {
    absl::StatusOr<std::string> id = runner.Start(Command(command));
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << id.status();
  }
  EXPECT_EQ(checks.load(), 0);
  absl::StatusOr<std::string> flagged = runner.Start(Command({"--root", "/"}));
  EXPECT_EQ(flagged.status(), absl::InvalidArgumentError("om's global flags are not for actions"));
  EXPECT_EQ(checks.load(), 1);
  absl::StatusOr<std::vector<v1::ActionStatus>> listed = runner.List("");
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT(*listed, SizeIs(0));
  EXPECT_EQ(runner.running(), 0);

  // The longest of everything is fine.
  ActionRunner::Request longest =
      Command(std::vector<std::string>(kMaxCommandArguments, std::string(kMaxArgumentBytes, 'a')));
  longest.svcname = std::string(63, 'a');
  longest.command[0] = "sleep";
  longest.command[1] = "0";
  Outcome outcome;
  ASSERT_TRUE(runner.Start(longest, outcome.Callback()).ok());
  EXPECT_TRUE(outcome.Wait().has_value());
}

TEST(ActionRunnerTest, FinishedActionsAreKeptUpToACount) {
  ActionRunner::Options options = TestOptions();
  options.keep_finished = 3;
  ActionRunner runner(std::move(options));
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    Outcome outcome;
    absl::StatusOr<std::string> id =
        runner.Start(Command({"print", absl::StrCat(i), "", "0"}), outcome.Callback());
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(outcome.Wait().has_value());
    ids.push_back(*id);
  }
  absl::StatusOr<std::vector<v1::ActionStatus>> listed = runner.List("");
  ASSERT_TRUE(listed.ok());
  ASSERT_THAT(*listed, SizeIs(3));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*listed)[i].session_id(), ids[i + 2]);  // by start time
    EXPECT_EQ((*listed)[i].stdout(), absl::StrCat(i + 2));
  }
  EXPECT_EQ(runner.List(ids[0]).status().code(), absl::StatusCode::kNotFound);
}

TEST(ActionRunnerTest, FinishedActionsAreKeptForAWhile) {
  sync::Mutex clock_mu;
  absl::Time now = absl::FromUnixSeconds(1800000000);
  ActionRunner::Options options = TestOptions();
  options.keep_finished_for = absl::Minutes(10);
  options.clock = [&] {
    sync::MutexLock lock(&clock_mu);
    return now;
  };
  auto advance = [&](absl::Duration by) {
    sync::MutexLock lock(&clock_mu);
    now += by;
  };
  ActionRunner runner(std::move(options));
  Outcome first;
  absl::StatusOr<std::string> old_id =
      runner.Start(Command({"print", "", "", "0"}), first.Callback());
  ASSERT_TRUE(old_id.ok());
  ASSERT_TRUE(first.Wait().has_value());
  EXPECT_EQ(first.Wait()->started_unix_ms(), int64_t{1800000000} * 1000);
  advance(absl::Minutes(6));
  Outcome second;
  absl::StatusOr<std::string> new_id =
      runner.Start(Command({"print", "", "", "0"}), second.Callback());
  ASSERT_TRUE(new_id.ok());
  ASSERT_TRUE(second.Wait().has_value());
  absl::StatusOr<std::vector<v1::ActionStatus>> listed = runner.List("");
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT(*listed, SizeIs(2));
  advance(absl::Minutes(5));  // the first is 11 minutes old, the second 5
  listed = runner.List("");
  ASSERT_TRUE(listed.ok());
  ASSERT_THAT(*listed, SizeIs(1));
  EXPECT_EQ((*listed)[0].session_id(), *new_id);
  EXPECT_EQ(runner.List(*old_id).status().code(), absl::StatusCode::kNotFound);
  advance(absl::Minutes(10));
  listed = runner.List("");
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT(*listed, SizeIs(0));
}

TEST(ActionRunnerTest, StopEndsRunningActionsPromptly) {
  ActionRunner runner(TestOptions());
  Outcome outcomes[3];
  for (Outcome& outcome : outcomes) {
    ASSERT_TRUE(runner.Start(Command({"sleep", "600"}, false), outcome.Callback()).ok());
  }
  EXPECT_EQ(runner.running(), 3);
  const absl::Time stopping = absl::Now();
  runner.Stop();
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(10));
  for (Outcome& outcome : outcomes) {
    ASSERT_TRUE(outcome.done());
    EXPECT_EQ(outcome.Wait()->state(), kCancelled);
  }
  EXPECT_EQ(runner.running(), 0);
  absl::StatusOr<std::string> late = runner.Start(Command({"sleep", "0"}));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnavailable) << late.status();
  runner.Stop();  // idempotent
  absl::StatusOr<std::vector<v1::ActionStatus>> listed = runner.List("");
  ASSERT_TRUE(listed.ok());
  EXPECT_THAT(*listed, SizeIs(3));
}

TEST(ActionRunnerTest, OutputIsCappedPerStream) {
  ActionRunner::Options options = TestOptions();
  options.max_output_bytes = 10000;
  ActionRunner runner(std::move(options));
  Outcome over;
  ASSERT_TRUE(runner.Start(Command({"flood", "50000"}), over.Callback()).ok());
  std::optional<v1::ActionStatus> finished = over.Wait();
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->state(), kSucceeded);
  EXPECT_EQ(finished->stdout().size(), 10000u);
  EXPECT_EQ(finished->stderr().size(), 10000u);
  EXPECT_TRUE(finished->stdout_truncated());
  EXPECT_TRUE(finished->stderr_truncated());
  Outcome exact;
  ASSERT_TRUE(runner.Start(Command({"flood", "10000"}), exact.Callback()).ok());
  finished = exact.Wait();
  ASSERT_TRUE(finished.has_value());
  EXPECT_EQ(finished->stdout().size(), 10000u);
  EXPECT_FALSE(finished->stdout_truncated());
  EXPECT_FALSE(finished->stderr_truncated());
}

TEST(ActionRunnerTest, ManyThreadsStartActionsAtOnce) {
  ActionRunner::Options options = TestOptions();
  options.max_running = 4;
  options.keep_finished = 1000;
  ActionRunner runner(std::move(options));
  std::atomic<int> started{0};
  std::atomic<int> refused{0};
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        absl::StatusOr<std::string> id = runner.Start(
            Command({"print", absl::StrCat(t, "-", i), "", "0"}, i % 2 == 0),
            [&](const v1::ActionStatus& status) {
              EXPECT_EQ(status.state(), kSucceeded);
              ++finished;
            });
        if (id.ok()) {
          ++started;
        } else {
          EXPECT_EQ(id.status().code(), absl::StatusCode::kResourceExhausted) << id.status();
          ++refused;
        }
        absl::StatusOr<std::vector<v1::ActionStatus>> listed = runner.List("");
        EXPECT_TRUE(listed.ok());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(started + refused, 40);
  EXPECT_GT(started.load(), 0);
  ASSERT_TRUE(runner.WaitForIdleForTesting(absl::Seconds(60)));
  ASSERT_TRUE(Eventually([&] { return finished.load() == started.load(); }));
  absl::StatusOr<std::vector<v1::ActionStatus>> listed = runner.List("");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(static_cast<int>(listed->size()), started.load());
  for (size_t i = 1; i < listed->size(); ++i) {
    EXPECT_LE((*listed)[i - 1].started_unix_ms(), (*listed)[i].started_unix_ms());
  }
}

}  // namespace
}  // namespace omd::action

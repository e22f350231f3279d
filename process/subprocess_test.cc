#include "process/subprocess.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::process {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

ProcessOptions Shell(const std::string& script) {
  ProcessOptions options;
  options.argv = {"/bin/sh", "-c", script};
  return options;
}

// True when the process is gone or a zombie (its parent may be a container
// init that never reaps); either way it no longer runs.
bool ProcessIsDead(int64_t pid) {
  std::string path = absl::StrCat("/proc/", pid, "/stat");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;
  char buffer[512];
  ssize_t count = read(fd, buffer, sizeof(buffer));
  close(fd);
  if (count <= 0) return true;  // ESRCH: it went away while we looked
  std::string contents(buffer, static_cast<size_t>(count));
  // "pid (comm) S ...": the state follows the last ')'.
  size_t paren = contents.rfind(')');
  if (paren == std::string::npos || paren + 2 >= contents.size()) return true;
  char state = contents[paren + 2];
  return state == 'Z' || state == 'X';
}

// A killed process closes its files a moment before it becomes a zombie, so
// RunProcess seeing the pipes close does not mean /proc shows it dead yet.
bool WaitUntilDead(int64_t pid, absl::Duration limit) {
  absl::Time give_up = absl::Now() + limit;
  while (!ProcessIsDead(pid)) {
    if (absl::Now() >= give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

int CountOpenFds() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (readdir(dir) != nullptr) ++count;
  closedir(dir);
  return count;
}

TEST(RunProcessTest, ExitCodeZero) {
  absl::StatusOr<ProcessResult> result = RunProcess(Shell("exit 0"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->term_signal, 0);
  EXPECT_FALSE(result->timed_out);
  EXPECT_FALSE(result->output_truncated);
  EXPECT_GT(result->pid, 0);
}

TEST(RunProcessTest, NonZeroExitCodeIsAResultNotAnError) {
  absl::StatusOr<ProcessResult> result = RunProcess(Shell("exit 42"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 42);
  EXPECT_EQ(result->term_signal, 0);
}

TEST(RunProcessTest, KilledBySignalReportsTheSignal) {
  absl::StatusOr<ProcessResult> result = RunProcess(Shell("kill -USR1 $$"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, -1);
  EXPECT_EQ(result->term_signal, SIGUSR1);
  EXPECT_FALSE(result->timed_out);
}

TEST(RunProcessTest, SeparatesStdoutFromStderr) {
  absl::StatusOr<ProcessResult> result =
      RunProcess(Shell("echo to-out; echo to-err >&2; echo more-out"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stdout_text, "to-out\nmore-out\n");
  EXPECT_EQ(result->stderr_text, "to-err\n");
}

TEST(RunProcessTest, ArgumentsArePassedVerbatim) {
  ProcessOptions options;
  options.argv = {"/bin/echo", "a b", "$(id)", "'q'", ";", "*"};
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stdout_text, "a b $(id) 'q' ; *\n");
}

TEST(RunProcessTest, FindsProgramInPath) {
  ProcessOptions options;
  options.argv = {"echo", "found"};
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stdout_text, "found\n");
}

TEST(RunProcessTest, StdinIsDevNull) {
  ProcessOptions options;
  options.argv = {"/bin/cat"};
  options.timeout = absl::Seconds(10);
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_FALSE(result->timed_out);
  EXPECT_THAT(result->stdout_text, IsEmpty());
}

TEST(RunProcessTest, RunsInWorkingDirectory) {
  const char* tmpdir = getenv("TEST_TMPDIR");
  ASSERT_NE(tmpdir, nullptr);
  std::string directory = absl::StrCat(tmpdir, "/workdir");
  mkdir(directory.c_str(), 0700);
  char* resolved = realpath(directory.c_str(), nullptr);
  ASSERT_NE(resolved, nullptr);
  std::string expected = resolved;
  free(resolved);

  ProcessOptions options;
  options.argv = {"/bin/pwd", "-P"};
  options.working_directory = directory;
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stdout_text, expected + "\n");
}

TEST(RunProcessTest, MissingWorkingDirectoryIsInvalidArgument) {
  ProcessOptions options;
  options.argv = {"/bin/true"};
  options.working_directory = "/nonexistent/omd-test-directory";
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("working directory"));
}

TEST(RunProcessTest, LargeOutputIsTruncatedWithoutDeadlock) {
  // Several megabytes on both streams at once: more than any pipe buffer, so
  // this only finishes if both are drained concurrently past the cap.
  ProcessOptions options =
      Shell("head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2; "
            "head -c 3000000 /dev/zero; echo done >&2");
  options.max_output_bytes = 1000;
  options.timeout = absl::Seconds(60);
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->timed_out);
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_TRUE(result->output_truncated);
  EXPECT_EQ(result->stdout_text.size(), 1000u);
  EXPECT_EQ(result->stderr_text.size(), 1000u);
}

TEST(RunProcessTest, OutputAtExactlyTheCapIsNotTruncated) {
  ProcessOptions options = Shell("printf 12345");
  options.max_output_bytes = 5;
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->stdout_text, "12345");
  EXPECT_FALSE(result->output_truncated);
}

TEST(RunProcessTest, TimeoutKillsTheWholeProcessGroup) {
  // The grandchild `sleep` holds the stdout pipe too; RunProcess can only
  // return early if the group signal reached it.
  ProcessOptions options = Shell("sleep 300 & echo $!; wait");
  options.timeout = absl::Milliseconds(300);
  absl::Time start = absl::Now();
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  absl::Duration elapsed = absl::Now() - start;
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->timed_out);
  EXPECT_EQ(result->exit_code, -1);
  EXPECT_EQ(result->term_signal, SIGTERM);
  EXPECT_LT(elapsed, absl::Seconds(2)) << "SIGTERM should have sufficed";

  int64_t grandchild_pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(result->stdout_text),
                               &grandchild_pid))
      << result->stdout_text;
  EXPECT_TRUE(WaitUntilDead(grandchild_pid, absl::Seconds(5)))
      << "grandchild " << grandchild_pid << " survived the timeout";
  EXPECT_TRUE(ProcessIsDead(result->pid));  // reaped by RunProcess
}

TEST(RunProcessTest, TimeoutEscalatesToSigkillWhenSigtermIsIgnored) {
  // An ignored signal stays ignored across exec, so `sleep` ignores it too.
  ProcessOptions options = Shell("trap '' TERM; sleep 300 & echo $!; wait");
  options.timeout = absl::Milliseconds(200);
  absl::Time start = absl::Now();
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  absl::Duration elapsed = absl::Now() - start;
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->timed_out);
  EXPECT_EQ(result->term_signal, SIGKILL);
  EXPECT_GE(elapsed, absl::Seconds(2));  // the grace period was honoured
  EXPECT_LT(elapsed, absl::Seconds(10));

  int64_t grandchild_pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(result->stdout_text),
                               &grandchild_pid));
  EXPECT_TRUE(WaitUntilDead(grandchild_pid, absl::Seconds(5)))
      << "grandchild " << grandchild_pid << " survived the timeout";
}

TEST(RunProcessTest, TimeoutAppliesToAChildThatClosedItsOutput) {
  ProcessOptions options = Shell("exec >&- 2>&-; sleep 300");
  options.timeout = absl::Milliseconds(200);
  absl::Time start = absl::Now();
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->timed_out);
  EXPECT_EQ(result->term_signal, SIGTERM);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(RunProcessTest, FinishingBeforeTheTimeoutIsNotTimedOut) {
  ProcessOptions options = Shell("echo quick");
  options.timeout = absl::Seconds(30);
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->timed_out);
  EXPECT_EQ(result->stdout_text, "quick\n");
}

TEST(RunProcessTest, MissingProgramPathIsNotFound) {
  ProcessOptions options;
  options.argv = {"/nonexistent/omd-no-such-program"};
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(result.status().message(), HasSubstr("omd-no-such-program"));
}

TEST(RunProcessTest, MissingProgramNameInPathIsNotFound) {
  ProcessOptions options;
  options.argv = {"omd-no-such-program-in-path"};
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
}

TEST(RunProcessTest, NonExecutableFileIsInternal) {
  const char* tmpdir = getenv("TEST_TMPDIR");
  ASSERT_NE(tmpdir, nullptr);
  std::string path = absl::StrCat(tmpdir, "/not-executable");
  std::ofstream(path) << "#!/bin/sh\necho no\n";
  chmod(path.c_str(), 0600);
  ProcessOptions options;
  options.argv = {path};
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(result.status().message(), HasSubstr("ermission denied"));
}

TEST(RunProcessTest, EmptyArgvIsInvalidArgument) {
  ProcessOptions options;
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RunProcessTest, ArgumentWithNulIsInvalidArgument) {
  ProcessOptions options;
  options.argv = {"/bin/echo", std::string("a\0b", 3)};
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("NUL"));
}

TEST(RunProcessTest, ConcurrentRunsKeepTheirOwnOutput) {
  constexpr int kThreads = 16;
  constexpr int kRunsPerThread = 5;
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &mismatches, &errors] {
      for (int run = 0; run < kRunsPerThread; ++run) {
        std::string token = absl::StrCat("thread-", t, "-run-", run);
        ProcessOptions options;
        options.argv = {"/bin/sh", "-c", "echo \"$1\"; echo \"$1\" >&2", "sh",
                        token};
        options.timeout = absl::Seconds(60);
        absl::StatusOr<ProcessResult> result = RunProcess(options);
        if (!result.ok() || result->exit_code != 0) {
          ++errors;
          continue;
        }
        if (result->stdout_text != token + "\n" ||
            result->stderr_text != token + "\n") {
          ++mismatches;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(RunProcessTest, LeaksNoFileDescriptors) {
  int before = CountOpenFds();
  ASSERT_GT(before, 0);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(RunProcess(Shell("echo x; echo y >&2")).ok());
  }
  ProcessOptions missing;
  missing.argv = {"/nonexistent/program"};
  ASSERT_FALSE(RunProcess(missing).ok());
  ProcessOptions timing_out = Shell("sleep 300");
  timing_out.timeout = absl::Milliseconds(50);
  ASSERT_TRUE(RunProcess(timing_out).ok());
  EXPECT_EQ(CountOpenFds(), before);
}

// Cancelling from another thread ends the run at once, as a timeout would, but
// is reported as a cancellation.
TEST(RunProcessTest, CancellationTerminatesTheGroup) {
  Cancellation cancellation;
  ProcessOptions options;
  options.argv = {"/bin/sh", "-c", "sleep 30 & sleep 30; echo never"};
  options.cancellation = &cancellation;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(200));
    cancellation.Cancel();
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  canceller.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->cancelled);
  EXPECT_FALSE(result->timed_out);
  EXPECT_EQ(result->term_signal, SIGTERM);
  EXPECT_EQ(result->stdout_text, "");
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_TRUE(cancellation.cancelled());
}

TEST(RunProcessTest, AlreadyCancelledStartsNothing) {
  Cancellation cancellation;
  cancellation.Cancel();
  const std::string marker = absl::StrCat(::testing::TempDir(), "/started");
  ProcessOptions options;
  options.argv = {"/usr/bin/touch", marker};
  options.cancellation = &cancellation;
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  struct stat info;
  EXPECT_NE(stat(marker.c_str(), &info), 0);
}

TEST(RunProcessTest, AnUnusedCancellationChangesNothing) {
  Cancellation cancellation;
  ProcessOptions options;
  options.argv = {"/bin/echo", "hello"};
  options.cancellation = &cancellation;
  absl::StatusOr<ProcessResult> result = RunProcess(options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->cancelled);
  EXPECT_EQ(result->stdout_text, "hello\n");
  EXPECT_FALSE(cancellation.cancelled());
}

// An editor's view: the terminal's streams, not pipes or /dev/null. Here the
// "terminal" is a file for input and one for output.
TEST(RunAttachedTest, SharesThisProcesssStandardStreams) {
  const std::string input_path = absl::StrCat(::testing::TempDir(), "/attached.in");
  const std::string output_path = absl::StrCat(::testing::TempDir(), "/attached.out");
  std::ofstream(input_path) << "typed by a person\n";
  const int input = open(input_path.c_str(), O_RDONLY | O_CLOEXEC);
  const int output = open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(input, 0);
  ASSERT_GE(output, 0);
  fflush(stdout);
  const int saved_stdin = dup(STDIN_FILENO);
  const int saved_stdout = dup(STDOUT_FILENO);
  ASSERT_EQ(dup2(input, STDIN_FILENO), STDIN_FILENO);
  ASSERT_EQ(dup2(output, STDOUT_FILENO), STDOUT_FILENO);
  absl::StatusOr<ProcessResult> result =
      RunAttached({"/bin/sh", "-c", "read line; echo \"read: $line\""});
  dup2(saved_stdin, STDIN_FILENO);
  dup2(saved_stdout, STDOUT_FILENO);
  for (int fd : {saved_stdin, saved_stdout, input, output}) close(fd);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  std::ifstream written(output_path);
  std::string line;
  std::getline(written, line);
  EXPECT_EQ(line, "read: typed by a person");
}

TEST(RunAttachedTest, ReportsTheExitCodeOrTheSignal) {
  absl::StatusOr<ProcessResult> result = RunAttached({"/bin/sh", "-c", "exit 3"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 3);
  result = RunAttached({"/bin/sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, -1);
  EXPECT_EQ(result->term_signal, SIGTERM);
}

// Ctrl-C on the terminal goes to the whole foreground group: the editor's to
// handle, not a reason for its caller to die meanwhile.
TEST(RunAttachedTest, IgnoresInterruptsWhileTheChildRunsThenRestoresThem) {
  absl::StatusOr<ProcessResult> result =
      RunAttached({"/bin/sh", "-c", "kill -INT $PPID; kill -QUIT $PPID; exit 0"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  for (int signal_number : {SIGINT, SIGQUIT}) {
    struct sigaction current;
    ASSERT_EQ(sigaction(signal_number, nullptr, &current), 0);
    EXPECT_EQ(current.sa_handler, SIG_DFL) << signal_number;
  }
  // The child itself gets them with default dispositions.
  result = RunAttached({"/bin/sh", "-c", "kill -INT $$"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->term_signal, SIGINT);
}

TEST(RunAttachedTest, RefusesWhatRunProcessRefuses) {
  EXPECT_EQ(RunAttached({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RunAttached({std::string("a\0b", 3)}).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<ProcessResult> missing = RunAttached({"no-such-editor-here"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "program not found: no-such-editor-here");
}

}  // namespace
}  // namespace omd::process

#include "service/instance.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "process/subprocess.h"
#include "service/service_config.h"
#include "service/service_log.h"
#include "testing/runfiles.h"

namespace omd::service {
namespace {

using ::omd::testing::TestResourcePath;

using ::testing::HasSubstr;

std::string NewRoot() {
  static int count = 0;
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/inst", ++count, "-", getpid());
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = config::ReadFileToString(path, 1 << 20);
  return text.ok() ? *text : "";
}

pid_t PidIn(const std::string& pidfile) {
  int pid = 0;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(Read(pidfile)), &pid) ? pid : 0;
}

// A resource that notes each of its commands in `notes`.
Resource Noting(int number, const std::string& notes) {
  Resource resource;
  resource.id = absl::StrCat("app#", number);
  resource.start = {TestResourcePath(), "note", "--file", notes, "--text",
                    absl::StrCat("start ", number)};
  resource.stop = {TestResourcePath(), "note", "--file", notes, "--text",
                   absl::StrCat("stop ", number)};
  resource.timeout = absl::Seconds(30);
  return resource;
}

// A resource that really runs: test_resource start|stop|check on `pidfile`.
Resource Running(int number, const std::string& pidfile) {
  Resource resource;
  resource.id = absl::StrCat("app#", number);
  for (const char* command : {"start", "stop", "check"}) {
    std::vector<std::string> argv = {TestResourcePath(), command, "--pidfile", pidfile};
    (std::string(command) == "start"  ? resource.start
     : std::string(command) == "stop" ? resource.stop
                                      : resource.check) = argv;
  }
  resource.timeout = absl::Seconds(30);
  return resource;
}

class InstanceTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const std::string& pidfile : pidfiles_) {
      if (pid_t pid = PidIn(pidfile); pid > 0) kill(pid, SIGKILL);
    }
  }
  std::string Pidfile(const std::string& root, int number) {
    pidfiles_.push_back(absl::StrCat(root, "/app", number, ".pid"));
    return pidfiles_.back();
  }
  std::vector<std::string> pidfiles_;
};

TEST_F(InstanceTest, StartInOrderStopInReverse) {
  const std::string root = NewRoot();
  ASSERT_TRUE(config::MakeDirectories(root, 0755).ok());
  const std::string notes = root + "/notes";
  ServiceConfig config{"web", {"node1"}, Topology::kFailover,
                       {Noting(1, notes), Noting(2, notes), Noting(10, notes)}};
  Resource no_commands;
  no_commands.id = "app#11";
  config.resources.push_back(no_commands);
  std::vector<std::string> echoed;
  InstanceRunner runner({.root = root,
                         .echo = [&](LogLevel, absl::string_view line) {
                           echoed.emplace_back(line);
                         }});
  absl::StatusOr<InstanceLock> lock = InstanceLock::Acquire(root, "web", absl::Seconds(5));
  ASSERT_TRUE(lock.ok()) << lock.status();
  ASSERT_TRUE(runner.Start(config, *lock).ok());
  EXPECT_EQ(Read(notes), "start 1\nstart 2\nstart 10\n");
  ASSERT_TRUE(runner.Stop(config, *lock).ok());
  EXPECT_EQ(Read(notes), "start 1\nstart 2\nstart 10\nstop 10\nstop 2\nstop 1\n");
  ASSERT_EQ(echoed.size(), 12u);
  EXPECT_THAT(echoed[0], HasSubstr("app#1: start: " + TestResourcePath() + " note --file"));
  EXPECT_EQ(echoed[1], "app#1: start exited 0");
  // Each command and its result, in the service's log.
  const std::string log = Read(ServiceLogPath(root, "web"));
  EXPECT_THAT(log, HasSubstr("INFO | app#10: stop: "));
  EXPECT_THAT(log, HasSubstr("INFO | app#10: stop exited 0\n"));

  ASSERT_TRUE(runner.StartResource(config, "app#2", *lock).ok());
  ASSERT_TRUE(runner.StopResource(config, "app#1", *lock).ok());
  EXPECT_TRUE(absl::EndsWith(Read(notes), "stop 1\nstart 2\nstop 1\n"));
  EXPECT_TRUE(absl::IsNotFound(runner.StartResource(config, "app#9", *lock)));
  EXPECT_TRUE(absl::IsNotFound(runner.StopResource(config, "app#9", *lock)));
}

TEST_F(InstanceTest, FailureStopsTheStart) {
  const std::string root = NewRoot();
  ASSERT_TRUE(config::MakeDirectories(root, 0755).ok());
  const std::string notes = root + "/notes";
  Resource failing = Noting(2, notes);
  failing.start = {TestResourcePath(), "fail", "--text", "no disk left"};
  failing.stop = {TestResourcePath(), "fail", "--text", "cannot stop"};
  ServiceConfig config{"web", {"node1"}, Topology::kFailover,
                       {Noting(1, notes), failing, Noting(3, notes)}};
  InstanceRunner runner({.root = root});
  absl::StatusOr<InstanceLock> lock = InstanceLock::Acquire(root, "web", absl::Seconds(5));
  ASSERT_TRUE(lock.ok());
  absl::Status started = runner.Start(config, *lock);
  EXPECT_TRUE(absl::IsInternal(started)) << started;
  EXPECT_EQ(started.message(), "app#2: start exited 3: no disk left");
  EXPECT_EQ(Read(notes), "start 1\n");  // app#3 never started
  EXPECT_THAT(Read(ServiceLogPath(root, "web")),
              HasSubstr("ERROR | app#2: start exited 3:\nsome output\nno disk left\n"));
  // Stop goes on past a failure, and returns it.
  absl::Status stopped = runner.Stop(config, *lock);
  EXPECT_EQ(stopped.message(), "app#2: stop exited 3: cannot stop");
  EXPECT_EQ(Read(notes), "start 1\nstop 3\nstop 1\n");
}

TEST_F(InstanceTest, MissingProgram) {
  const std::string root = NewRoot();
  Resource missing;
  missing.id = "app#1";
  missing.start = {root + "/no-such-program"};
  missing.check = {root + "/no-such-program"};
  ServiceConfig config{"web", {"node1"}, Topology::kFailover, {missing}};
  InstanceRunner runner({.root = root});
  absl::StatusOr<InstanceLock> lock = InstanceLock::Acquire(root, "web", absl::Seconds(5));
  ASSERT_TRUE(lock.ok());
  absl::Status started = runner.Start(config, *lock);
  EXPECT_TRUE(absl::IsInternal(started)) << started;
  EXPECT_THAT(started.message(), HasSubstr("app#1: start could not run: "));
  InstanceStatus status = runner.Check(config);
  EXPECT_EQ(status.resources[0].avail, Avail::kDown);
  EXPECT_THAT(status.resources[0].detail, HasSubstr("check could not run"));
}

TEST_F(InstanceTest, HangingCommandIsKilledAtItsTimeout) {
  const std::string root = NewRoot();
  Resource hanging;
  hanging.id = "app#1";
  hanging.start = {"sleep", "60"};
  hanging.check = {"sleep", "60"};
  hanging.timeout = absl::Seconds(1);
  ServiceConfig config{"web", {"node1"}, Topology::kFailover, {hanging}};
  InstanceRunner runner({.root = root});
  absl::StatusOr<InstanceLock> lock = InstanceLock::Acquire(root, "web", absl::Seconds(5));
  ASSERT_TRUE(lock.ok());
  const absl::Time begin = absl::Now();
  absl::Status started = runner.Start(config, *lock);
  EXPECT_LT(absl::Now() - begin, absl::Seconds(20));
  EXPECT_EQ(started.message(), "app#1: start timed out after 1s");
  InstanceStatus status = runner.Check(config);
  EXPECT_EQ(status.resources[0].avail, Avail::kDown);
  EXPECT_EQ(status.resources[0].detail, "check timed out after 1s");
  EXPECT_THAT(Read(ServiceLogPath(root, "web")), HasSubstr("ERROR | app#1: start timed out"));
}

TEST_F(InstanceTest, Cancelled) {
  const std::string root = NewRoot();
  Resource hanging;
  hanging.id = "app#1";
  hanging.start = {"sleep", "60"};
  ServiceConfig config{"web", {"node1"}, Topology::kFailover, {hanging}};
  process::Cancellation cancellation;
  InstanceRunner runner({.root = root, .cancellation = &cancellation});
  absl::StatusOr<InstanceLock> lock = InstanceLock::Acquire(root, "web", absl::Seconds(5));
  ASSERT_TRUE(lock.ok());
  std::thread cancel([&] {
    absl::SleepFor(absl::Milliseconds(200));
    cancellation.Cancel();
  });
  absl::Status started = runner.Start(config, *lock);
  cancel.join();
  EXPECT_TRUE(absl::IsCancelled(started)) << started;
}

TEST_F(InstanceTest, CheckStates) {
  const std::string root = NewRoot();
  ASSERT_TRUE(config::MakeDirectories(root, 0755).ok());
  const std::string pid1 = Pidfile(root, 1);
  const std::string pid2 = Pidfile(root, 2);
  Resource unchecked;
  unchecked.id = "app#3";
  ServiceConfig config{"web", {"node1"}, Topology::kFailover,
                       {Running(1, pid1), Running(2, pid2), unchecked}};
  InstanceRunner runner({.root = root});

  InstanceStatus status = runner.Check(config);
  EXPECT_EQ(status.avail, Avail::kDown);
  ASSERT_EQ(status.resources.size(), 3u);
  EXPECT_EQ(status.resources[0].id, "app#1");
  EXPECT_EQ(status.resources[0].avail, Avail::kDown);
  EXPECT_EQ(status.resources[0].detail, "check exited 1");
  EXPECT_EQ(status.resources[2].avail, Avail::kNotApplicable);

  absl::StatusOr<InstanceLock> lock = InstanceLock::Acquire(root, "web", absl::Seconds(5));
  ASSERT_TRUE(lock.ok());
  ASSERT_TRUE(runner.Start(config, *lock).ok());
  const pid_t pid = PidIn(pid1);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(kill(pid, 0), 0);
  status = runner.Check(config);
  EXPECT_EQ(status.avail, Avail::kUp);
  EXPECT_EQ(status.resources[0].avail, Avail::kUp);
  EXPECT_EQ(status.resources[1].avail, Avail::kUp);

  // A crash of one: warn.
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (runner.Check(config).resources[0].avail == Avail::kUp && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  status = runner.Check(config);
  EXPECT_EQ(status.resources[0].avail, Avail::kDown);
  EXPECT_EQ(status.avail, Avail::kWarn);

  ASSERT_TRUE(runner.Stop(config, *lock).ok());
  EXPECT_EQ(runner.Check(config).avail, Avail::kDown);
  EXPECT_TRUE(Read(pid2).empty());  // removed

  EXPECT_EQ(runner.Check(ServiceConfig{"web", {"node1"}, Topology::kFailover, {unchecked}}).avail,
            Avail::kNotApplicable);
  EXPECT_EQ(runner.Check(ServiceConfig{"web", {"node1"}, Topology::kFailover, {}}).avail,
            Avail::kNotApplicable);
  EXPECT_EQ(AvailName(Avail::kWarn), "warn");
  EXPECT_EQ(AvailName(Avail::kNotApplicable), "n/a");
}

TEST_F(InstanceTest, LockExcludes) {
  const std::string root = NewRoot();
  absl::StatusOr<InstanceLock> first = InstanceLock::Acquire(root, "web", absl::ZeroDuration());
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<InstanceLock> second = InstanceLock::Acquire(root, "web", absl::ZeroDuration());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_EQ(second.status().message(), "service \"web\" is busy (another action holds its lock)");
  const absl::Time begin = absl::Now();
  second = InstanceLock::Acquire(root, "web", absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status()));
  EXPECT_GE(absl::Now() - begin, absl::Milliseconds(300));
  // Another service's lock is another lock.
  EXPECT_TRUE(InstanceLock::Acquire(root, "db", absl::ZeroDuration()).ok());

  // Released while a second one waits: the waiter gets it.
  std::thread release([&first] {
    absl::SleepFor(absl::Milliseconds(200));
    InstanceLock gone = std::move(*first);
  });
  second = InstanceLock::Acquire(root, "web", absl::Seconds(30));
  release.join();
  EXPECT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->name(), "web");

  // A runner refuses another service's lock.
  InstanceRunner runner({.root = root});
  absl::Status wrong = runner.Start(ServiceConfig{"db", {"n"}, Topology::kFailover, {}}, *second);
  EXPECT_TRUE(absl::IsFailedPrecondition(wrong)) << wrong;

  EXPECT_TRUE(absl::IsInvalidArgument(
      InstanceLock::Acquire(root, "../x", absl::ZeroDuration()).status()));
}

TEST_F(InstanceTest, LockExcludesOtherProcesses) {
  const std::string root = NewRoot();
  absl::StatusOr<InstanceLock> held = InstanceLock::Acquire(root, "web", absl::ZeroDuration());
  ASSERT_TRUE(held.ok());
  // flock(1) in another process cannot take it while held, and can after.
  const std::string path = root + "/var/lock/web.lock";
  process::ProcessOptions options;
  options.argv = {"flock", "--nonblock", path, "true"};
  options.timeout = absl::Seconds(30);
  absl::StatusOr<process::ProcessResult> result = process::RunProcess(options);
  if (!result.ok()) GTEST_SKIP() << "no flock(1): " << result.status();
  EXPECT_NE(result->exit_code, 0);
  { InstanceLock released = std::move(*held); }
  result = process::RunProcess(options);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
}

}  // namespace
}  // namespace omd::service

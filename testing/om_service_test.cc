// om's service commands with the real om binary: create (from options and from
// a file), print config, svc ls, start (test_resource really runs), status,
// stop, delete, and every bad input leaving the files as they were.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/daemon_harness.h"

namespace omd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// om's exit codes: the canonical status codes.
constexpr int kInvalidArgument = 3;
constexpr int kNotFound = 5;
constexpr int kAlreadyExists = 6;
constexpr int kFailedPrecondition = 9;

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = config::ReadFileToString(path, 1 << 20);
  return text.ok() ? *text : "";
}

bool Exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

std::string Output(const OmResult& result) {
  return absl::StrCat("exit ", result.exit_code, "\nstdout: ", result.stdout_text,
                      "\nstderr: ", result.stderr_text);
}

class OmServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = NewTempDir("om-service");
    ASSERT_TRUE(WriteNodeConf(root_, NodeConfSpec()).ok());
    pidfile_ = root_ + "/app.pid";
  }
  void TearDown() override {
    int pid = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(Read(pidfile_)), &pid) && pid > 0) {
      kill(pid, SIGKILL);
    }
  }

  // om <svc> create with test_resource's start, stop and check on pidfile_.
  OmResult CreateRunning(const std::string& svc) {
    return RunOm(root_, {svc, "create", "--nodes", "node1 node2", "--start",
                         absl::StrCat(TestResourcePath(), " start --pidfile ", pidfile_), "--stop",
                         absl::StrCat(TestResourcePath(), " stop --pidfile ", pidfile_), "--check",
                         absl::StrCat(TestResourcePath(), " check --pidfile ", pidfile_),
                         "--restart", "2", "--resource-timeout", "30s"});
  }

  pid_t Pid() {
    int pid = 0;
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(Read(pidfile_)), &pid) ? pid : 0;
  }

  std::string root_;
  std::string pidfile_;
};

TEST_F(OmServiceTest, Lifecycle) {
  OmResult created = CreateRunning("web");
  ASSERT_EQ(created.exit_code, 0) << Output(created);
  EXPECT_THAT(created.stdout_text, HasSubstr("service \"web\" created"));
  const std::string path = root_ + "/etc/web.conf";
  const std::string text = Read(path);
  EXPECT_THAT(text, HasSubstr("[DEFAULT]\nnodes = node1 node2\ntopology = failover\n"));
  EXPECT_THAT(text, HasSubstr("[app#1]\nstart = " + TestResourcePath() + " start --pidfile "));
  EXPECT_THAT(text, HasSubstr("restart = 2\ntimeout = 30s\n"));

  OmResult printed = RunOm(root_, {"web", "print", "config"});
  ASSERT_EQ(printed.exit_code, 0) << Output(printed);
  EXPECT_EQ(printed.stdout_text, text);

  OmResult listed = RunOm(root_, {"svc", "ls"});
  ASSERT_EQ(listed.exit_code, 0) << Output(listed);
  EXPECT_THAT(listed.stdout_text, HasSubstr("web"));
  EXPECT_THAT(listed.stdout_text, HasSubstr("failover  node1 node2"));
  listed = RunOm(root_, {"--output", "json", "svc", "ls"});
  EXPECT_THAT(listed.stdout_text,
              HasSubstr(R"("web": {"nodes": ["node1", "node2"], "topology": "failover"})"));

  OmResult status = RunOm(root_, {"web", "status"});
  ASSERT_EQ(status.exit_code, 0) << Output(status);
  EXPECT_THAT(status.stdout_text, HasSubstr("web: down"));
  EXPECT_THAT(status.stdout_text, HasSubstr("check exited 1"));

  // Started without a daemon: done, and said that the monitor does not know.
  OmResult started = RunOm(root_, {"web", "start"});
  ASSERT_EQ(started.exit_code, 0) << Output(started);
  EXPECT_THAT(started.stdout_text, HasSubstr("app#1: start exited 0"));
  EXPECT_THAT(started.stdout_text,
              HasSubstr("the daemon was not told: its monitor will not keep web started"));
  const pid_t pid = Pid();
  ASSERT_GT(pid, 0);
  EXPECT_EQ(kill(pid, 0), 0);
  EXPECT_THAT(Read(root_ + "/var/log/web.log"), HasSubstr("INFO | app#1: start exited 0"));

  status = RunOm(root_, {"--output", "json", "web", "status"});
  ASSERT_EQ(status.exit_code, 0) << Output(status);
  EXPECT_THAT(status.stdout_text,
              HasSubstr(R"({"data": {"avail": "up", "resources": [{"avail": "up", )"
                        R"("detail": "", "id": "app#1"}]}, "node": "node1", "status": 0})"));

  // Deleting a service that is up is refused.
  OmResult deleted = RunOm(root_, {"web", "delete"});
  EXPECT_EQ(deleted.exit_code, kFailedPrecondition) << Output(deleted);
  EXPECT_THAT(deleted.stderr_text, HasSubstr("is up on node1 (app#1): stop it first"));
  EXPECT_EQ(Read(path), text);

  // A crash: down (the report still exits 0).
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    status = RunOm(root_, {"web", "status"});
  } while (!absl::StrContains(status.stdout_text, "web: down") && absl::Now() < deadline);
  EXPECT_EQ(status.exit_code, 0) << Output(status);
  EXPECT_THAT(status.stdout_text, HasSubstr("app#1"));
  EXPECT_THAT(status.stdout_text, HasSubstr("down  check exited 1"));

  ASSERT_EQ(RunOm(root_, {"web", "start"}).exit_code, 0);
  const pid_t restarted = Pid();
  ASSERT_GT(restarted, 0);
  OmResult stopped = RunOm(root_, {"web", "stop"});
  ASSERT_EQ(stopped.exit_code, 0) << Output(stopped);
  EXPECT_THAT(stopped.stdout_text, HasSubstr("app#1: stop exited 0"));
  EXPECT_THAT(stopped.stdout_text,
              HasSubstr("the daemon was not told: its monitor will not keep web stopped"));
  EXPECT_FALSE(Exists(pidfile_));
  for (const absl::Time until = absl::Now() + absl::Seconds(30);
       kill(restarted, 0) == 0 && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_THAT(RunOm(root_, {"web", "status"}).stdout_text, HasSubstr("web: down"));

  deleted = RunOm(root_, {"web", "delete"});
  ASSERT_EQ(deleted.exit_code, 0) << Output(deleted);
  EXPECT_FALSE(Exists(path));
  EXPECT_THAT(RunOm(root_, {"svc", "ls"}).stdout_text, HasSubstr("No services."));
  EXPECT_EQ(RunOm(root_, {"web", "delete"}).exit_code, kNotFound);
}

TEST_F(OmServiceTest, CreateFromFile) {
  const std::string file = root_ + "/db.in";
  const std::string text =
      "# the database\n[DEFAULT]\ntopology = flex\n\n[app#1]\nstart = /bin/true\n";
  ASSERT_TRUE(config::WriteFileAtomically(file, text, 0644).ok());
  OmResult created = RunOm(root_, {"db", "create", "--config", file});
  ASSERT_EQ(created.exit_code, 0) << Output(created);
  EXPECT_EQ(Read(root_ + "/etc/db.conf"), text);  // comments and all
  EXPECT_EQ(RunOm(root_, {"db", "print", "config"}).stdout_text, text);
  EXPECT_THAT(RunOm(root_, {"svc", "ls"}).stdout_text, HasSubstr("flex      node1"));

  // Again: ALREADY_EXISTS, the file unchanged.
  ASSERT_TRUE(config::WriteFileAtomically(file, "[DEFAULT]\n", 0644).ok());
  OmResult twice = RunOm(root_, {"db", "create", "--config", file});
  EXPECT_EQ(twice.exit_code, kAlreadyExists) << Output(twice);
  EXPECT_THAT(twice.stderr_text, HasSubstr("service \"db\" already exists"));
  twice = RunOm(root_, {"db", "create"});
  EXPECT_EQ(twice.exit_code, kAlreadyExists) << Output(twice);
  EXPECT_EQ(Read(root_ + "/etc/db.conf"), text);

  // --config with options, a missing file, a bad file: nothing written.
  OmResult both = RunOm(root_, {"web", "create", "--config", file, "--start", "/bin/true"});
  EXPECT_EQ(both.exit_code, kInvalidArgument) << Output(both);
  EXPECT_THAT(both.stderr_text, HasSubstr("--config and --start cannot be used together"));
  OmResult missing = RunOm(root_, {"web", "create", "--config", root_ + "/none"});
  EXPECT_EQ(missing.exit_code, kNotFound) << Output(missing);
  ASSERT_TRUE(config::WriteFileAtomically(file, "[fs#1]\n", 0644).ok());
  OmResult bad = RunOm(root_, {"web", "create", "--config", file});
  EXPECT_EQ(bad.exit_code, kInvalidArgument) << Output(bad);
  EXPECT_THAT(bad.stderr_text, HasSubstr("[fs#1]: unknown resource type"));
  EXPECT_FALSE(Exists(root_ + "/etc/web.conf"));
}

TEST_F(OmServiceTest, BadInputChangesNothing) {
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"web", "create", "--restart", "x"}, kInvalidArgument, "--restart: \"x\" is not a number"},
      {{"web", "create", "--restart", "101"}, kInvalidArgument, "--restart: \"101\""},
      {{"web", "create", "--resource-timeout", "0s"}, kInvalidArgument, "--resource_timeout"},
      {{"web", "create", "--resource_timeout", "2h"}, kInvalidArgument, "1s to 1h"},
      {{"web", "create", "--topology", "ring"}, kInvalidArgument, "--topology: \"ring\""},
      {{"web", "create", "--nodes", "n1 n1"}, kInvalidArgument, "--nodes: \"n1\" is listed twice"},
      {{"web", "create", "--nodes", "a/b"}, kInvalidArgument, "--nodes: invalid node name"},
      {{"web", "create", "--nodes", " "}, kInvalidArgument, "--nodes is empty"},
      {{"web", "create", "--start", "/bin/x \"a"}, kInvalidArgument, "--start: unterminated"},
      {{"web", "create", "extra"}, kInvalidArgument, "unexpected argument \"extra\""},
      {{"web", "start", "--nodes", "n1"}, kInvalidArgument, "--nodes is not an option of om web start"},
      {{"web", "bogus"}, kInvalidArgument, "unknown service command \"bogus\"; service commands:"},
      {{"web"}, kInvalidArgument, "it needs a service command after it"},
      {{"../x", "create"}, kInvalidArgument, "invalid service name \"../x\""},
      {{"A", "create"}, kInvalidArgument, "invalid service name \"A\""},
      {{"a..b", "create"}, kInvalidArgument, "invalid service name \"a..b\""},
      {{std::string(64, 'a'), "create"}, kInvalidArgument, "invalid service name"},
      {{"node", "create"}, kInvalidArgument, "unknown command"},
      {{"svc", "create"}, kInvalidArgument, "unknown command"},
      {{"web", "print", "config"}, kNotFound, "service \"web\" does not exist"},
      {{"web", "start"}, kNotFound, "service \"web\" does not exist"},
      {{"web", "stop"}, kNotFound, "service \"web\" does not exist"},
      {{"web", "status"}, kNotFound, "service \"web\" does not exist"},
      {{"web", "delete"}, kNotFound, "service \"web\" does not exist"},
  };
  for (const Case& c : cases) {
    OmResult result = RunOm(root_, c.args);
    EXPECT_EQ(result.exit_code, c.exit_code) << absl::StrJoin(c.args, " ") << "\n" << Output(result);
    EXPECT_THAT(result.stderr_text, HasSubstr(c.message)) << absl::StrJoin(c.args, " ");
  }
  // "-a" is taken for a flag: refused, whatever says so.
  EXPECT_NE(RunOm(root_, {"-a", "create"}).exit_code, 0);
  OmResult listed = RunOm(root_, {"svc", "ls"});
  EXPECT_THAT(listed.stdout_text, HasSubstr("No services.")) << Output(listed);
  EXPECT_FALSE(Exists(root_ + "/var/log"));
}

TEST_F(OmServiceTest, BusyWhileLocked) {
  ASSERT_EQ(RunOm(root_, {"web", "create", "--start", "/bin/true"}).exit_code, 0);
  // flock(1) holds the instance's lock as another action would.
  ASSERT_EQ(mkdir((root_ + "/var").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((root_ + "/var/lock").c_str(), 0700), 0);
  const std::string lock = root_ + "/var/lock/web.lock";
  pid_t holder = fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    setpgid(0, 0);  // flock and its sleep, which inherits the lock, killed together
    execlp("flock", "flock", lock.c_str(), "sleep", "30", nullptr);
    _exit(127);
  }
  setpgid(holder, holder);  // the usual both-sides call: whichever runs first
  OmResult busy;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  do {
    busy = RunOm(root_, {"--timeout", "100ms", "web", "start"});
  } while (busy.exit_code == 0 && absl::Now() < deadline);
  kill(-holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  EXPECT_EQ(busy.exit_code, kFailedPrecondition) << Output(busy);
  EXPECT_THAT(busy.stderr_text, HasSubstr("service \"web\" is busy"));
  EXPECT_EQ(RunOm(root_, {"web", "delete"}).exit_code, 0);
}

TEST_F(OmServiceTest, AnotherNodeIsNotRunHere) {
  ASSERT_EQ(CreateRunning("web").exit_code, 0);
  // Sent to node2's daemon as a service action, never run here.
  OmResult remote = RunOm(root_, {"--node", "node2", "web", "start"});
  EXPECT_NE(remote.exit_code, 0) << Output(remote);
  remote = RunOm(root_, {"--server", "127.0.0.1:1", "web", "start"});
  EXPECT_NE(remote.exit_code, 0) << Output(remote);
  EXPECT_FALSE(Exists(pidfile_));
  EXPECT_THAT(Read(root_ + "/var/log/web.log"), Not(HasSubstr("start")));
  // --node naming this node is here.
  OmResult here = RunOm(root_, {"--node", "node1", "web", "start"});
  EXPECT_EQ(here.exit_code, 0) << Output(here);
  EXPECT_TRUE(Exists(pidfile_));
  EXPECT_EQ(RunOm(root_, {"web", "stop"}).exit_code, 0);
}

TEST_F(OmServiceTest, StartAndStopTellTheDaemonWhatToKeep) {
  DaemonProcess::Options options;
  options.root = root_;
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ASSERT_EQ(CreateRunning("web").exit_code, 0);
  OmResult started = RunOm(root_, {"web", "start"});
  ASSERT_EQ(started.exit_code, 0) << Output(started);
  EXPECT_THAT(started.stdout_text, Not(HasSubstr("the daemon was not told")));
  EXPECT_GT(Pid(), 0);
  OmResult monitor = RunOm(root_, {"web", "print", "monitor"});
  EXPECT_THAT(monitor.stdout_text, HasSubstr("started")) << Output(monitor);
  OmResult stopped = RunOm(root_, {"web", "stop"});
  ASSERT_EQ(stopped.exit_code, 0) << Output(stopped);
  EXPECT_FALSE(Exists(pidfile_));
  monitor = RunOm(root_, {"web", "print", "monitor"});
  EXPECT_THAT(monitor.stdout_text, HasSubstr("stopped")) << Output(monitor);
  EXPECT_EQ((*daemon)->Stop(), absl::OkStatus());
}

}  // namespace
}  // namespace omd::testing

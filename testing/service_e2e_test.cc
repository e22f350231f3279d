// Services across two real daemons (node1 on 127.0.0.1, node2 on 127.0.0.2),
// driven with the real om: the newcomer's walk through services, the monitor
// and global_expect.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "config/atomic_file.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "testing/daemon_harness.h"
#include "testing/eventually.h"

namespace omd::testing {
namespace {

using ::testing::HasSubstr;

google::protobuf::Struct Json(const std::string& text) {
  google::protobuf::Struct parsed;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &parsed).ok()) << text;
  return parsed;
}

class ServiceE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) {
      addresses_[i] = absl::StrCat("127.0.0.", i + 1);
      absl::StatusOr<int> port = FreePort(addresses_[i]);
      ASSERT_TRUE(port.ok()) << port.status();
      ports_[i] = *port;
    }
    for (int i = 0; i < 2; ++i) {
      DaemonProcess::Options options;
      options.node.node_name = Name(i);
      options.node.cluster_nodes = {"node1", "node2"};
      options.node.listen_address = addresses_[i];
      options.node.port = ports_[i];
      const int other = 1 - i;
      options.node.node_addresses[Name(other)] =
          absl::StrCat(addresses_[other], ":", ports_[other]);
      options.extra_flags = {"--monitor_interval=300ms"};
      absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
      ASSERT_TRUE(daemon.ok()) << daemon.status();
      nodes_[i] = *std::move(daemon);
    }
  }

  void TearDown() override {
    for (int i = 0; i < 2; ++i) {
      if (nodes_[i] == nullptr) continue;
      for (const char* svc : {"web", "pool"}) {
        if (pid_t pid = Pid(i, svc); pid > 0) kill(pid, SIGKILL);
      }
      EXPECT_EQ(nodes_[i]->Stop(), absl::OkStatus());
    }
  }

  static std::string Name(int i) { return absl::StrCat("node", i + 1); }
  std::string Root(int i) const { return nodes_[i]->root(); }
  std::string PidFile(int i, const std::string& svc) const {
    return absl::StrCat(Root(i), "/", svc, ".pid");
  }

  pid_t Pid(int i, const std::string& svc) const {
    absl::StatusOr<std::string> text = config::ReadFileToString(PidFile(i, svc), 64);
    int pid = 0;
    if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid)) return 0;
    return pid;
  }
  bool Running(int i, const std::string& svc) const {
    const pid_t pid = Pid(i, svc);
    return pid > 0 && kill(pid, 0) == 0;
  }

  OmResult Om(int i, std::vector<std::string> args) { return RunOm(Root(i), args); }

  // `om <svc> create` on node i, its resource a test_resource process.
  void Create(int i, const std::string& svc, const std::string& topology, int restart) {
    const std::string resource = TestResourcePath();
    const std::string pidfile = PidFile(i, svc);
    OmResult created =
        Om(i, {svc, "create", "--nodes", "node1 node2", "--topology", topology, "--start",
               absl::StrCat(resource, " start --pidfile ", pidfile), "--stop",
               absl::StrCat(resource, " stop --pidfile ", pidfile), "--check",
               absl::StrCat(resource, " check --pidfile ", pidfile), "--restart",
               absl::StrCat(restart)});
    ASSERT_EQ(created.exit_code, 0) << created.stderr_text;
  }

  // The local instance's monitor, as node i's om prints it in JSON.
  google::protobuf::Struct Monitor(int i, const std::string& svc) {
    OmResult printed = Om(i, {"--output", "json", svc, "print", "monitor"});
    EXPECT_EQ(printed.exit_code, 0) << printed.stderr_text;
    return Json(printed.stdout_text).fields().at("data").struct_value();
  }
  std::string Field(int i, const std::string& svc, const std::string& field) {
    return Monitor(i, svc).fields().at("instance").struct_value().fields().at(field).string_value();
  }
  double Restarts(int i, const std::string& svc) {
    return Monitor(i, svc)
        .fields()
        .at("instance")
        .struct_value()
        .fields()
        .at("resources")
        .list_value()
        .values(0)
        .struct_value()
        .fields()
        .at("restarts")
        .number_value();
  }

  std::string ServiceLogs(const std::string& svc) {
    std::string logs;
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<std::string> log = config::ReadFileToString(
          absl::StrCat(Root(i), "/var/log/", svc, ".log"), 1 << 20);
      absl::StrAppend(&logs, Name(i), ":\n", log.ok() ? *log : log.status().ToString(), "\n",
                      nodes_[i]->Log(), "\n");
    }
    return logs;
  }

  std::string addresses_[2];
  int ports_[2] = {};
  std::unique_ptr<DaemonProcess> nodes_[2];
};

TEST_F(ServiceE2eTest, FailoverStartsOnOneNodeRestartsClearsAndStopsEverywhere) {
  for (int i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(Create(i, "web", "failover", 1));
  OmResult listed = Om(1, {"svc", "ls"});
  EXPECT_EQ(listed.exit_code, 0);
  EXPECT_THAT(listed.stdout_text, HasSubstr("web"));

  // Started through node2: the first of the nodes, node1, runs it; node2 does not.
  OmResult started = Om(1, {"web", "set", "monitor", "--global-expect", "started"});
  ASSERT_EQ(started.exit_code, 0) << started.stderr_text;
  ASSERT_TRUE(Eventually([&] { return Running(0, "web"); }));
  ASSERT_TRUE(Eventually([&] { return Field(0, "web", "global_expect") == "unset"; }));
  ASSERT_TRUE(Eventually([&] { return Field(1, "web", "global_expect") == "unset"; }));
  EXPECT_EQ(Field(0, "web", "local_expect"), "started");
  EXPECT_FALSE(Running(1, "web"));
  // node2 sees node1's instance up through the heartbeats.
  OmResult seen = Om(1, {"web", "print", "monitor"});
  EXPECT_THAT(seen.stdout_text, HasSubstr("node1        up"));

  // Killed: restarted once (restart = 1); killed again: start failed, and no more.
  const pid_t first = Pid(0, "web");
  ASSERT_EQ(kill(first, SIGKILL), 0);
  ASSERT_TRUE(Eventually([&] { return Running(0, "web") && Pid(0, "web") != first; }));
  EXPECT_EQ(Restarts(0, "web"), 1);
  ASSERT_EQ(kill(Pid(0, "web"), SIGKILL), 0);
  ASSERT_TRUE(Eventually([&] { return Field(0, "web", "status") == "start failed"; }));
  absl::SleepFor(absl::Seconds(1));  // three rounds: still nothing started
  EXPECT_FALSE(Running(0, "web"));
  EXPECT_EQ(Field(0, "web", "status"), "start failed");
  absl::StatusOr<std::string> log =
      config::ReadFileToString(absl::StrCat(Root(0), "/var/log/web.log"), 1 << 20);
  ASSERT_TRUE(log.ok());
  EXPECT_THAT(*log, HasSubstr("ERROR | monitor: app#1 is down after 1 restarts: start failed"));

  // Cleared: it tries again.
  OmResult cleared = Om(0, {"web", "clear"});
  ASSERT_EQ(cleared.exit_code, 0) << cleared.stderr_text;
  ASSERT_TRUE(Eventually([&] { return Running(0, "web") && Field(0, "web", "status") == "idle"; }));

  // Stopped through node2: node1's instance stops too.
  OmResult stopped = Om(1, {"web", "set", "monitor", "--global-expect", "stopped"});
  ASSERT_EQ(stopped.exit_code, 0) << stopped.stderr_text;
  ASSERT_TRUE(Eventually([&] { return !Running(0, "web"); }));
  ASSERT_TRUE(Eventually([&] {
    return Field(0, "web", "global_expect") == "unset" &&
           Field(1, "web", "global_expect") == "unset";
  }));
  EXPECT_EQ(Field(0, "web", "local_expect"), "stopped");
  EXPECT_EQ(Field(1, "web", "local_expect"), "stopped");
}

TEST_F(ServiceE2eTest, FlexStartsEveryInstanceExceptOnAFrozenNodeUntilThawed) {
  for (int i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(Create(i, "pool", "flex", 0));
  OmResult frozen = Om(1, {"node", "freeze"});
  ASSERT_EQ(frozen.exit_code, 0) << frozen.stderr_text;
  OmResult again = Om(1, {"node", "freeze"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_THAT(again.stdout_text, HasSubstr("already frozen"));

  ASSERT_EQ(Om(0, {"pool", "set", "monitor", "--global-expect", "started"}).exit_code, 0);
  ASSERT_TRUE(Eventually([&] { return Running(0, "pool"); }));
  // node2 hears of it (a heartbeat), and being frozen, keeps its instance as it is.
  ASSERT_TRUE(Eventually([&] { return Field(1, "pool", "global_expect") == "started"; }))
      << ServiceLogs("pool");
  absl::SleepFor(absl::Seconds(1));
  EXPECT_FALSE(Running(1, "pool"));
  EXPECT_EQ(Field(0, "pool", "global_expect"), "started");  // not reached while node2 is down

  ASSERT_EQ(Om(1, {"node", "thaw"}).exit_code, 0);
  ASSERT_TRUE(Eventually([&] { return Running(1, "pool"); }));
  ASSERT_TRUE(Eventually([&] {
    return Field(0, "pool", "global_expect") == "unset" &&
           Field(1, "pool", "global_expect") == "unset";
  }));

  // global_expect frozen freezes both instances.
  ASSERT_EQ(Om(0, {"pool", "set", "monitor", "--global-expect", "frozen"}).exit_code, 0);
  ASSERT_TRUE(Eventually([&] {
    return Monitor(1, "pool").fields().at("instance").struct_value().fields().at("frozen")
        .bool_value();
  }));
}

TEST_F(ServiceE2eTest, BadMonitorValuesAreRefusedAndChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(Create(0, "web", "failover", 1));
  const std::string before = Field(0, "web", "local_expect");
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"web", "set", "monitor", "--local-expect", "sideways"}, 3, "use started, stopped, unset"},
      {{"web", "set", "monitor", "--status", "starting"}, 3, "set by the monitor itself"},
      {{"web", "set", "monitor", "--global-expect", "purged"}, 9, "not supported"},
      {{"web", "set", "monitor", "--global-expect", ""}, 3, "nothing to set"},
      {{"web", "set", "monitor"}, 3, "nothing to set"},
      {{"nosuch", "set", "monitor", "--local-expect", "started"}, 5, "does not exist"},
      {{"Bad_Name", "clear"}, 3, "invalid service name"},
  };
  for (const Case& c : cases) {
    OmResult result = Om(0, c.args);
    EXPECT_EQ(result.exit_code, c.exit_code) << absl::StrJoin(c.args, " ") << result.stderr_text;
    EXPECT_THAT(result.stderr_text, HasSubstr(c.message)) << absl::StrJoin(c.args, " ");
  }
  EXPECT_EQ(Field(0, "web", "local_expect"), before);
  EXPECT_EQ(Field(0, "web", "status"), "idle");
}

TEST_F(ServiceE2eTest, ShutdownStopsTheLocalInstancesAndStopLeavesThemRunning) {
  for (int i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(Create(i, "pool", "flex", 0));
  for (int i = 0; i < 2; ++i) {
    OmResult started = Om(i, {"pool", "start"});
    ASSERT_EQ(started.exit_code, 0) << started.stderr_text;
    ASSERT_TRUE(Running(i, "pool"));
  }
  ASSERT_EQ(Om(0, {"daemon", "stop"}).exit_code, 0);
  ASSERT_TRUE(Eventually([&] { return absl::StrContains(nodes_[0]->Log(), "omd stopped"); }));
  EXPECT_TRUE(Running(0, "pool"));
  ASSERT_EQ(Om(1, {"daemon", "shutdown"}).exit_code, 0);
  ASSERT_TRUE(Eventually([&] { return absl::StrContains(nodes_[1]->Log(), "omd stopped"); }));
  EXPECT_FALSE(Running(1, "pool"));
  EXPECT_THAT(nodes_[1]->Log(), HasSubstr("shutdown: pool: stopped"));
}

TEST_F(ServiceE2eTest, ActionsOnTheOtherNodeWithNodeSyncAndAsync) {
  for (int i = 0; i < 2; ++i) ASSERT_NO_FATAL_FAILURE(Create(i, "web", "failover", 0));
  // Sync, through node2's daemon, which runs its om: node2's instance starts.
  OmResult started = Om(0, {"web", "start", "--node", "node2"});
  ASSERT_EQ(started.exit_code, 0) << started.stderr_text;
  EXPECT_THAT(started.stdout_text, HasSubstr("app#1: start exited 0"));
  EXPECT_TRUE(Running(1, "web"));
  EXPECT_FALSE(Running(0, "web"));
  OmResult status = Om(0, {"web", "status", "--node", "node2"});
  ASSERT_EQ(status.exit_code, 0) << status.stderr_text;
  EXPECT_THAT(status.stdout_text, HasSubstr("node2"));
  EXPECT_THAT(status.stdout_text, HasSubstr("up"));
  // The om there told its own daemon: node2's monitor keeps it started.
  EXPECT_EQ(Field(1, "web", "local_expect"), "started");

  // Async: an id at once, its result in `om daemon actions` of node2.
  OmResult stopping = Om(0, {"--output", "json", "web", "stop", "--node", "node2", "--async"});
  ASSERT_EQ(stopping.exit_code, 0) << stopping.stderr_text;
  const std::string id =
      Json(stopping.stdout_text).fields().at("data").struct_value().fields().at("session_id")
          .string_value();
  ASSERT_EQ(id.size(), 32u) << stopping.stdout_text;
  ASSERT_TRUE(Eventually([&] {
    OmResult listed = Om(0, {"--node", "node2", "daemon", "actions", "--id", id});
    return listed.exit_code == 0 && absl::StrContains(listed.stdout_text, "succeeded");
  }));
  EXPECT_FALSE(Running(1, "web"));
  OmResult listed = Om(0, {"--node", "node2", "daemon", "actions"});
  EXPECT_THAT(listed.stdout_text, HasSubstr(id));
  EXPECT_THAT(listed.stdout_text, HasSubstr("web"));

  // om's own error on the other node comes back as such; a global flag never
  // leaves this node's om.
  OmResult unknown = Om(0, {"web", "no-such-command", "--node", "node2"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_THAT(unknown.stderr_text, HasSubstr("unknown service command"));
  OmResult sneaky = Om(0, {"web", "start", "--node", "node2", "--", "--root=/"});
  EXPECT_NE(sneaky.exit_code, 0);
  EXPECT_FALSE(Running(1, "web"));
}

}  // namespace
}  // namespace omd::testing

// The monitor on real services: resources are test_resource processes, checked
// and restarted by a Monitor in this process, on a short interval.
#include "monitor/monitor.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "config/atomic_file.h"
#include "gtest/gtest.h"
#include "testing/runfiles.h"

namespace omd::monitor {
namespace {

using ::omd::testing::TestResourcePath;

std::string NewRoot() {
  std::string root = absl::StrCat(::testing::TempDir(), "/monitor_XXXXXX");
  EXPECT_NE(mkdtemp(root.data()), nullptr);
  EXPECT_TRUE(config::MakeDirectories(root + "/etc", 0755).ok());
  return root;
}

// web: one test_resource process, `restart` restarts allowed.
void WriteService(const std::string& root, const std::string& name, int restart,
                  const std::string& nodes = "n1", const std::string& start_override = "") {
  const std::string resource = TestResourcePath();
  const std::string pidfile = absl::StrCat(root, "/", name, ".pid");
  const std::string start = start_override.empty()
                                ? absl::StrCat(resource, " start --pidfile ", pidfile)
                                : start_override;
  const std::string text = absl::StrCat(
      "[DEFAULT]\nnodes = ", nodes, "\n\n[app#1]\nstart = ", start, "\nstop = ", resource,
      " stop --pidfile ", pidfile, "\ncheck = ", resource, " check --pidfile ", pidfile,
      "\nrestart = ", restart, "\ntimeout = 10s\n");
  ASSERT_TRUE(config::WriteFileAtomically(absl::StrCat(root, "/etc/", name, ".conf"), text, 0644)
                  .ok());
}

pid_t ResourcePid(const std::string& root, const std::string& name) {
  absl::StatusOr<std::string> text =
      config::ReadFileToString(absl::StrCat(root, "/", name, ".pid"), 64);
  int pid = 0;
  if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid)) return 0;
  return pid;
}

bool Alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override { root_ = NewRoot(); }
  void TearDown() override {
    StopMonitor();
    // No resource outlives the test.
    for (const char* name : {"web", "db"}) {
      if (pid_t pid = ResourcePid(root_, name); pid > 0) kill(pid, SIGKILL);
    }
  }

  void StartMonitor() {
    auto node = std::make_shared<config::NodeConfig>();
    node->node_name = "n1";
    Monitor::Options options;
    options.root = root_;
    options.interval = absl::Milliseconds(100);
    monitor_ = std::make_unique<Monitor>(
        options, [node] { return node; },
        [this](absl::string_view node) { return up_peers_.count(std::string(node)) > 0; });
    stop_ = false;
    runner_ = std::thread([this] {
      (void)monitor_->Run([this](absl::Duration d) {
        absl::SleepFor(d);
        return stop_.load();
      });
    });
  }

  void StopMonitor() {
    if (monitor_ == nullptr) return;
    stop_ = true;
    runner_.join();
    monitor_->Stop();
    monitor_.reset();
  }

  v1::InstanceMonitor Instance(const std::string& name = "web") {
    absl::StatusOr<v1::GetServiceMonitorReply> reply = monitor_->GetService(name);
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? reply->instance() : v1::InstanceMonitor();
  }

  // Polls until `condition` holds on the instance, or 20 s.
  template <typename Condition>
  bool WaitFor(Condition condition, const std::string& name = "web") {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      if (condition(Instance(name))) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "still " << Instance(name).DebugString();
    return false;
  }

  void Set(const std::string& field, const std::string& value, const std::string& name = "web") {
    v1::SetServiceMonitorRequest request;
    request.set_svcname(name);
    if (field == "global_expect") request.set_global_expect(value);
    if (field == "local_expect") request.set_local_expect(value);
    if (field == "status") request.set_status(value);
    absl::StatusOr<std::vector<std::string>> done = monitor_->SetService(request);
    ASSERT_TRUE(done.ok()) << done.status();
  }

  std::string root_;
  std::unique_ptr<Monitor> monitor_;
  std::thread runner_;
  std::atomic<bool> stop_{false};
  std::set<std::string> up_peers_;
};

bool Up(const v1::InstanceMonitor& instance) {
  return instance.avail() == "up" && instance.status() == "idle";
}

TEST_F(MonitorTest, RestartsAKilledResourceRestartTimesThenStartFailedUntilCleared) {
  WriteService(root_, "web", /*restart=*/2);
  StartMonitor();
  Set("global_expect", "started");
  ASSERT_TRUE(WaitFor([](const v1::InstanceMonitor& i) {
    return Up(i) && i.local_expect() == "started" && i.global_expect() == "unset";
  }));
  for (uint32_t restart = 1; restart <= 2; ++restart) {
    const pid_t pid = ResourcePid(root_, "web");
    ASSERT_TRUE(Alive(pid));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    ASSERT_TRUE(WaitFor([&](const v1::InstanceMonitor& i) {
      return Up(i) && i.resources(0).restarts() == restart;
    })) << "restart " << restart;
    EXPECT_NE(ResourcePid(root_, "web"), pid);
  }
  const pid_t last = ResourcePid(root_, "web");
  ASSERT_EQ(kill(last, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([](const v1::InstanceMonitor& i) { return i.status() == "start failed"; }));
  // It stays failed: no third restart, whatever the rounds.
  const int64_t rounds = monitor_->rounds();
  while (monitor_->rounds() < rounds + 5) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(Instance().status(), "start failed");
  EXPECT_EQ(Instance().resources(0).restarts(), 2u);
  EXPECT_FALSE(Alive(ResourcePid(root_, "web")));

  absl::StatusOr<std::vector<std::string>> cleared = monitor_->Clear("web");
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_TRUE(cleared->empty());
  ASSERT_TRUE(WaitFor([](const v1::InstanceMonitor& i) {
    return Up(i) && i.resources(0).restarts() == 1;
  }));
}

TEST_F(MonitorTest, GlobalStoppedStopsTheInstanceAndIsCleared) {
  WriteService(root_, "web", 1);
  StartMonitor();
  Set("global_expect", "started");
  ASSERT_TRUE(WaitFor(Up));
  const pid_t pid = ResourcePid(root_, "web");
  Set("global_expect", "stopped");
  ASSERT_TRUE(WaitFor([](const v1::InstanceMonitor& i) {
    return i.avail() == "down" && i.local_expect() == "stopped" && i.global_expect() == "unset";
  }));
  EXPECT_FALSE(Alive(pid));
  EXPECT_EQ(Instance().resources(0).restarts(), 0u);  // a stop is not a restart
}

TEST_F(MonitorTest, AFrozenNodeKeepsItsServicesAsTheyAre) {
  WriteService(root_, "web", 3);
  StartMonitor();
  Set("global_expect", "started");
  ASSERT_TRUE(WaitFor(Up));
  v1::SetNodeMonitorRequest freeze;
  freeze.set_local_expect("frozen");
  absl::StatusOr<std::vector<std::string>> frozen = monitor_->SetNode(freeze);
  ASSERT_TRUE(frozen.ok()) << frozen.status();
  EXPECT_TRUE(frozen->empty());
  frozen = monitor_->SetNode(freeze);
  ASSERT_TRUE(frozen.ok());
  ASSERT_EQ(frozen->size(), 1u);
  EXPECT_EQ((*frozen)[0], "the node is already frozen");

  ASSERT_EQ(kill(ResourcePid(root_, "web"), SIGKILL), 0);
  ASSERT_TRUE(WaitFor([](const v1::InstanceMonitor& i) { return i.avail() == "down"; }));
  const int64_t rounds = monitor_->rounds();
  while (monitor_->rounds() < rounds + 5) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(Instance().avail(), "down");
  EXPECT_EQ(Instance().resources(0).restarts(), 0u);

  v1::SetNodeMonitorRequest thaw;
  thaw.set_status("thawing");
  ASSERT_TRUE(monitor_->SetNode(thaw).ok());
  EXPECT_FALSE(monitor_->Node().frozen());
  ASSERT_TRUE(WaitFor([](const v1::InstanceMonitor& i) {
    return Up(i) && i.resources(0).restarts() == 1;
  }));
}

TEST_F(MonitorTest, BadRequestsAreRefusedAndChangeNothing) {
  WriteService(root_, "web", 1);
  WriteService(root_, "db", 1, "n2 n3");  // not on this node
  StartMonitor();
  const std::string before = Instance().SerializeAsString();
  struct Case {
    v1::SetServiceMonitorRequest request;
    absl::StatusCode code;
  };
  std::vector<Case> cases;
  const auto add = [&cases](const std::string& svc, const std::string& status,
                            const std::string& local, const std::string& global,
                            absl::StatusCode code) {
    Case c;
    c.request.set_svcname(svc);
    c.request.set_status(status);
    c.request.set_local_expect(local);
    c.request.set_global_expect(global);
    c.request.set_reset_retries(true);
    c.code = code;
    cases.push_back(c);
  };
  add("web", "starting", "", "", absl::StatusCode::kInvalidArgument);
  add("web", "", "running", "", absl::StatusCode::kInvalidArgument);
  add("web", "", "started", "sideways", absl::StatusCode::kInvalidArgument);
  add("web", "", "started", "placed@n2", absl::StatusCode::kFailedPrecondition);
  add("Web", "", "started", "", absl::StatusCode::kInvalidArgument);
  add("../etc/node", "", "started", "", absl::StatusCode::kInvalidArgument);
  add("nosuch", "", "started", "", absl::StatusCode::kNotFound);
  add("db", "", "started", "", absl::StatusCode::kNotFound);
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<std::string>> done = monitor_->SetService(c.request);
    EXPECT_EQ(done.status().code(), c.code) << c.request.DebugString() << done.status();
  }
  EXPECT_EQ(monitor_->Clear("nosuch").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(monitor_->Clear("a/b").status().code(), absl::StatusCode::kInvalidArgument);
  v1::SetNodeMonitorRequest node;
  node.set_local_expect("started");
  EXPECT_EQ(monitor_->SetNode(node).status().code(), absl::StatusCode::kInvalidArgument);
  node.set_local_expect("frozen");
  node.set_status("thawing");
  EXPECT_EQ(monitor_->SetNode(node).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(monitor_->Node().frozen());
  v1::InstanceMonitor after = Instance();
  v1::InstanceMonitor expected;
  expected.ParseFromString(before);
  after.set_checked_unix_ms(0);
  expected.set_checked_unix_ms(0);
  // Checks may have run meanwhile: compare what requests could change.
  EXPECT_EQ(after.status(), expected.status());
  EXPECT_EQ(after.local_expect(), expected.local_expect());
  EXPECT_EQ(after.global_expect(), expected.global_expect());
  EXPECT_EQ(after.global_expect_version(), expected.global_expect_version());

  // Already so: an info, not an error.
  v1::SetServiceMonitorRequest same;
  same.set_svcname("web");
  same.set_local_expect("unset");
  absl::StatusOr<std::vector<std::string>> info = monitor_->SetService(same);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->size(), 1u);
  EXPECT_EQ((*info)[0], "local_expect is already unset");
}

TEST_F(MonitorTest, ABusyInstanceRefusesChangesAndClearSkipsIt) {
  // A start that takes a while: the instance is "starting" meanwhile.
  const std::string slow_start = "sleep 3";
  WriteService(root_, "web", 0, "n1", slow_start);
  StartMonitor();
  Set("global_expect", "started");
  ASSERT_TRUE(WaitFor([](const v1::InstanceMonitor& i) { return i.status() == "starting"; }));
  v1::SetServiceMonitorRequest request;
  request.set_svcname("web");
  request.set_local_expect("stopped");
  absl::StatusOr<std::vector<std::string>> refused = monitor_->SetService(request);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find("busy"), absl::string_view::npos);
  absl::StatusOr<std::vector<std::string>> skipped = monitor_->Clear("web");
  ASSERT_TRUE(skipped.ok());
  ASSERT_EQ(skipped->size(), 1u);
  EXPECT_NE((*skipped)[0].find("skipped"), std::string::npos);
  EXPECT_EQ(Instance().local_expect(), "unset");
}

TEST_F(MonitorTest, StatesSurviveARestartAndTransientOnesGoBackToIdle) {
  WriteService(root_, "web", 0, "n1", "sleep 30");
  StartMonitor();
  Set("global_expect", "started");
  ASSERT_TRUE(WaitFor([](const v1::InstanceMonitor& i) { return i.status() == "starting"; }));
  const absl::Time stopping = absl::Now();
  StopMonitor();  // cancels the start
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(10));
  v1::SetNodeMonitorRequest freeze;
  StartMonitor();
  v1::InstanceMonitor instance = Instance();
  EXPECT_EQ(instance.status(), "idle");
  EXPECT_EQ(instance.global_expect(), "started");
  EXPECT_GE(instance.global_expect_version(), 1u);

  freeze.set_local_expect("frozen");
  ASSERT_TRUE(monitor_->SetNode(freeze).ok());
  StopMonitor();
  StartMonitor();
  EXPECT_TRUE(monitor_->Node().frozen());
}

TEST_F(MonitorTest, APeersNewerGlobalExpectIsAdopted) {
  WriteService(root_, "web", 0, "n1 n2");
  StartMonitor();
  v1::AnnounceStateRequest announce;
  announce.set_state("up");
  v1::InstanceMonitor* peer = announce.add_instances();
  peer->set_svcname("web");
  peer->set_nodename("forged");  // its own instance, whatever it says
  peer->set_status("idle");
  peer->set_avail("down");
  peer->set_global_expect("frozen");
  peer->set_global_expect_version(3);
  up_peers_.insert("n2");
  // Once the monitor has taken the service on: an announcement about a service
  // it does not know yet is only kept as the peer's.
  while (monitor_->rounds() < 2) absl::SleepFor(absl::Milliseconds(10));
  monitor_->OnPeerAnnounce("n2", announce);
  ASSERT_TRUE(WaitFor([](const v1::InstanceMonitor& i) { return i.frozen(); }));
  absl::StatusOr<v1::GetServiceMonitorReply> reply = monitor_->GetService("web");
  ASSERT_TRUE(reply.ok());
  ASSERT_EQ(reply->peers_size(), 1);
  EXPECT_EQ(reply->peers(0).nodename(), "n2");
  // The peer is not frozen yet: the target is not reached, so it stays.
  EXPECT_EQ(reply->instance().global_expect(), "frozen");
  EXPECT_EQ(reply->instance().global_expect_version(), 3u);
  // An older setting changes nothing.
  peer->set_global_expect("thawed");
  peer->set_global_expect_version(2);
  peer->set_frozen(true);
  monitor_->OnPeerAnnounce("n2", announce);
  ASSERT_TRUE(WaitFor([](const v1::InstanceMonitor& i) { return i.global_expect() == "unset"; }));
  EXPECT_TRUE(Instance().frozen());
  // The next setting here goes past every version seen.
  Set("global_expect", "thawed");
  EXPECT_EQ(Instance().global_expect_version(), 5u);  // 3, unset at 4, thawed at 5
}

}  // namespace
}  // namespace omd::monitor

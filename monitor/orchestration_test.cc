#include "monitor/orchestration.h"

#include <string>

#include "gtest/gtest.h"

namespace omd::monitor {
namespace {

service::ServiceConfig Config(service::Topology topology = service::Topology::kFailover,
                              int restart = 2) {
  service::ServiceConfig config;
  config.name = "web";
  config.nodes = {"n1", "n2"};
  config.topology = topology;
  service::Resource app;
  app.id = "app#1";
  app.check = {"true"};
  app.restart = restart;
  config.resources.push_back(app);
  return config;
}

v1::InstanceMonitor Instance(const std::string& node, const std::string& avail,
                             const std::string& local_expect = "unset",
                             const std::string& global_expect = "unset") {
  v1::InstanceMonitor instance;
  instance.set_svcname("web");
  instance.set_nodename(node);
  instance.set_status("idle");
  instance.set_local_expect(local_expect);
  instance.set_global_expect(global_expect);
  instance.set_avail(avail);
  v1::ResourceMonitor* resource = instance.add_resources();
  resource->set_id("app#1");
  resource->set_state(avail);
  resource->set_restart(2);
  return instance;
}

PeerInstances Peer(const v1::InstanceMonitor& instance, bool node_frozen = false) {
  PeerInstances peers;
  peers.instances[instance.nodename()] = instance;
  peers.node_frozen[instance.nodename()] = node_frozen;
  return peers;
}

TEST(DecideTest, NothingExpectedNothingDone) {
  const Plan plan = Decide(Instance("n1", "down"), Config(), "n1", false, {});
  EXPECT_EQ(plan.action, Plan::Action::kNone);
  EXPECT_FALSE(plan.clear_global_expect);
  EXPECT_TRUE(plan.why.empty());
}

TEST(DecideTest, StartedRestartsADownResourceUntilItsRestartsRunOut) {
  v1::InstanceMonitor instance = Instance("n1", "down", "started");
  Plan plan = Decide(instance, Config(), "n1", false, {});
  EXPECT_EQ(plan.action, Plan::Action::kRestartResources);
  EXPECT_EQ(plan.resources, std::vector<std::string>{"app#1"});

  instance.mutable_resources(0)->set_restarts(1);
  EXPECT_EQ(Decide(instance, Config(), "n1", false, {}).action,
            Plan::Action::kRestartResources);

  instance.mutable_resources(0)->set_restarts(2);
  plan = Decide(instance, Config(), "n1", false, {});
  EXPECT_EQ(plan.action, Plan::Action::kGiveUpStart);
  EXPECT_NE(plan.why.find("start failed"), std::string::npos) << plan.why;
}

TEST(DecideTest, RestartZeroGivesUpAtOnce) {
  EXPECT_EQ(Decide(Instance("n1", "down", "started"), Config(service::Topology::kFailover, 0),
                   "n1", false, {})
                .action,
            Plan::Action::kGiveUpStart);
}

TEST(DecideTest, UpResourceWithStartedNeedsNothing) {
  EXPECT_EQ(Decide(Instance("n1", "up", "started"), Config(), "n1", false, {}).action,
            Plan::Action::kNone);
}

TEST(DecideTest, NotApplicableResourcesAreNeverRestarted) {
  v1::InstanceMonitor instance = Instance("n1", "n/a", "started");
  EXPECT_EQ(Decide(instance, Config(), "n1", false, {}).action, Plan::Action::kNone);
}

TEST(DecideTest, StoppedStopsAnUpResourceRestartPlusOneTimesThenGivesUp) {
  v1::InstanceMonitor instance = Instance("n1", "up", "stopped");
  EXPECT_EQ(Decide(instance, Config(), "n1", false, {}).action, Plan::Action::kStopResources);
  instance.mutable_resources(0)->set_restarts(2);
  EXPECT_EQ(Decide(instance, Config(), "n1", false, {}).action, Plan::Action::kStopResources);
  instance.mutable_resources(0)->set_restarts(3);
  EXPECT_EQ(Decide(instance, Config(), "n1", false, {}).action, Plan::Action::kGiveUpStop);
}

TEST(DecideTest, FailedTransientOrFrozenTakeNoAction) {
  v1::InstanceMonitor failed = Instance("n1", "down", "started");
  failed.set_status("start failed");
  EXPECT_EQ(Decide(failed, Config(), "n1", false, {}).action, Plan::Action::kNone);

  v1::InstanceMonitor busy = Instance("n1", "down", "started");
  busy.set_status("restarting");
  EXPECT_EQ(Decide(busy, Config(), "n1", false, {}).action, Plan::Action::kNone);

  EXPECT_EQ(Decide(Instance("n1", "down", "started"), Config(), "n1", /*node_frozen=*/true, {})
                .action,
            Plan::Action::kNone);

  v1::InstanceMonitor frozen = Instance("n1", "down", "started");
  frozen.set_frozen(true);
  EXPECT_EQ(Decide(frozen, Config(), "n1", false, {}).action, Plan::Action::kNone);
  frozen.set_global_expect("started");
  EXPECT_EQ(Decide(frozen, Config(), "n1", false, {}).action, Plan::Action::kNone);
}

TEST(DecideTest, FailoverStartsOnTheFirstEligibleNodeOnly) {
  const v1::InstanceMonitor n1 = Instance("n1", "down", "unset", "started");
  const v1::InstanceMonitor n2 = Instance("n2", "down", "unset", "started");
  EXPECT_EQ(Decide(n1, Config(), "n1", false, Peer(n2)).action, Plan::Action::kStart);
  EXPECT_EQ(Decide(n2, Config(), "n2", false, Peer(n1)).action, Plan::Action::kNone);
}

TEST(DecideTest, FailoverSkipsFrozenAndFailedNodes) {
  v1::InstanceMonitor n1 = Instance("n1", "down", "unset", "started");
  const v1::InstanceMonitor n2 = Instance("n2", "down", "unset", "started");
  // n1's node frozen: n2 starts it.
  EXPECT_EQ(Decide(n2, Config(), "n2", false, Peer(n1, /*node_frozen=*/true)).action,
            Plan::Action::kStart);
  n1.set_status("start failed");
  EXPECT_EQ(Decide(n2, Config(), "n2", false, Peer(n1)).action, Plan::Action::kStart);
  // n1 not heard from at all.
  EXPECT_EQ(Decide(n2, Config(), "n2", false, {}).action, Plan::Action::kStart);
}

TEST(DecideTest, FailoverUpSomewhereIsReached) {
  const v1::InstanceMonitor n1 = Instance("n1", "up", "started", "started");
  const v1::InstanceMonitor n2 = Instance("n2", "down", "unset", "started");
  const Plan on_n2 = Decide(n2, Config(), "n2", false, Peer(n1));
  EXPECT_EQ(on_n2.action, Plan::Action::kNone);
  EXPECT_TRUE(on_n2.clear_global_expect);
  const Plan on_n1 = Decide(n1, Config(), "n1", false, Peer(n2));
  EXPECT_TRUE(on_n1.clear_global_expect);
}

TEST(DecideTest, StartedSetsLocalExpectWhereItRuns) {
  const Plan plan =
      Decide(Instance("n1", "up", "unset", "started"), Config(), "n1", false, {});
  ASSERT_TRUE(plan.local_expect.has_value());
  EXPECT_EQ(*plan.local_expect, "started");
}

TEST(DecideTest, FlexStartsEveryInstanceAndWaitsForAll) {
  const service::ServiceConfig flex = Config(service::Topology::kFlex);
  const v1::InstanceMonitor n1 = Instance("n1", "up", "started", "started");
  const v1::InstanceMonitor n2 = Instance("n2", "down", "unset", "started");
  EXPECT_EQ(Decide(n2, flex, "n2", false, Peer(n1)).action, Plan::Action::kStart);
  const Plan on_n1 = Decide(n1, flex, "n1", false, Peer(n2));
  EXPECT_EQ(on_n1.action, Plan::Action::kNone);
  EXPECT_FALSE(on_n1.clear_global_expect);
  EXPECT_TRUE(Decide(n1, flex, "n1", false, Peer(Instance("n2", "up", "started", "started")))
                  .clear_global_expect);
}

TEST(DecideTest, StoppedStopsEveryInstanceAndIsReachedWhenAllAreDown) {
  const v1::InstanceMonitor n1 = Instance("n1", "up", "started", "stopped");
  const v1::InstanceMonitor n2 = Instance("n2", "up", "started", "stopped");
  Plan plan = Decide(n1, Config(), "n1", false, Peer(n2));
  EXPECT_EQ(plan.action, Plan::Action::kStop);
  ASSERT_TRUE(plan.local_expect.has_value());
  EXPECT_EQ(*plan.local_expect, "stopped");
  EXPECT_FALSE(plan.clear_global_expect);

  plan = Decide(Instance("n1", "down", "stopped", "stopped"), Config(), "n1", false, Peer(n2));
  EXPECT_EQ(plan.action, Plan::Action::kNone);
  EXPECT_FALSE(plan.clear_global_expect);  // n2 still up
  plan = Decide(Instance("n1", "down", "stopped", "stopped"), Config(), "n1", false,
                Peer(Instance("n2", "down", "stopped", "stopped")));
  EXPECT_TRUE(plan.clear_global_expect);
}

TEST(DecideTest, FrozenAndThawedSetTheFlagEvenOnAFrozenNode) {
  v1::InstanceMonitor instance = Instance("n1", "up", "started", "frozen");
  Plan plan = Decide(instance, Config(), "n1", /*node_frozen=*/true, {});
  ASSERT_TRUE(plan.frozen.has_value());
  EXPECT_TRUE(*plan.frozen);
  EXPECT_TRUE(plan.clear_global_expect);  // no peer heard from
  EXPECT_EQ(plan.action, Plan::Action::kNone);

  v1::InstanceMonitor peer = Instance("n2", "up", "started", "frozen");
  plan = Decide(instance, Config(), "n1", false, Peer(peer));
  EXPECT_FALSE(plan.clear_global_expect);  // n2 not frozen yet
  peer.set_frozen(true);
  EXPECT_TRUE(Decide(instance, Config(), "n1", false, Peer(peer)).clear_global_expect);

  instance.set_frozen(true);
  instance.set_global_expect("thawed");
  plan = Decide(instance, Config(), "n1", false, {});
  ASSERT_TRUE(plan.frozen.has_value());
  EXPECT_FALSE(*plan.frozen);
}

TEST(DecideTest, NodesThatHaveNotToldYetHoldAFailoverStartAndAnyReach) {
  PeerInstances waiting;
  waiting.waiting_for = {"n1"};
  // n2 would start it, n1 not being heard of: but n1 is up and may be first.
  EXPECT_EQ(Decide(Instance("n2", "down", "unset", "started"), Config(), "n2", false, waiting)
                .action,
            Plan::Action::kNone);
  // Up here, but not reached while n1 has not told.
  EXPECT_FALSE(Decide(Instance("n2", "up", "unset", "started"), Config(), "n2", false, waiting)
                   .clear_global_expect);
  const Plan stop = Decide(Instance("n2", "up", "started", "stopped"), Config(), "n2", false,
                           waiting);
  EXPECT_EQ(stop.action, Plan::Action::kStop);  // its own part goes on
  EXPECT_FALSE(Decide(Instance("n2", "down", "stopped", "stopped"), Config(), "n2", false,
                      waiting)
                   .clear_global_expect);
  // A flex instance starts its own part.
  EXPECT_EQ(Decide(Instance("n2", "down", "unset", "started"),
                   Config(service::Topology::kFlex), "n2", false, waiting)
                .action,
            Plan::Action::kStart);
}

TEST(IsNewerGlobalExpectTest, VersionThenNodeName) {
  v1::InstanceMonitor current = Instance("n1", "up", "unset", "started");
  current.set_global_expect_version(4);
  v1::InstanceMonitor candidate = Instance("n2", "up", "unset", "stopped");
  candidate.set_global_expect_version(5);
  EXPECT_TRUE(IsNewerGlobalExpect(candidate, current));
  EXPECT_FALSE(IsNewerGlobalExpect(current, candidate));
  candidate.set_global_expect_version(4);
  EXPECT_TRUE(IsNewerGlobalExpect(candidate, current));   // n2 > n1
  EXPECT_FALSE(IsNewerGlobalExpect(current, candidate));
  candidate.set_global_expect("started");
  EXPECT_FALSE(IsNewerGlobalExpect(candidate, current));  // the same setting
}

}  // namespace
}  // namespace omd::monitor

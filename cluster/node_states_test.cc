#include "cluster/node_states.h"

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace omd::cluster {
namespace {

class NodeStatesTest : public ::testing::Test {
 protected:
  NodeStates::Options options() {
    NodeStates::Options options;
    options.up_for = absl::Seconds(7);
    options.clock = [this] { return now_; };
    return options;
  }
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
};

TEST_F(NodeStatesTest, NeverHeardIsUnknown) {
  NodeStates states(options());
  EXPECT_EQ(states.Get("node2").state, NodeState::kUnknown);
  EXPECT_EQ(states.Get("node2").last_seen, absl::InfinitePast());
}

TEST_F(NodeStatesTest, UpWhileHeardFromThenUnknown) {
  NodeStates states(options());
  states.Announced("node2", NodeState::kUp);
  EXPECT_EQ(states.Get("node2").state, NodeState::kUp);
  EXPECT_EQ(states.Get("node2").last_seen, now_);
  now_ += absl::Seconds(7);
  EXPECT_EQ(states.Get("node2").state, NodeState::kUp);
  now_ += absl::Seconds(1);
  EXPECT_EQ(states.Get("node2").state, NodeState::kUnknown);
  states.Heard("node2");  // a reply to our heartbeat
  EXPECT_EQ(states.Get("node2").state, NodeState::kUp);
}

TEST_F(NodeStatesTest, MaintenanceLastsUntilTheNodeSaysItIsUp) {
  NodeStates states(options());
  states.Announced("node2", NodeState::kMaintenance);
  EXPECT_EQ(states.Get("node2").state, NodeState::kMaintenance);
  now_ += absl::Hours(1);
  states.Heard("node2");  // replies do not end it
  EXPECT_EQ(states.Get("node2").state, NodeState::kMaintenance);
  states.Announced("node2", NodeState::kUp);
  EXPECT_EQ(states.Get("node2").state, NodeState::kUp);
  EXPECT_EQ(states.Get("node3").state, NodeState::kUnknown) << "nodes are apart";
}

TEST(AnnouncedStateTest, OnlyUpAndMaintenanceMayBeAnnounced) {
  EXPECT_EQ(*AnnouncedState("up"), NodeState::kUp);
  EXPECT_EQ(*AnnouncedState("maintenance"), NodeState::kMaintenance);
  for (const char* bad : {"", "unknown", "UP", "down"}) {
    EXPECT_EQ(AnnouncedState(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace omd::cluster

#include "cluster/heartbeat_schedule.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace omd::cluster {
namespace {

const absl::Time kLastSeen = absl::FromUnixSeconds(1000);

// The rounds in [0, rounds) that call a member whose every call fails.
std::vector<int64_t> RoundsCallingAFailingMember(HeartbeatSchedule& schedule, int64_t rounds) {
  std::vector<int64_t> called;
  for (int64_t round = 0; round < rounds; ++round) {
    if (!schedule.Due("node2", round, kLastSeen)) continue;
    called.push_back(round);
    schedule.Record("node2", round, /*acknowledged=*/false, kLastSeen);
  }
  return called;
}

TEST(HeartbeatScheduleTest, AFailingMemberIsCalledLessAndLessOftenUpToTheCap) {
  HeartbeatSchedule schedule(HeartbeatSchedule::Options{});
  // Every round for 3 failures, then 2, 4, 8 rounds apart, then 15 at most.
  EXPECT_EQ(RoundsCallingAFailingMember(schedule, 80),
            (std::vector<int64_t>{0, 1, 2, 3, 5, 9, 17, 32, 47, 62, 77}));
}

TEST(HeartbeatScheduleTest, RecordSaysWhenAMemberStartsSkippingRounds) {
  HeartbeatSchedule schedule(HeartbeatSchedule::Options{});
  EXPECT_FALSE(schedule.Record("node2", 0, /*acknowledged=*/false, kLastSeen));
  EXPECT_FALSE(schedule.Record("node2", 1, /*acknowledged=*/false, kLastSeen));
  EXPECT_FALSE(schedule.Record("node2", 2, /*acknowledged=*/false, kLastSeen));
  EXPECT_TRUE(schedule.Record("node2", 3, /*acknowledged=*/false, kLastSeen));
  EXPECT_FALSE(schedule.Record("node2", 5, /*acknowledged=*/true, kLastSeen));
}

TEST(HeartbeatScheduleTest, AMemberThatAnswersIsCalledEveryRound) {
  HeartbeatSchedule schedule(HeartbeatSchedule::Options{});
  for (int64_t round = 0; round < 10; ++round) {
    ASSERT_TRUE(schedule.Due("node2", round, kLastSeen)) << round;
    schedule.Record("node2", round, /*acknowledged=*/true, kLastSeen);
  }
  // An answer after failures restores every round.
  RoundsCallingAFailingMember(schedule, 20);
  EXPECT_FALSE(schedule.Due("node2", 21, kLastSeen));
  schedule.Record("node2", 32, /*acknowledged=*/true, kLastSeen);
  EXPECT_TRUE(schedule.Due("node2", 33, kLastSeen));
  EXPECT_TRUE(schedule.Due("node2", 34, kLastSeen));
}

// A member that starts again announces itself: heard from, it is called in the
// next round, not at its backed-off one.
TEST(HeartbeatScheduleTest, HearingFromASkippedMemberMakesItDueAtOnce) {
  HeartbeatSchedule schedule(HeartbeatSchedule::Options{});
  RoundsCallingAFailingMember(schedule, 40);
  ASSERT_FALSE(schedule.Due("node2", 40, kLastSeen));
  EXPECT_TRUE(schedule.Due("node2", 40, kLastSeen + absl::Seconds(1)));
  // Its schedule starts over: a new failure is not backed off.
  schedule.Record("node2", 40, /*acknowledged=*/false, kLastSeen + absl::Seconds(1));
  EXPECT_TRUE(schedule.Due("node2", 41, kLastSeen + absl::Seconds(1)));
}

TEST(HeartbeatScheduleTest, MembersAreScheduledApart) {
  HeartbeatSchedule schedule(HeartbeatSchedule::Options{});
  RoundsCallingAFailingMember(schedule, 40);
  EXPECT_FALSE(schedule.Due("node2", 40, kLastSeen));
  EXPECT_TRUE(schedule.Due("node3", 40, kLastSeen));
}

TEST(HeartbeatScheduleTest, RetainForgetsMembersThatLeft) {
  HeartbeatSchedule schedule(HeartbeatSchedule::Options{});
  RoundsCallingAFailingMember(schedule, 40);
  schedule.Retain({"node2", "node3"});
  EXPECT_FALSE(schedule.Due("node2", 40, kLastSeen));
  schedule.Retain({"node3"});
  // Should node2 join again, it starts as any member does.
  EXPECT_TRUE(schedule.Due("node2", 40, kLastSeen));
}

}  // namespace
}  // namespace omd::cluster

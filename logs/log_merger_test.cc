#include "logs/log_merger.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace omd::logs {
namespace {

v1::LogRecord Record(const std::string& node, int64_t time_ms, const std::string& message) {
  v1::LogRecord record;
  record.set_nodename(node);
  record.set_time_unix_ms(time_ms);
  record.set_message(message);
  return record;
}

std::vector<std::string> Messages(const std::vector<v1::LogRecord>& records) {
  std::vector<std::string> messages;
  for (const v1::LogRecord& record : records) messages.push_back(record.message());
  return messages;
}

const absl::Time kT0 = absl::FromUnixSeconds(1800000000);

TEST(LogMergerTest, MergesEndedSourcesByTime) {
  LogMerger merger({"n1", "n2", "n3"}, LogMerger::Options());
  merger.Add("n1", {Record("n1", 10, "a"), Record("n1", 40, "d")}, kT0);
  merger.Add("n2", {Record("n2", 20, "b"), Record("n2", 50, "e")}, kT0);
  merger.Add("n3", {Record("n3", 30, "c")}, kT0);
  for (const char* node : {"n1", "n2", "n3"}) merger.End(node);
  EXPECT_EQ(Messages(merger.Take(kT0)),
            (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_TRUE(merger.done());
}

TEST(LogMergerTest, ARecordWaitsForASilentOpenSourceThenComesOut) {
  LogMerger::Options options;
  options.lateness = absl::Milliseconds(5);
  LogMerger merger({"n1", "n2"}, options);
  merger.Ready("n1");
  merger.Ready("n2");
  merger.Add("n1", {Record("n1", 100, "late-safe")}, kT0);
  EXPECT_TRUE(merger.Take(kT0).empty());  // n2 may still send something older
  ASSERT_TRUE(merger.NextDeadline().has_value());
  EXPECT_EQ(*merger.NextDeadline(), kT0 + absl::Milliseconds(5));
  // n2's older record arrives within the bound: it comes out first.
  merger.Add("n2", {Record("n2", 90, "older")}, kT0 + absl::Milliseconds(2));
  EXPECT_EQ(Messages(merger.Take(kT0 + absl::Milliseconds(2))),
            (std::vector<std::string>{"older"}));
  // n2 silent again: n1's record goes out once it has waited 5 ms.
  EXPECT_TRUE(merger.Take(kT0 + absl::Milliseconds(4)).empty());
  EXPECT_EQ(Messages(merger.Take(kT0 + absl::Milliseconds(5))),
            (std::vector<std::string>{"late-safe"}));
  EXPECT_FALSE(merger.NextDeadline().has_value());
  EXPECT_FALSE(merger.done());  // both still open
}

TEST(LogMergerTest, WhenEveryOpenSourceHasSpokenNothingWaits) {
  LogMerger merger({"n1", "n2"}, LogMerger::Options());
  merger.Ready("n1");
  merger.Ready("n2");
  merger.Add("n1", {Record("n1", 10, "a"), Record("n1", 30, "c")}, kT0);
  merger.Add("n2", {Record("n2", 20, "b")}, kT0);
  // a and b at once; c must wait for n2's next.
  EXPECT_EQ(Messages(merger.Take(kT0)), (std::vector<std::string>{"a", "b"}));
  merger.End("n2");
  EXPECT_EQ(Messages(merger.Take(kT0)), (std::vector<std::string>{"c"}));
}

TEST(LogMergerTest, ARecordLaterThanTheBoundStillComesOut) {
  LogMerger merger({"n1", "n2"}, LogMerger::Options());
  merger.Ready("n1");
  merger.Ready("n2");
  merger.Add("n1", {Record("n1", 100, "first")}, kT0);
  EXPECT_EQ(merger.Take(kT0 + absl::Seconds(1)).size(), 1u);
  merger.Add("n2", {Record("n2", 50, "very late")}, kT0 + absl::Seconds(1));
  EXPECT_EQ(Messages(merger.Take(kT0 + absl::Seconds(2))),
            (std::vector<std::string>{"very late"}));
}

TEST(LogMergerTest, EachSourceKeepsItsOwnOrder) {
  LogMerger merger({"n1", "n2"}, LogMerger::Options());
  // n1's clock stepped back: its second record still follows its first.
  merger.Add("n1", {Record("n1", 100, "n1-first"), Record("n1", 10, "n1-second")}, kT0);
  merger.Add("n2", {Record("n2", 50, "n2")}, kT0);
  merger.End("n1");
  merger.End("n2");
  EXPECT_EQ(Messages(merger.Take(kT0)),
            (std::vector<std::string>{"n2", "n1-first", "n1-second"}));
}

TEST(LogMergerTest, UnknownSourcesAreIgnoredAndReopenHoldsAgain) {
  LogMerger merger({"n1", "n2"}, LogMerger::Options());
  merger.Add("n9", {Record("n9", 1, "stranger")}, kT0);
  EXPECT_EQ(merger.waiting(), 0u);
  merger.End("n2");
  merger.Add("n1", {Record("n1", 10, "a")}, kT0);
  EXPECT_EQ(merger.Take(kT0).size(), 1u);
  merger.Reopen("n2");
  merger.Add("n1", {Record("n1", 20, "b")}, kT0);
  EXPECT_TRUE(merger.Take(kT0).empty());  // n2 is back: it may have older ones
  EXPECT_TRUE(merger.Take(kT0 + absl::Seconds(10)).empty());  // its backlog first
  merger.Ready("n2");
  EXPECT_EQ(merger.Take(kT0 + absl::Seconds(10)).size(), 1u);
}

TEST(LogMergerTest, ABacklogNotAllInHoldsTheOthersBackWhateverTheWait) {
  LogMerger merger({"n1", "n2", "n3"}, LogMerger::Options());
  merger.Add("n1", {Record("n1", 10, "a"), Record("n1", 40, "d")}, kT0);
  merger.Ready("n1");
  merger.Add("n2", {Record("n2", 20, "b")}, kT0);
  merger.Ready("n2");
  // n3's backlog is late, by far more than the bound: nothing goes before it.
  EXPECT_TRUE(merger.Take(kT0 + absl::Seconds(5)).empty());
  EXPECT_FALSE(merger.NextDeadline().has_value());
  merger.Add("n3", {Record("n3", 30, "c")}, kT0 + absl::Seconds(5));
  merger.Ready("n3");
  // a and b at once (the others have spoken past them); c, then d, once they
  // have waited for the silent n2.
  EXPECT_EQ(Messages(merger.Take(kT0 + absl::Seconds(5))), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Messages(merger.Take(kT0 + absl::Seconds(6))), (std::vector<std::string>{"c", "d"}));
}

TEST(LogMergerTest, TiesGoToTheFirstListedSource) {
  LogMerger merger({"n1", "n2"}, LogMerger::Options());
  merger.Add("n2", {Record("n2", 10, "second")}, kT0);
  merger.Add("n1", {Record("n1", 10, "first")}, kT0);
  merger.End("n1");
  merger.End("n2");
  EXPECT_EQ(Messages(merger.Take(kT0)), (std::vector<std::string>{"first", "second"}));
}

}  // namespace
}  // namespace omd::logs

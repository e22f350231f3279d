#include "server/blacklist.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace omd::server {
namespace {

net::IpAddress Source(const std::string& text) {
  return net::IpAddress::Parse(text).value().SourceKey();
}
Sender Member(const std::string& name, const std::string& source) {
  return Sender{name, Source(source)};
}
Sender NonMember(const std::string& source) { return Sender{"", Source(source)}; }

const Sender kNode2 = Member("node2", "127.0.0.2");
const Sender kForgedNode2 = Member("node2", "127.0.0.3");

TEST(BlacklistTest, BlocksAtTheThresholdExactly) {
  Blacklist blacklist({.threshold = 5});
  for (int i = 1; i <= 4; ++i) {
    EXPECT_FALSE(blacklist.RecordInvalid(kNode2)) << i;
    EXPECT_FALSE(blacklist.IsBlocked(kNode2)) << i;
  }
  EXPECT_FALSE(blacklist.IsSourceBanned(Source("127.0.0.2")));
  EXPECT_TRUE(blacklist.RecordInvalid(kNode2));
  EXPECT_TRUE(blacklist.IsBlocked(kNode2));
  EXPECT_TRUE(blacklist.IsSourceBanned(Source("127.0.0.2")));
  blacklist.RecordInvalid(kNode2);  // counts stop at the threshold
  ASSERT_EQ(blacklist.Entries().size(), 1u);
  EXPECT_EQ(blacklist.Entries()[0].invalid_messages, 5u);
  EXPECT_TRUE(blacklist.Entries()[0].blocked);
}

TEST(BlacklistTest, AValidMessageResetsTheRun) {
  Blacklist blacklist({.threshold = 5});
  for (int i = 0; i < 4; ++i) blacklist.RecordInvalid(kNode2);
  blacklist.RecordValid(kNode2);
  EXPECT_TRUE(blacklist.Entries().empty());
  for (int i = 0; i < 4; ++i) blacklist.RecordInvalid(kNode2);
  EXPECT_FALSE(blacklist.IsBlocked(kNode2));
  // Even a blocked sender, if it ever gets a valid message through (after a clear).
  for (int i = 0; i < 5; ++i) blacklist.RecordInvalid(kForgedNode2);
  blacklist.RecordValid(kForgedNode2);
  EXPECT_FALSE(blacklist.IsSourceBanned(Source("127.0.0.3")));
}

TEST(BlacklistTest, SameNameFromAnotherSourceIsAnotherSender) {
  Blacklist blacklist({.threshold = 5});
  for (int i = 0; i < 5; ++i) blacklist.RecordInvalid(kForgedNode2);
  EXPECT_TRUE(blacklist.IsBlocked(kForgedNode2));
  EXPECT_FALSE(blacklist.IsBlocked(kNode2));
  EXPECT_TRUE(blacklist.IsSourceBanned(Source("127.0.0.3")));
  EXPECT_FALSE(blacklist.IsSourceBanned(Source("127.0.0.2")));
}

// Non-members share one count per source, and so do IPv6 hosts of one /64.
TEST(BlacklistTest, NonMembersAndIpv6HostsCountPerSource) {
  Blacklist blacklist({.threshold = 5});
  for (int i = 0; i < 5; ++i) {
    blacklist.RecordInvalid(NonMember(absl::StrCat("2001:db8:1:2::", i + 1)));
  }
  EXPECT_TRUE(blacklist.IsBlocked(NonMember("2001:db8:1:2:ffff::9")));
  EXPECT_FALSE(blacklist.IsBlocked(NonMember("2001:db8:1:3::1")));
  ASSERT_EQ(blacklist.Entries().size(), 1u);
  EXPECT_EQ(blacklist.Entries()[0].sender.ToString(), "(non-member)@2001:db8:1:2::/64");
}

TEST(BlacklistTest, EntriesAreSortedAndClearEmptiesThem) {
  Blacklist blacklist({});
  blacklist.RecordInvalid(Member("node3", "127.0.0.3"));
  blacklist.RecordInvalid(kForgedNode2);
  blacklist.RecordInvalid(kNode2);
  blacklist.RecordInvalid(NonMember("127.0.0.9"));
  std::vector<BlacklistEntry> entries = blacklist.Entries();
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].sender, NonMember("127.0.0.9"));
  EXPECT_EQ(entries[1].sender, kNode2);
  EXPECT_EQ(entries[2].sender, kForgedNode2);
  EXPECT_EQ(entries[3].sender.nodename, "node3");
  for (int i = 0; i < 5; ++i) blacklist.RecordInvalid(kNode2);
  EXPECT_EQ(blacklist.Clear(), 4u);
  EXPECT_TRUE(blacklist.Entries().empty());
  EXPECT_FALSE(blacklist.IsSourceBanned(Source("127.0.0.2")));
}

// A full table forgets its least recently failed counting sender first: a flood
// of new senders can neither stop the table from tracking nor unblock anyone
// while counting senders remain.
TEST(BlacklistTest, AFullTableEvictsCountingSendersFirst) {
  Blacklist blacklist({.threshold = 5, .capacity = 3});
  for (int i = 0; i < 5; ++i) blacklist.RecordInvalid(kForgedNode2);
  for (int i = 0; i < 100; ++i) {
    blacklist.RecordInvalid(Member("node2", absl::StrCat("127.0.1.", i)));
  }
  EXPECT_EQ(blacklist.Entries().size(), 3u);
  EXPECT_TRUE(blacklist.IsBlocked(kForgedNode2));
  // A newcomer is tracked: never "table full, stop counting".
  EXPECT_FALSE(blacklist.RecordInvalid(Member("node2", "127.0.2.1")));
  ASSERT_EQ(blacklist.Entries().size(), 3u);
  EXPECT_EQ(blacklist.Entries().back().sender, Member("node2", "127.0.2.1"));
  EXPECT_EQ(blacklist.Entries().back().invalid_messages, 1u);
  EXPECT_TRUE(blacklist.IsBlocked(kForgedNode2));
}

// Only a table full of blocked senders gives one back (the least recently
// failed), so the table keeps tracking new senders whatever the flood.
TEST(BlacklistTest, ATableFullOfBlockedSendersStillTracksNewOnes) {
  Blacklist blacklist({.threshold = 2, .capacity = 3});
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 2; ++j) blacklist.RecordInvalid(NonMember(absl::StrCat("10.0.0.", i)));
  }
  for (int j = 0; j < 2; ++j) blacklist.RecordInvalid(NonMember("10.0.0.99"));
  EXPECT_TRUE(blacklist.IsBlocked(NonMember("10.0.0.99")));
  EXPECT_FALSE(blacklist.IsBlocked(NonMember("10.0.0.0")));  // the oldest went
  EXPECT_FALSE(blacklist.IsSourceBanned(Source("10.0.0.0")));
  EXPECT_TRUE(blacklist.IsBlocked(NonMember("10.0.0.1")));
}

// One kind of sender never evicts the other: a flood of non-member sources
// leaves every member name tracked.
TEST(BlacklistTest, NonMemberFloodsNeverEvictMemberNames) {
  Blacklist blacklist({.threshold = 5, .capacity = 16});
  for (int i = 0; i < 5; ++i) blacklist.RecordInvalid(kForgedNode2);
  for (int i = 0; i < 3; ++i) blacklist.RecordInvalid(kNode2);
  for (int i = 0; i < 10000; ++i) {
    blacklist.RecordInvalid(NonMember(absl::StrCat("10.", i / 65536, ".", (i / 256) % 256,
                                                   ".", i % 256)));
  }
  EXPECT_TRUE(blacklist.IsBlocked(kForgedNode2));
  for (const BlacklistEntry& entry : blacklist.Entries()) {
    if (entry.sender == kNode2) {
      EXPECT_EQ(entry.invalid_messages, 3u);
    }
  }
  EXPECT_EQ(blacklist.Entries().size(), 2u + 16u);
}

// Many senders failing and succeeding at once: counts stay exact (and TSan sees
// every access).
TEST(BlacklistTest, ConcurrentSendersAreCountedExactly) {
  Blacklist blacklist({.threshold = 1000});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&blacklist, t] {
      const Sender mine = Member(absl::StrCat("node", t), "127.0.0.1");
      for (int i = 0; i < 500; ++i) {
        blacklist.RecordInvalid(mine);
        blacklist.RecordInvalid(NonMember("127.0.0.9"));
        blacklist.IsBlocked(mine);
        blacklist.IsSourceBanned(Source("127.0.0.9"));
      }
      blacklist.Entries();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const BlacklistEntry& entry : blacklist.Entries()) {
    EXPECT_EQ(entry.invalid_messages, entry.sender.nodename.empty() ? 1000u : 500u)
        << entry.sender.ToString();
  }
}

}  // namespace
}  // namespace omd::server

#include "server/blacklist.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace omd::server {
namespace {

const Sender kNode2{"node2", "127.0.0.2"};
const Sender kForgedNode2{"node2", "127.0.0.3"};

TEST(BlacklistTest, BlocksAtTheThresholdExactly) {
  Blacklist blacklist({.threshold = 5});
  for (int i = 1; i <= 4; ++i) {
    EXPECT_FALSE(blacklist.RecordInvalid(kNode2)) << i;
    EXPECT_FALSE(blacklist.IsBlocked(kNode2)) << i;
  }
  EXPECT_TRUE(blacklist.RecordInvalid(kNode2));
  EXPECT_TRUE(blacklist.IsBlocked(kNode2));
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
}

TEST(BlacklistTest, SameNameFromAnotherAddressIsAnotherSender) {
  Blacklist blacklist({.threshold = 5});
  for (int i = 0; i < 5; ++i) blacklist.RecordInvalid(kForgedNode2);
  EXPECT_TRUE(blacklist.IsBlocked(kForgedNode2));
  EXPECT_FALSE(blacklist.IsBlocked(kNode2));
}

TEST(BlacklistTest, EntriesAreSortedAndClearEmptiesThem) {
  Blacklist blacklist({});
  blacklist.RecordInvalid({"node3", "127.0.0.3"});
  blacklist.RecordInvalid(kForgedNode2);
  blacklist.RecordInvalid(kNode2);
  std::vector<BlacklistEntry> entries = blacklist.Entries();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].sender, kNode2);
  EXPECT_EQ(entries[1].sender, kForgedNode2);
  EXPECT_EQ(entries[2].sender.nodename, "node3");
  EXPECT_EQ(blacklist.Clear(), 3u);
  EXPECT_TRUE(blacklist.Entries().empty());
}

// Flooding with new senders evicts the least-failed ones, never a blocked one,
// even when the flood gets its own senders blocked first.
TEST(BlacklistTest, FullBlacklistKeepsBlockedSenders) {
  Blacklist blacklist({.threshold = 5, .capacity = 3});
  for (int i = 0; i < 5; ++i) blacklist.RecordInvalid(kForgedNode2);
  for (int i = 0; i < 100; ++i) {
    const Sender flood{"forged" + std::to_string(i), "127.0.0.9"};
    for (int j = 0; j < 5; ++j) blacklist.RecordInvalid(flood);
  }
  std::vector<BlacklistEntry> entries = blacklist.Entries();
  EXPECT_EQ(entries.size(), 3u);
  EXPECT_TRUE(blacklist.IsBlocked(kForgedNode2));
  EXPECT_TRUE(blacklist.IsBlocked({"forged0", "127.0.0.9"}));
  EXPECT_TRUE(blacklist.IsBlocked({"forged1", "127.0.0.9"}));
  EXPECT_FALSE(blacklist.IsBlocked({"forged99", "127.0.0.9"}));  // never tracked
}

}  // namespace
}  // namespace omd::server

namespace omd::server {
namespace {

// Many senders failing and succeeding at once: counts stay exact (and TSan sees
// every access).
TEST(BlacklistTest, ConcurrentSendersAreCountedExactly) {
  Blacklist blacklist({.threshold = 1000});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&blacklist, t] {
      const Sender mine{"node" + std::to_string(t), "127.0.0.1"};
      for (int i = 0; i < 500; ++i) {
        blacklist.RecordInvalid(mine);
        blacklist.RecordInvalid({"shared", "127.0.0.9"});
        blacklist.IsBlocked(mine);
      }
      blacklist.Entries();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const BlacklistEntry& entry : blacklist.Entries()) {
    EXPECT_EQ(entry.invalid_messages, entry.sender.nodename == "shared" ? 1000u : 500u)
        << entry.sender.nodename;
  }
}

}  // namespace
}  // namespace omd::server

#include "server/address_book.h"

#include "gtest/gtest.h"

namespace omd::server {
namespace {

net::IpAddress Ip(const char* text) { return net::IpAddress::Parse(text).value(); }

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

TEST(AddressBookTest, ClassifiesLocalMembersAndOthers) {
  Blacklist blacklist({});
  AddressBook book({}, &blacklist);
  book.SetLocal({Ip("127.0.0.1"), Ip("10.0.0.1")});
  book.SetConfiguredMembers({Ip("10.0.0.2")});
  EXPECT_EQ(book.ClassOf(Ip("127.0.0.1"), kStart), net::PeerClass::kLocal);
  EXPECT_EQ(book.ClassOf(Ip("10.0.0.1"), kStart), net::PeerClass::kLocal);
  EXPECT_EQ(book.ClassOf(Ip("10.0.0.2"), kStart), net::PeerClass::kMember);
  EXPECT_EQ(book.ClassOf(Ip("10.0.0.3"), kStart), net::PeerClass::kOther);
  // 127.0.0.5 is loopback, but not one of this host's addresses: a test's peer.
  EXPECT_EQ(book.ClassOf(Ip("127.0.0.5"), kStart), net::PeerClass::kOther);
}

TEST(AddressBookTest, LearnedMemberSourcesExpire) {
  Blacklist blacklist({});
  AddressBook book({.learned_ttl = absl::Minutes(10), .max_learned = 2}, &blacklist);
  book.LearnMember(Ip("10.0.0.7"), kStart);
  EXPECT_EQ(book.ClassOf(Ip("10.0.0.7"), kStart + absl::Minutes(9)), net::PeerClass::kMember);
  EXPECT_EQ(book.ClassOf(Ip("10.0.0.7"), kStart + absl::Minutes(11)), net::PeerClass::kOther);
  // Bounded: a third learned source pushes out the oldest.
  book.LearnMember(Ip("10.0.0.8"), kStart + absl::Minutes(1));
  book.LearnMember(Ip("10.0.0.9"), kStart + absl::Minutes(2));
  book.LearnMember(Ip("10.0.0.10"), kStart + absl::Minutes(3));
  EXPECT_EQ(book.ClassOf(Ip("10.0.0.10"), kStart + absl::Minutes(3)), net::PeerClass::kMember);
  EXPECT_EQ(book.ClassOf(Ip("10.0.0.9"), kStart + absl::Minutes(3)), net::PeerClass::kMember);
  EXPECT_EQ(book.ClassOf(Ip("10.0.0.8"), kStart + absl::Minutes(3)), net::PeerClass::kOther);
}

// An outsider's source with a blocked sender is refused; members' and the local
// node's never are, whatever was forged from them.
TEST(AddressBookTest, OnlyOutsidersAreRefused) {
  Blacklist blacklist({.threshold = 1});
  AddressBook book({}, &blacklist);
  book.SetLocal({Ip("127.0.0.1")});
  book.SetConfiguredMembers({Ip("10.0.0.2")});
  for (const char* source : {"127.0.0.1", "10.0.0.2", "10.0.0.3"}) {
    blacklist.RecordInvalid(Sender{"", Ip(source)});
  }
  EXPECT_FALSE(book.Classify(Ip("127.0.0.1")).refused);
  EXPECT_FALSE(book.Classify(Ip("10.0.0.2")).refused);
  EXPECT_TRUE(book.Classify(Ip("10.0.0.3")).refused);
  EXPECT_FALSE(book.Classify(Ip("10.0.0.4")).refused);
  blacklist.Clear();
  EXPECT_FALSE(book.Classify(Ip("10.0.0.3")).refused);
}

}  // namespace
}  // namespace omd::server

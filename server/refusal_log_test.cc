#include "server/refusal_log.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace omd::server {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);

Sender At(const std::string& name, const std::string& source) {
  return Sender{name, net::IpAddress::Parse(source).value()};
}

class RefusalLogTest : public ::testing::Test {
 protected:
  RefusalLog::Options Capturing() {
    RefusalLog::Options options;
    options.write = [this](absl::string_view line) { lines_.emplace_back(line); };
    return options;
  }
  std::vector<std::string> lines_;
};

TEST_F(RefusalLogTest, TheFirstRefusalIsLoggedTheRestSummed) {
  RefusalLog log(Capturing());
  const Sender forger = At("node2", "127.0.0.3");
  log.Record(forger, absl::UnauthenticatedError("bad tag"), kStart);
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0], "refused a message from node2@127.0.0.3: UNAUTHENTICATED: bad tag");
  for (int i = 0; i < 1000; ++i) {
    log.Record(forger, absl::PermissionDeniedError("blacklisted"), kStart + absl::Seconds(1));
  }
  log.Flush(kStart + absl::Seconds(5));  // not due yet
  EXPECT_EQ(lines_.size(), 1u);
  log.Flush(kStart + absl::Seconds(10));
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_TRUE(absl::StartsWith(lines_[1], "refused 1000 more message(s) from node2@127.0.0.3"))
      << lines_[1];
  EXPECT_TRUE(absl::StrContains(lines_[1], "(last: PERMISSION_DENIED: blacklisted)"));
  log.Flush(kStart + absl::Seconds(30));  // nothing new: nothing written
  EXPECT_EQ(lines_.size(), 2u);
  EXPECT_EQ(log.refused(), 1001u);
}

// Rotating senders cannot turn into a line each: the lines of an interval are
// capped, and the rest share one.
TEST_F(RefusalLogTest, ManySendersShareABoundedNumberOfLines) {
  RefusalLog::Options options = Capturing();
  options.max_lines_per_interval = 20;
  RefusalLog log(options);
  for (int i = 0; i < 500; ++i) {
    log.Record(At("", absl::StrCat("10.0.", i / 256, ".", i % 256)),
               absl::PermissionDeniedError("not a member"), kStart);
  }
  EXPECT_EQ(lines_.size(), 20u);
  // The next interval: 20 more senders get a line, the other 460 share one.
  log.Flush(kStart + absl::Seconds(10));
  ASSERT_EQ(lines_.size(), 20u + 21u);
  EXPECT_EQ(lines_.back(), "refused 460 message(s) from 460 more sender(s)");
}

TEST_F(RefusalLogTest, SendersBeyondTheTableAreSummedToo) {
  RefusalLog::Options options = Capturing();
  options.max_senders = 2;
  options.max_lines_per_interval = 100;
  RefusalLog log(options);
  for (int i = 0; i < 10; ++i) {
    log.Record(At("", absl::StrCat("10.0.0.", i)), absl::PermissionDeniedError("x"), kStart);
  }
  EXPECT_EQ(lines_.size(), 2u);
  log.Flush(kStart + absl::Seconds(10));
  ASSERT_EQ(lines_.size(), 3u);
  EXPECT_EQ(lines_.back(), "refused 8 message(s) from 1 more sender(s)");
}

}  // namespace
}  // namespace omd::server

#include "client/logs_commands.h"

#include <string>

#include "gtest/gtest.h"

namespace omd::client {
namespace {

TEST(ParseSinceTest, DurationsAgoAndTimes) {
  const absl::Time now = absl::FromUnixSeconds(1800000000);
  absl::StatusOr<absl::Time> since = ParseSince("10m", now);
  ASSERT_TRUE(since.ok()) << since.status();
  EXPECT_EQ(*since, now - absl::Minutes(10));
  since = ParseSince("1h30m", now);
  ASSERT_TRUE(since.ok());
  EXPECT_EQ(*since, now - absl::Minutes(90));
  since = ParseSince("2026-12-01T10:00:00+01:00", now);
  ASSERT_TRUE(since.ok()) << since.status();
  EXPECT_EQ(*since, absl::FromUnixSeconds(1796115600));
  since = ParseSince("2026-12-01 10:00:00", now);
  ASSERT_TRUE(since.ok()) << since.status();
  absl::Time local;
  std::string error;
  ASSERT_TRUE(absl::ParseTime("%Y-%m-%d %H:%M:%S", "2026-12-01 10:00:00",
                              absl::LocalTimeZone(), &local, &error));
  EXPECT_EQ(*since, local);
  for (const char* bad : {"", "yesterday", "-5m", "2026-13-01", "10 minutes"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseSince(bad, now).status())) << bad;
  }
}

TEST(FormatRecordTest, OneLinePerRecordLineWithTheNode) {
  v1::LogRecord record;
  record.set_nodename("node1");
  record.set_level("ERROR");
  record.set_message("app#1: start exited 1:\nno disk left");
  record.set_time_unix_ms(absl::ToUnixMillis(absl::FromUnixSeconds(1800000000)) + 42);
  const std::string text = FormatRecord(record, /*color=*/false);
  EXPECT_NE(text.find(",042 ERROR   | app#1: start exited 1:\n"), std::string::npos) << text;
  EXPECT_EQ(text.rfind("node1       "), text.find("\n") + 1) << text;
  EXPECT_NE(text.find("| no disk left\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("\x1b["), std::string::npos);
  const std::string colored = FormatRecord(record, /*color=*/true);
  EXPECT_EQ(colored.find("\x1b["), 0u);
  EXPECT_NE(colored.find("node1\x1b[0m"), std::string::npos);
}

}  // namespace
}  // namespace omd::client

#include "logs/log_record.h"

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "gtest/gtest.h"
#include "proto/omd.pb.h"
#include "service/service_log.h"

namespace omd::logs {
namespace {

int64_t LocalMillis(int y, int m, int d, int hh, int mm, int ss, int ms) {
  return absl::ToUnixMillis(absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss),
                                            absl::LocalTimeZone())) +
         ms;
}

TEST(LogRecordTest, RecordsAndContinuationLines) {
  const std::vector<v1::LogRecord> records = ParseLogRecords(
      "2026-12-01 22:43:31,123 INFO | app#1: start: /bin/sleep 100\n"
      "2026-12-01 22:43:31,456 ERROR | app#1: start exited 1:\n"
      "first line of its stderr\n"
      "\n"
      "  indented\n"
      "2026-12-02 00:00:00,007 DEBUG | \n"
      "2026-12-02 00:00:01,999 WARNING |\n");
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0].time_unix_ms(), LocalMillis(2026, 12, 1, 22, 43, 31, 123));
  EXPECT_EQ(records[0].level(), "INFO");
  EXPECT_EQ(records[0].message(), "app#1: start: /bin/sleep 100");
  EXPECT_EQ(records[1].time_unix_ms(), LocalMillis(2026, 12, 1, 22, 43, 31, 456));
  EXPECT_EQ(records[1].level(), "ERROR");
  EXPECT_EQ(records[1].message(), "app#1: start exited 1:\nfirst line of its stderr\n\n  indented");
  EXPECT_EQ(records[2].level(), "DEBUG");
  EXPECT_EQ(records[2].message(), "");
  EXPECT_EQ(records[2].time_unix_ms(), LocalMillis(2026, 12, 2, 0, 0, 0, 7));
  EXPECT_EQ(records[3].level(), "WARNING");
  EXPECT_EQ(records[3].message(), "");
  EXPECT_EQ(records[3].time_unix_ms(), LocalMillis(2026, 12, 2, 0, 0, 1, 999));
  for (const v1::LogRecord& record : records) EXPECT_TRUE(record.nodename().empty());
}

TEST(LogRecordTest, BadHeadersAreContinuationLines) {
  const std::vector<std::string> bad = {
      "2026-02-30 10:00:00,000 INFO | no such day",
      "2026-13-01 10:00:00,000 INFO | no such month",
      "2026-01-01 24:00:00,000 INFO | no such hour",
      "2026-01-01 10:60:00,000 INFO | no such minute",
      "2026-01-01 10:00:60,000 INFO | no such second",
      "2026-01-01 10:00:00,000 NOTICE | unknown level",
      "2026-01-01 10:00:00,000 info | lowercase",
      "2026-01-01 10:00:00,000 INFO no bar",
      "2026-01-01 10:00:00,000 INFO |no space",
      "2026-01-01 10:00:00,000  INFO | two spaces",
      "2026-01-01 10:00:00.000 INFO | a dot",
      "2026-01-01T10:00:00,000 INFO | a T",
      "2026-1-01 10:00:00,000 INFO | short",
      "2026-01-01 10:00:00,000",
      "",
  };
  for (const std::string& line : bad) {
    EXPECT_FALSE(StartsRecord(line)) << line;
    const std::vector<v1::LogRecord> records =
        ParseLogRecords(absl::StrCat("2026-01-01 09:00:00,000 INFO | first\n", line, "\n"));
    ASSERT_EQ(records.size(), 1u) << line;
    EXPECT_EQ(records[0].message(), absl::StrCat("first\n", line));
  }
  EXPECT_TRUE(StartsRecord("2024-02-29 23:59:59,999 ERROR | a leap day"));
  EXPECT_TRUE(StartsRecord("2026-01-01 00:00:00,000 INFO |"));
}

TEST(LogRecordTest, LinesBeforeTheFirstRecordAreARecordOfTheirOwn) {
  const std::vector<v1::LogRecord> records = ParseLogRecords(
      "the end of a record\nwhose start was cut\n2026-01-01 10:00:00,000 INFO | whole\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].time_unix_ms(), 0);
  EXPECT_EQ(records[0].level(), "");
  EXPECT_EQ(records[0].message(), "the end of a record\nwhose start was cut");
  EXPECT_EQ(records[1].message(), "whole");
  EXPECT_TRUE(ParseLogRecords("").empty());
}

TEST(LogRecordTest, LastLineWithoutNewline) {
  const std::vector<v1::LogRecord> records =
      ParseLogRecords("2026-01-01 10:00:00,000 INFO | a\nmore");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].message(), "a\nmore");
}

TEST(LogRecordTest, EscapedContinuationLines) {
  const std::vector<v1::LogRecord> records = ParseLogRecords(
      "2026-01-01 10:00:00,000 INFO | escaped:\n"
      " 2026-01-01 10:00:00,000 INFO | looks like a record\n"
      " 2026-02-30 10:00:00,000 NOPE | looks like one too (the writer tests the shape)\n"
      "  2026-01-01 10:00:00,000 INFO | two spaces: kept (the writer added none)\n"
      " not a record: kept as is\n");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].message(),
            "escaped:\n"
            "2026-01-01 10:00:00,000 INFO | looks like a record\n"
            "2026-02-30 10:00:00,000 NOPE | looks like one too (the writer tests the shape)\n"
            "  2026-01-01 10:00:00,000 INFO | two spaces: kept (the writer added none)\n"
            " not a record: kept as is");
}

// What ServiceLog writes, read back: time, level, message with its lines.
TEST(LogRecordTest, ReadsWhatServiceLogWrites) {
  const std::string root = absl::StrCat(std::getenv("TEST_TMPDIR"), "/roundtrip");
  service::ServiceLog log(root, "web");
  const absl::Time time = absl::FromUnixMillis(1790000000123);
  const std::string message =
      "exited 1:\n2026-01-01 10:00:00,000 INFO | from stderr\n\nlast line";
  ASSERT_TRUE(log.AppendAt(time, service::LogLevel::kError, message).ok());
  ASSERT_TRUE(log.AppendAt(time + absl::Milliseconds(1), service::LogLevel::kDebug, "").ok());
  ASSERT_TRUE(log.AppendAt(time, service::LogLevel::kWarning, std::string(100 << 10, 'x')).ok());
  absl::StatusOr<std::string> text =
      config::ReadFileToString(service::ServiceLogPath(root, "web"), 1 << 20);
  ASSERT_TRUE(text.ok()) << text.status();
  const std::vector<v1::LogRecord> records = ParseLogRecords(*text);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].time_unix_ms(), 1790000000123);
  EXPECT_EQ(records[0].level(), "ERROR");
  EXPECT_EQ(records[0].message(), message);
  EXPECT_EQ(records[1].time_unix_ms(), 1790000000124);
  EXPECT_EQ(records[1].level(), "DEBUG");
  EXPECT_EQ(records[1].message(), "");
  EXPECT_EQ(records[2].message().size(), kMaxLogMessageBytes);
}

TEST(LogRecordTest, MessagesAreCapped) {
  std::string text = "2026-01-01 10:00:00,000 INFO | big\n";
  for (int i = 0; i < 2000; ++i) text += std::string(99, 'y') + "\n";
  text += "2026-01-01 10:00:01,000 INFO | next\n";
  std::string orphan = std::string(200 << 10, 'z') + "\n" + text;
  for (const std::string& input : {text, orphan}) {
    const std::vector<v1::LogRecord> records = ParseLogRecords(input);
    ASSERT_GE(records.size(), 2u);
    const v1::LogRecord& big = records[records.size() - 2];
    EXPECT_EQ(big.message().size(), kMaxLogMessageBytes);
    EXPECT_EQ(big.message().substr(big.message().size() - 3), "...");
    EXPECT_EQ(records.back().message(), "next");
    EXPECT_LE(records.front().message().size(), kMaxLogMessageBytes);
  }
}

}  // namespace
}  // namespace omd::logs

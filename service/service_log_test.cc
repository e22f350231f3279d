#include "service/service_log.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "process/subprocess.h"

namespace omd::service {
namespace {

using ::testing::HasSubstr;

constexpr char kChildRootVariable[] = "SERVICE_LOG_TEST_CHILD_ROOT";
constexpr int kChildRecords = 300;

std::string NewRoot() {
  static int count = 0;
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/log", ++count, "-", getpid());
}

std::string Read(const std::string& path) {
  absl::StatusOr<std::string> text = config::ReadFileToString(path, 64 << 20);
  return text.ok() ? *text : "";
}

// Every file of the log (the current one and the rotated ones), oldest first.
std::string ReadAll(const std::string& root, const std::string& name, int keep) {
  std::string all;
  for (int i = keep; i >= 1; --i) all += Read(absl::StrCat(ServiceLogPath(root, name), ".", i));
  return all + Read(ServiceLogPath(root, name));
}

std::string Stamp(absl::Time time) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", time, absl::LocalTimeZone());
}

TEST(ServiceLogTest, RecordFormat) {
  const std::string root = NewRoot();
  ServiceLog log(root, "web");
  const absl::Time time = absl::FromUnixMillis(1796165011123);
  ASSERT_TRUE(log.AppendAt(time, LogLevel::kInfo, "app#1: start: /bin/sleep 100").ok());
  ASSERT_TRUE(log.AppendAt(time + absl::Milliseconds(5), LogLevel::kError,
                           "app#1: start exited 1:\nfirst line\n2026-12-01 22:43:31,456 INFO | "
                           "forged\n")
                  .ok());
  ASSERT_TRUE(log.AppendAt(time, LogLevel::kWarning, "w").ok());
  ASSERT_TRUE(log.AppendAt(time, LogLevel::kDebug, "d").ok());
  EXPECT_EQ(ServiceLogPath(root, "web"), root + "/var/log/web.log");
  EXPECT_EQ(Read(ServiceLogPath(root, "web")),
            absl::StrCat(Stamp(time), ",123 INFO | app#1: start: /bin/sleep 100\n",  //
                         Stamp(time), ",128 ERROR | app#1: start exited 1:\n",       //
                         "first line\n",                                              //
                         " 2026-12-01 22:43:31,456 INFO | forged\n",                  //
                         Stamp(time), ",123 WARNING | w\n",                           //
                         Stamp(time), ",123 DEBUG | d\n"));
  struct stat info;
  ASSERT_EQ(stat(ServiceLogPath(root, "web").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST(ServiceLogTest, LongMessagesAreCut) {
  const std::string root = NewRoot();
  ServiceLog log(root, "web");
  ASSERT_TRUE(log.Append(LogLevel::kInfo, std::string(200 << 10, 'x')).ok());
  const std::string text = Read(ServiceLogPath(root, "web"));
  EXPECT_LT(text.size(), (64 << 10) + 64u);
  EXPECT_TRUE(absl::EndsWith(text, "xxx...\n"));
}

TEST(ServiceLogTest, RotationKeepsN) {
  const std::string root = NewRoot();
  ServiceLog log(root, "web", {.max_bytes = 1000, .keep = 2});
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(log.Append(LogLevel::kInfo, absl::StrCat("record ", i, std::string(50, '.'))).ok());
  }
  const std::string path = ServiceLogPath(root, "web");
  for (const std::string& file : {path, path + ".1", path + ".2"}) {
    struct stat info;
    ASSERT_EQ(stat(file.c_str(), &info), 0) << file;
    EXPECT_LE(info.st_size, 1000) << file;
    EXPECT_GT(info.st_size, 500) << file;
  }
  struct stat info;
  EXPECT_NE(stat((path + ".3").c_str(), &info), 0);
  EXPECT_THAT(Read(path), HasSubstr("record 99."));
  // The newest records, in order, across the files.
  const std::string all = ReadAll(root, "web", 2);
  EXPECT_LT(all.find("record 80."), all.find("record 99."));
}

// Checks that `text` holds records "<tag> <i> <padding>" for every tag and i
// below `count`, each exactly once and whole.
void ExpectEveryRecordOnce(const std::string& text, const std::vector<std::string>& tags,
                           int count) {
  std::map<std::string, std::set<int>> seen;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t bar = line.find(" | ");
    ASSERT_NE(bar, absl::string_view::npos) << line;
    std::vector<std::string> words = absl::StrSplit(line.substr(bar + 3), ' ');
    ASSERT_EQ(words.size(), 3u) << line;
    ASSERT_EQ(words[2], std::string(40, '=')) << line;  // whole, not interleaved
    int i = 0;
    ASSERT_TRUE(absl::SimpleAtoi(words[1], &i)) << line;
    EXPECT_TRUE(seen[words[0]].insert(i).second) << "twice: " << line;
  }
  for (const std::string& tag : tags) {
    EXPECT_EQ(seen[tag].size(), static_cast<size_t>(count)) << tag;
  }
}

void AppendRecords(const std::string& root, const std::string& tag, int count,
                   ServiceLog::Options options) {
  ServiceLog log(root, "web", options);
  for (int i = 0; i < count; ++i) {
    ASSERT_TRUE(
        log.Append(LogLevel::kInfo, absl::StrCat(tag, " ", i, " ", std::string(40, '='))).ok());
  }
}

TEST(ServiceLogTest, ConcurrentThreadsLoseNothing) {
  const std::string root = NewRoot();
  std::vector<std::string> tags;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    tags.push_back(absl::StrCat("thread", t));
    threads.emplace_back(AppendRecords, root, tags.back(), 500, ServiceLog::Options());
  }
  for (std::thread& thread : threads) thread.join();
  ExpectEveryRecordOnce(Read(ServiceLogPath(root, "web")), tags, 500);
}

TEST(ServiceLogTest, RotationUnderConcurrentAppends) {
  const std::string root = NewRoot();
  // Enough files kept that none is dropped: then every record is somewhere.
  const ServiceLog::Options options = {.max_bytes = 4096, .keep = 1000};
  std::vector<std::string> tags;
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    tags.push_back(absl::StrCat("thread", t));
    threads.emplace_back(AppendRecords, root, tags.back(), 400, options);
  }
  for (std::thread& thread : threads) thread.join();
  const std::string all = ReadAll(root, "web", options.keep);
  ExpectEveryRecordOnce(all, tags, 400);
  // Rotated: ~200 KB in files of at most 4 KiB (a record past the check may
  // add one more record's bytes).
  struct stat info;
  ASSERT_EQ(stat((ServiceLogPath(root, "web") + ".40").c_str(), &info), 0);
  for (int i = 1; i <= options.keep; ++i) {
    if (stat(absl::StrCat(ServiceLogPath(root, "web"), ".", i).c_str(), &info) != 0) break;
    EXPECT_LE(info.st_size, 4096 + 6 * 100) << i;
  }
}

// Run by ConcurrentProcessesLoseNothing, in processes of its own.
TEST(ServiceLogChild, Append) {
  const char* root = std::getenv(kChildRootVariable);
  if (root == nullptr) GTEST_SKIP() << "only in a child of ConcurrentProcessesLoseNothing";
  AppendRecords(root, absl::StrCat("process", getpid()), kChildRecords,
                {.max_bytes = 8192, .keep = 1000});
}

TEST(ServiceLogTest, ConcurrentProcessesLoseNothing) {
  const std::string root = NewRoot();
  const std::string self = process::CurrentExecutablePath();
  ASSERT_FALSE(self.empty());
  std::vector<std::thread> children;
  std::vector<absl::StatusOr<process::ProcessResult>> results(4);
  for (size_t i = 0; i < results.size(); ++i) {
    children.emplace_back([&, i] {
      process::ProcessOptions options;
      options.argv = {"env", absl::StrCat(kChildRootVariable, "=", root), self,
                      "--gtest_filter=ServiceLogChild.Append"};
      options.timeout = absl::Seconds(120);
      results[i] = process::RunProcess(options);
    });
  }
  for (std::thread& child : children) child.join();
  std::vector<std::string> tags;
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_EQ(result->exit_code, 0) << result->stdout_text << result->stderr_text;
    tags.push_back(absl::StrCat("process", result->pid));
  }
  ExpectEveryRecordOnce(ReadAll(root, "web", 1000), tags, kChildRecords);
}

TEST(ServiceLogTest, ErrorsAreTheFileSystems) {
  const std::string root = NewRoot();
  ASSERT_TRUE(config::WriteFileAtomically(root, "a file, not a directory", 0600).ok());
  ServiceLog log(root, "web");
  EXPECT_FALSE(log.Append(LogLevel::kInfo, "x").ok());
  EXPECT_EQ(LogLevelName(LogLevel::kWarning), "WARNING");
}

}  // namespace
}  // namespace omd::service

#include "logs/log_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "gtest/gtest.h"
#include "proto/omd.pb.h"
#include "service/service_log.h"

namespace omd::logs {
namespace {

std::string NewRoot() {
  static int count = 0;
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/files", ++count, "-", getpid());
}

const absl::Time kStart = absl::FromUnixSeconds(1790000000);

// Records "record <i>" at kStart + i seconds, in files of about 1 KiB.
void Write(const std::string& root, int from, int to, int keep = 100) {
  service::ServiceLog log(root, "web", {.max_bytes = 1024, .keep = keep});
  for (int i = from; i < to; ++i) {
    ASSERT_TRUE(log.AppendAt(kStart + absl::Seconds(i), service::LogLevel::kInfo,
                             absl::StrCat("record ", i, "\nits second line"))
                    .ok());
  }
}

std::vector<int> Numbers(const std::vector<v1::LogRecord>& records) {
  std::vector<int> numbers;
  for (const v1::LogRecord& record : records) {
    int n = -1;
    const std::string first = record.message().substr(0, record.message().find('\n'));
    EXPECT_TRUE(absl::SimpleAtoi(first.substr(first.find(' ') + 1), &n)) << record.message();
    EXPECT_EQ(record.time_unix_ms(), absl::ToUnixMillis(kStart + absl::Seconds(n)));
    numbers.push_back(n);
  }
  return numbers;
}

std::vector<int> Range(int from, int to) {
  std::vector<int> range;
  for (int i = from; i < to; ++i) range.push_back(i);
  return range;
}

bool Exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

TEST(ReadBacklogTest, CountAcrossRotatedFilesOldestFirst) {
  const std::string root = NewRoot();
  Write(root, 0, 200);
  const std::string path = service::ServiceLogPath(root, "web");
  ASSERT_TRUE(Exists(path + ".10"));  // ~50 bytes a record: many files
  for (size_t count : {1, 5, 19, 20, 21, 57, 199, 200}) {
    absl::StatusOr<std::vector<v1::LogRecord>> backlog =
        ReadBacklog(root, "web", count, absl::InfinitePast());
    ASSERT_TRUE(backlog.ok()) << backlog.status();
    EXPECT_EQ(Numbers(*backlog), Range(200 - static_cast<int>(count), 200)) << count;
  }
  absl::StatusOr<std::vector<v1::LogRecord>> all =
      ReadBacklog(root, "web", 100000, absl::InfinitePast());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Numbers(*all), Range(0, 200));
  absl::StatusOr<std::vector<v1::LogRecord>> none =
      ReadBacklog(root, "web", 0, absl::InfinitePast());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(ReadBacklogTest, Since) {
  const std::string root = NewRoot();
  Write(root, 0, 200);
  for (int since : {0, 1, 37, 150, 199}) {
    absl::StatusOr<std::vector<v1::LogRecord>> backlog =
        ReadBacklog(root, "web", 1000, kStart + absl::Seconds(since));
    ASSERT_TRUE(backlog.ok()) << backlog.status();
    EXPECT_EQ(Numbers(*backlog), Range(since, 200)) << since;
  }
  // Both bounds: the last 10 of those since 150; since a millisecond later.
  absl::StatusOr<std::vector<v1::LogRecord>> both =
      ReadBacklog(root, "web", 10, kStart + absl::Seconds(150));
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(Numbers(*both), Range(190, 200));
  absl::StatusOr<std::vector<v1::LogRecord>> later =
      ReadBacklog(root, "web", 10, kStart + absl::Seconds(199) + absl::Milliseconds(1));
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->empty());
}

TEST(ReadBacklogTest, OldFilesDroppedByRotation) {
  const std::string root = NewRoot();
  Write(root, 0, 200, /*keep=*/3);
  absl::StatusOr<std::vector<v1::LogRecord>> all =
      ReadBacklog(root, "web", 1000, absl::InfinitePast());
  ASSERT_TRUE(all.ok());
  // What the four files hold: the newest records, in order, ending at 199.
  const std::vector<int> numbers = Numbers(*all);
  ASSERT_FALSE(numbers.empty());
  ASSERT_LT(numbers.size(), 200u);
  EXPECT_EQ(numbers, Range(200 - static_cast<int>(numbers.size()), 200));
}

TEST(ReadBacklogTest, MissingFiles) {
  const std::string root = NewRoot();
  absl::StatusOr<std::vector<v1::LogRecord>> nothing =
      ReadBacklog(root, "web", 10, absl::InfinitePast());
  ASSERT_TRUE(nothing.ok()) << nothing.status();
  EXPECT_TRUE(nothing->empty());
  // Only rotated files (between a rotation's rename and the next record).
  Write(root, 0, 100);
  const std::string path = service::ServiceLogPath(root, "web");
  ASSERT_EQ(unlink(path.c_str()), 0);
  absl::StatusOr<std::vector<v1::LogRecord>> rotated =
      ReadBacklog(root, "web", 1000, absl::InfinitePast());
  ASSERT_TRUE(rotated.ok());
  ASSERT_FALSE(rotated->empty());
  EXPECT_EQ(Numbers(*rotated), Range(0, static_cast<int>(rotated->size())));
}

TEST(ReadBacklogTest, BadNames) {
  const std::string root = NewRoot();
  Write(root, 0, 10);
  for (const char* name : {"", "../web", "Web", "web/x", "node", "a b", "web..log"}) {
    absl::StatusOr<std::vector<v1::LogRecord>> backlog =
        ReadBacklog(root, name, 10, absl::InfinitePast());
    EXPECT_EQ(backlog.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_FALSE(backlog.status().message().empty());
  }
}

TEST(ReadBacklogTest, CurrentFileUpToAnOffset) {
  const std::string root = NewRoot();
  Write(root, 0, 100);
  const std::string path = service::ServiceLogPath(root, "web");
  absl::StatusOr<std::string> text = config::ReadFileToString(path, 1 << 20);
  ASSERT_TRUE(text.ok());
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  // Up to the end of the first record of the current file, and a byte into the second.
  const size_t first_end = text->find("\n20") + 1;
  absl::StatusOr<std::vector<v1::LogRecord>> backlog =
      ReadBacklogBefore(root, "web", fd, static_cast<int64_t>(first_end + 1), 1000,
                        absl::InfinitePast());
  ASSERT_TRUE(backlog.ok()) << backlog.status();
  const std::vector<int> numbers = Numbers(*backlog);
  ASSERT_FALSE(numbers.empty());
  EXPECT_EQ(numbers, Range(0, numbers.back() + 1));
  EXPECT_LT(numbers.back(), 99);
  // That file rotated since: the backlog still ends where its reading ended.
  Write(root, 100, 200);
  absl::StatusOr<std::vector<v1::LogRecord>> after = ReadBacklogBefore(
      root, "web", fd, static_cast<int64_t>(first_end + 1), 1000, absl::InfinitePast());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(Numbers(*after), numbers);
  close(fd);
}

TEST(ReadFileRangeTest, Ranges) {
  const std::string root = NewRoot();
  ASSERT_TRUE(config::MakeDirectories(root, 0755).ok());
  const std::string path = root + "/f";
  ASSERT_TRUE(config::WriteFileAtomically(path, "0123456789", 0644).ok());
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(*ReadFileRange(fd, 0, 4), "0123");
  EXPECT_EQ(*ReadFileRange(fd, 8, 100), "89");
  EXPECT_EQ(*ReadFileRange(fd, 10, 100), "");
  EXPECT_EQ(*ReadFileRange(fd, 50, 100), "");
  close(fd);
  EXPECT_FALSE(ReadFileRange(-1, 0, 4).ok());
}

}  // namespace
}  // namespace omd::logs

#include "config/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A fresh directory per test, under the test's private temporary directory.
std::string MakeTestDirectory() {
  std::string pattern = ::testing::TempDir() + "atomic_file_test.XXXXXX";
  char* created = mkdtemp(pattern.data());
  EXPECT_NE(created, nullptr) << strerror(errno);
  return pattern;
}

// Sets the umask for the lifetime of the object.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : previous_(umask(mask)) {}
  ~ScopedUmask() { umask(previous_); }

 private:
  mode_t previous_;
};

std::vector<std::string> ListDirectory(const std::string& path) {
  std::vector<std::string> names;
  DIR* directory = opendir(path.c_str());
  if (directory == nullptr) return names;
  while (dirent* entry = readdir(directory)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(directory);
  std::sort(names.begin(), names.end());
  return names;
}

std::string ReadAll(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

void WriteWithStdio(const std::string& path, const std::string& contents) {
  std::ofstream file(path, std::ios::binary);
  file << contents;
}

mode_t ModeOf(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) < 0) return 0;
  return info.st_mode & 07777;
}

bool IsDirectory(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

TEST(WriteFileAtomicallyTest, WritesContentsWithExactModeDespiteUmask) {
  std::string directory = MakeTestDirectory();
  std::string path = directory + "/node.conf";
  {
    ScopedUmask umask(022);
    ASSERT_TRUE(WriteFileAtomically(path, "secret = x\n", 0600).ok());
  }
  EXPECT_EQ(ReadAll(path), "secret = x\n");
  EXPECT_EQ(ModeOf(path), 0600u);

  // A umask stricter than `mode` does not win either.
  std::string shared = directory + "/shared";
  {
    ScopedUmask umask(077);
    ASSERT_TRUE(WriteFileAtomically(shared, "x", 0644).ok());
  }
  EXPECT_EQ(ModeOf(shared), 0644u);
}

TEST(WriteFileAtomicallyTest, ReplacesAnExistingFileAndItsMode) {
  std::string directory = MakeTestDirectory();
  std::string path = directory + "/file";
  WriteWithStdio(path, "old contents that are longer than the new ones\n");
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);

  ASSERT_TRUE(WriteFileAtomically(path, "new\n", 0600).ok());
  EXPECT_EQ(ReadAll(path), "new\n");
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_THAT(ListDirectory(directory), ElementsAre("file"));
}

TEST(WriteFileAtomicallyTest, WritesEmptyAndLargeContents) {
  std::string directory = MakeTestDirectory();
  ASSERT_TRUE(WriteFileAtomically(directory + "/empty", "", 0600).ok());
  EXPECT_EQ(ReadAll(directory + "/empty"), "");

  std::string large(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < large.size(); ++i)
    large[i] = static_cast<char>(i % 251);
  ASSERT_TRUE(WriteFileAtomically(directory + "/large", large, 0600).ok());
  EXPECT_EQ(ReadAll(directory + "/large"), large);
}

TEST(WriteFileAtomicallyTest, WorksWithARelativePath) {
  std::string directory = MakeTestDirectory();
  char previous[4096];
  ASSERT_NE(getcwd(previous, sizeof(previous)), nullptr);
  ASSERT_EQ(chdir(directory.c_str()), 0);
  absl::Status status = WriteFileAtomically("relative", "x", 0600);
  ASSERT_EQ(chdir(previous), 0);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(ReadAll(directory + "/relative"), "x");
}

TEST(WriteFileAtomicallyTest, FailsOverADirectoryAndLeavesNoTemporaryFile) {
  std::string directory = MakeTestDirectory();
  std::string path = directory + "/occupied";
  ASSERT_EQ(mkdir(path.c_str(), 0755), 0);

  absl::Status status = WriteFileAtomically(path, "x", 0600);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(path));
  EXPECT_THAT(status.message(), HasSubstr("Is a directory"));
  EXPECT_TRUE(IsDirectory(path));
  EXPECT_THAT(ListDirectory(directory), ElementsAre("occupied"));
}

TEST(WriteFileAtomicallyTest, FailsInAMissingDirectory) {
  std::string directory = MakeTestDirectory();
  std::string path = directory + "/missing/file";
  absl::Status status = WriteFileAtomically(path, "x", 0600);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr(directory + "/missing/"));
  EXPECT_THAT(status.message(), HasSubstr("No such file or directory"));
}

TEST(WriteFileAtomicallyTest, RejectsAPathThatIsNotAFile) {
  EXPECT_EQ(WriteFileAtomically("", "x", 0600).code(),
            absl::StatusCode::kInvalidArgument);
  std::string directory = MakeTestDirectory();
  absl::Status status = WriteFileAtomically(directory + "/", "x", 0600);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("is not a file path"));
}

TEST(WriteFileAtomicallyTest, KeepsTheOldFileWhenTheDirectoryIsUnwritable) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  std::string directory = MakeTestDirectory();
  std::string path = directory + "/file";
  WriteWithStdio(path, "old\n");
  ASSERT_EQ(chmod(directory.c_str(), 0500), 0);

  absl::Status status = WriteFileAtomically(path, "new\n", 0600);
  ASSERT_EQ(chmod(directory.c_str(), 0700), 0);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(status.message(), HasSubstr(directory));
  EXPECT_THAT(status.message(), HasSubstr("Permission denied"));
  EXPECT_EQ(ReadAll(path), "old\n");
  EXPECT_THAT(ListDirectory(directory), ElementsAre("file"));
}

// Lowers the file size limit, which makes write() fail with EFBIG even as
// root, for the lifetime of the object.
class ScopedFileSizeLimit {
 public:
  explicit ScopedFileSizeLimit(rlim_t bytes) {
    previous_handler_ = signal(SIGXFSZ, SIG_IGN);  // Else the process dies.
    getrlimit(RLIMIT_FSIZE, &previous_limit_);
    rlimit limit = previous_limit_;
    limit.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~ScopedFileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &previous_limit_);
    signal(SIGXFSZ, previous_handler_);
  }

 private:
  rlimit previous_limit_;
  sighandler_t previous_handler_;
};

TEST(WriteFileAtomicallyTest, KeepsTheOldFileWhenWritingFails) {
  std::string directory = MakeTestDirectory();
  std::string path = directory + "/file";
  WriteWithStdio(path, "old\n");

  absl::Status status;
  {
    ScopedFileSizeLimit limit(10);
    status = WriteFileAtomically(path, std::string(100, 'n'), 0600);
  }
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("cannot write"));
  EXPECT_THAT(status.message(), HasSubstr(directory + "/.file.tmp-"));
  EXPECT_THAT(status.message(), HasSubstr("File too large"));
  EXPECT_EQ(ReadAll(path), "old\n");
  EXPECT_THAT(ListDirectory(directory), ElementsAre("file"));
}

TEST(CreateFileAtomicallyTest, CreatesAMissingFile) {
  std::string directory = MakeTestDirectory();
  std::string path = directory + "/file";
  ScopedUmask umask(022);
  ASSERT_TRUE(CreateFileAtomically(path, "first\n", 0600).ok());
  EXPECT_EQ(ReadAll(path), "first\n");
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_THAT(ListDirectory(directory), ElementsAre("file"));
}

TEST(CreateFileAtomicallyTest, NeverReplacesAnExistingFile) {
  std::string directory = MakeTestDirectory();
  std::string path = directory + "/file";
  WriteWithStdio(path, "first\n");

  absl::Status status = CreateFileAtomically(path, "second\n", 0600);
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(status.message(), HasSubstr(path + " already exists"));
  EXPECT_EQ(ReadAll(path), "first\n");
  EXPECT_THAT(ListDirectory(directory), ElementsAre("file"));
}

TEST(RemoveTemporaryFilesTest, RemovesOnlyTheLeftoversOfThatFile) {
  std::string directory = MakeTestDirectory();
  std::string path = directory + "/file";
  WriteWithStdio(path, "current\n");
  // Left by writers killed mid-write: the names CreateTemporaryFile makes.
  WriteWithStdio(directory + "/.file.tmp-0123456789abcdef", "half");
  WriteWithStdio(directory + "/.file.tmp-fedcba9876543210", "");
  // Not theirs: another file's leftovers, and names that only look alike.
  for (const char* other :
       {"/.other.tmp-0123456789abcdef", "/.file.tmp-0123", "/.file.tmp-0123456789abcdefx",
        "/.file.tmp-0123456789abcdeg", "/file.tmp-0123456789abcdef", "/.file.lock"}) {
    WriteWithStdio(directory + other, "keep");
  }
  absl::StatusOr<int> removed = RemoveTemporaryFiles(path);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);
  EXPECT_THAT(ListDirectory(directory),
              ElementsAre(".file.lock", ".file.tmp-0123", ".file.tmp-0123456789abcdefx",
                          ".file.tmp-0123456789abcdeg", ".other.tmp-0123456789abcdef",
                          "file", "file.tmp-0123456789abcdef"));
  EXPECT_EQ(ReadAll(path), "current\n");
  EXPECT_EQ(*RemoveTemporaryFiles(path), 0);
}

TEST(RemoveTemporaryFilesTest, ReportsAMissingDirectory) {
  absl::StatusOr<int> removed = RemoveTemporaryFiles(MakeTestDirectory() + "/no/file");
  EXPECT_EQ(removed.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(removed.status().message(), HasSubstr("cannot list"));
}

TEST(ReadFileToStringTest, ReadsTheWholeFile) {
  std::string directory = MakeTestDirectory();
  std::string contents("binary\0data\n", 12);
  WriteWithStdio(directory + "/file", contents);
  absl::StatusOr<std::string> read = ReadFileToString(directory + "/file", 100);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, contents);
}

TEST(ReadFileToStringTest, ReadsAFileOfExactlyTheLimit) {
  std::string directory = MakeTestDirectory();
  WriteWithStdio(directory + "/file", "12345");
  absl::StatusOr<std::string> read = ReadFileToString(directory + "/file", 5);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "12345");

  WriteWithStdio(directory + "/empty", "");
  read = ReadFileToString(directory + "/empty", 0);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");
}

TEST(ReadFileToStringTest, RefusesAFileOverTheLimit) {
  std::string directory = MakeTestDirectory();
  std::string path = directory + "/file";
  WriteWithStdio(path, "123456");
  absl::StatusOr<std::string> read = ReadFileToString(path, 5);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(read.status().message(),
              HasSubstr(path + " is larger than the limit of 5 bytes"));
}

TEST(ReadFileToStringTest, EnforcesTheLimitWhenTheSizeIsUnknown) {
  // Files in /proc claim a size of 0.
  absl::StatusOr<std::string> read = ReadFileToString("/proc/self/status", 10);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kResourceExhausted);
  read = ReadFileToString("/proc/self/status", 1 << 20);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(*read, HasSubstr("Pid:"));
}

TEST(ReadFileToStringTest, ReportsAMissingFileAsNotFound) {
  std::string directory = MakeTestDirectory();
  std::string path = directory + "/missing";
  absl::StatusOr<std::string> read = ReadFileToString(path, 100);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(read.status().message(), HasSubstr(path));
  EXPECT_THAT(read.status().message(), HasSubstr("No such file or directory"));
}

TEST(ReadFileToStringTest, RefusesADirectory) {
  std::string directory = MakeTestDirectory();
  absl::StatusOr<std::string> read = ReadFileToString(directory, 100);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(read.status().message(),
              HasSubstr(directory + " is a directory"));
}

TEST(MakeDirectoriesTest, CreatesMissingParentsWithExactMode) {
  std::string directory = MakeTestDirectory();
  ScopedUmask umask(077);
  ASSERT_TRUE(MakeDirectories(directory + "/a/b/c", 0755).ok());
  for (const char* created : {"/a", "/a/b", "/a/b/c"}) {
    EXPECT_TRUE(IsDirectory(directory + created)) << created;
    EXPECT_EQ(ModeOf(directory + created), 0755u) << created;
  }
}

TEST(MakeDirectoriesTest, LeavesExistingDirectoriesAlone) {
  std::string directory = MakeTestDirectory();
  ASSERT_EQ(mkdir((directory + "/a").c_str(), 0700), 0);
  ASSERT_EQ(chmod((directory + "/a").c_str(), 0711), 0);

  ASSERT_TRUE(MakeDirectories(directory + "/a/b/", 0755).ok());
  ASSERT_TRUE(MakeDirectories(directory + "/a/b", 0700).ok());  // Again.
  ASSERT_TRUE(MakeDirectories(directory + "//a//b", 0700).ok());
  EXPECT_EQ(ModeOf(directory + "/a"), 0711u);
  EXPECT_EQ(ModeOf(directory + "/a/b"), 0755u);
  EXPECT_TRUE(MakeDirectories("/", 0755).ok());
}

TEST(MakeDirectoriesTest, FailsWhenAFileIsInTheWay) {
  std::string directory = MakeTestDirectory();
  WriteWithStdio(directory + "/file", "x");

  absl::Status status = MakeDirectories(directory + "/file", 0755);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(),
              HasSubstr(directory + "/file exists and is not a directory"));

  status = MakeDirectories(directory + "/file/sub", 0755);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(),
              HasSubstr(directory + "/file exists and is not a directory"));
}

TEST(MakeDirectoriesTest, RejectsAnEmptyPath) {
  EXPECT_EQ(MakeDirectories("", 0755).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace omd::config

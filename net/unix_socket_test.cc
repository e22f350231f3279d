#include "net/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "posix/unique_fd.h"

namespace omd::net {
namespace {

// Under $TEST_TMPDIR, whose path may be too long for sockaddr_un.
std::string TempDir() {
  std::string pattern = absl::StrCat(std::getenv("TEST_TMPDIR"), "/unixXXXXXX");
  return mkdtemp(pattern.data());
}

// Under /tmp: short enough for sockaddr_un.
std::string ShortTempDir() {
  std::string pattern = "/tmp/omd-unixXXXXXX";
  return mkdtemp(pattern.data());
}

// Connects to the socket named by a target from UnixTarget.
bool Connects(const std::string& target) {
  absl::string_view path = target;
  if (!absl::ConsumePrefix(&path, "unix:")) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) return false;
  std::memcpy(address.sun_path, path.data(), path.size());
  posix::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM, 0));
  return connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
}

TEST(UnixSocketTest, ListensWithTheModeGivenAndIsReachableByItsTarget) {
  const std::string dir = ShortTempDir();
  const std::string path = dir + "/omd.sock";
  absl::StatusOr<int> fd = ListenUnix(path, 0600);
  ASSERT_TRUE(fd.ok()) << fd.status();
  posix::UniqueFd owned(*fd);
  struct stat info {};
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  absl::StatusOr<std::string> target = UnixTarget(path);
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(*target, "unix:" + path);
  EXPECT_TRUE(Connects(*target));
  unlink(path.c_str());
  rmdir(dir.c_str());
}

TEST(UnixSocketTest, PathsLongerThanSockaddrUnGoThroughTheDirectory) {
  std::string dir = TempDir();
  while (dir.size() < 150) {
    dir += "/a-rather-long-directory-name";
    ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  }
  const std::string path = dir + "/omd.sock";
  absl::StatusOr<int> fd = ListenUnix(path, 0600);
  ASSERT_TRUE(fd.ok()) << fd.status();
  posix::UniqueFd owned(*fd);
  struct stat info {};
  ASSERT_EQ(stat(path.c_str(), &info), 0) << "the socket is at its real path";
  absl::StatusOr<std::string> target = UnixTarget(path);
  ASSERT_TRUE(target.ok());
  EXPECT_TRUE(absl::StartsWith(*target, "unix:/proc/self/fd/")) << *target;
  EXPECT_TRUE(Connects(*target));
}

TEST(UnixSocketTest, AStaleSocketIsReplacedALiveOneIsInUse) {
  const std::string path = TempDir() + "/omd.sock";
  {
    absl::StatusOr<int> first = ListenUnix(path, 0600);
    ASSERT_TRUE(first.ok());
    posix::UniqueFd owned(*first);
    absl::StatusOr<int> second = ListenUnix(path, 0600);
    EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_TRUE(absl::StrContains(second.status().message(), "in use"));
  }  // closed: the file stays, stale
  absl::StatusOr<int> again = ListenUnix(path, 0600);
  ASSERT_TRUE(again.ok()) << again.status();
  close(*again);
}

TEST(UnixSocketTest, AFileThatIsNotASocketIsNeverReplaced) {
  const std::string path = TempDir() + "/omd.sock";
  std::ofstream(path) << "precious";
  absl::StatusOr<int> fd = ListenUnix(path, 0600);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kFailedPrecondition);
  std::ifstream kept(path);
  std::string content;
  kept >> content;
  EXPECT_EQ(content, "precious");
}

}  // namespace
}  // namespace omd::net

#include "net/unix_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "posix/unique_fd.h"

namespace omd::net {
namespace {

constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

absl::Status Errno(absl::string_view what, absl::string_view path) {
  return absl::UnavailableError(
      absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// `path` itself if it fits sockaddr_un; else the same file through a descriptor
// of its directory, which `directory` keeps open.
absl::StatusOr<std::string> ReachablePath(absl::string_view path,
                                          posix::UniqueFd& directory) {
  if (path.size() <= kMaxSocketPath) return std::string(path);
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", path));
  }
  const std::string parent(path.substr(0, slash == 0 ? 1 : slash));
  directory.Reset(open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (directory.get() < 0) return Errno("cannot open", parent);
  std::string reachable =
      absl::StrCat("/proc/self/fd/", directory.get(), "/", path.substr(slash + 1));
  if (reachable.size() > kMaxSocketPath) {
    return absl::InvalidArgumentError(absl::StrCat("socket name too long: ", path));
  }
  return reachable;
}

sockaddr_un AddressOf(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

}  // namespace

absl::StatusOr<int> ListenUnix(absl::string_view path, mode_t mode) {
  posix::UniqueFd directory;
  absl::StatusOr<std::string> reachable = ReachablePath(path, directory);
  if (!reachable.ok()) return reachable.status();
  const sockaddr_un address = AddressOf(*reachable);
  const std::string display(path);

  struct stat existing {};
  if (lstat(reachable->c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(display, " exists and is not a socket: not replacing it"));
    }
    posix::UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.get() >= 0 &&
        connect(probe.get(), reinterpret_cast<const sockaddr*>(&address),
                sizeof(address)) == 0) {
      return absl::UnavailableError(
          absl::StrCat(display, " is in use: is another omd running on this root?"));
    }
    unlink(reachable->c_str());  // left by a daemon that is gone
  }

  posix::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Errno("cannot create a socket for", display);
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    return Errno("cannot bind", display);
  }
  // Nobody can connect before listen(): the mode is in force from the first
  // connection on.
  if (chmod(reachable->c_str(), mode) != 0) return Errno("cannot chmod", display);
  if (listen(fd.get(), SOMAXCONN) != 0) return Errno("cannot listen on", display);
  return fd.Release();
}

absl::StatusOr<std::string> UnixTarget(absl::string_view path) {
  posix::UniqueFd directory;
  absl::StatusOr<std::string> reachable = ReachablePath(path, directory);
  if (!reachable.ok()) return reachable.status();
  (void)directory.Release();  // named by the target for the life of the process
  return absl::StrCat("unix:", *reachable);
}

}  // namespace omd::net

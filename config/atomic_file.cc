#include "config/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace omd::config {
namespace {

// Owns a file descriptor so that every early return closes it.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }

  int get() const { return fd_; }

  // Closes now, reporting the error that a destructor would have to drop:
  // some file systems only report a failed write at close.
  int Close() {
    int result = close(fd_);
    fd_ = -1;
    // On Linux the descriptor is gone even when close fails with EINTR.
    return (result < 0 && errno == EINTR) ? 0 : result;
  }

 private:
  int fd_;
};

absl::Status ErrnoError(int error_number, absl::string_view what,
                        absl::string_view path) {
  return absl::ErrnoToStatus(error_number, absl::StrCat(what, " ", path));
}

int WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t written = write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (written == 0) {  // Not expected from a regular file; never spin on it.
      errno = EIO;
      return -1;
    }
    data.remove_prefix(static_cast<size_t>(written));
  }
  return 0;
}

int FsyncRetryingOnEintr(int fd) {
  int result;
  do {
    result = fsync(fd);
  } while (result < 0 && errno == EINTR);
  return result;
}

// The name of a temporary file for `path` is ".<base name>.tmp-" and 16 hex
// digits: hidden from listings, never colliding with another writer's.
constexpr size_t kTemporarySuffixDigits = 16;

std::string TemporaryNamePrefix(const std::string& path) {
  size_t slash = path.rfind('/');
  size_t base_start = slash == std::string::npos ? 0 : slash + 1;
  return absl::StrCat(".", path.substr(base_start), ".tmp-");
}

// Creates a new, empty file next to `path` with exactly `mode`, and returns its
// descriptor and name.
absl::Status CreateTemporaryFile(const std::string& path, mode_t mode, int* fd,
                                 std::string* temporary_path) {
  size_t slash = path.rfind('/');
  size_t base_start = slash == std::string::npos ? 0 : slash + 1;
  absl::BitGen random;
  constexpr int kAttempts = 16;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    *temporary_path = absl::StrCat(
        path.substr(0, base_start), TemporaryNamePrefix(path),
        absl::Hex(absl::Uniform<uint64_t>(random), absl::kZeroPad16));
    *fd = open(temporary_path->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
               mode);
    if (*fd >= 0) {
      // open() applied the umask; the caller asked for exactly `mode`.
      if (fchmod(*fd, mode) < 0) {
        absl::Status status =
            ErrnoError(errno, "cannot set the mode of", *temporary_path);
        close(*fd);
        unlink(temporary_path->c_str());
        return status;
      }
      return absl::OkStatus();
    }
    if (errno != EEXIST) {
      return ErrnoError(errno, "cannot create temporary file", *temporary_path);
    }
  }
  return absl::AlreadyExistsError(
      absl::StrCat("cannot create a temporary file next to ", path, " after ",
                   kAttempts, " attempts: all names taken"));
}

// The directory holding `path`, to sync after a rename so the rename itself
// survives a crash.
std::string ParentDirectory(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status SyncDirectory(const std::string& directory) {
  ScopedFd fd(open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0)
    return ErrnoError(errno, "cannot open directory", directory);
  if (FsyncRetryingOnEintr(fd.get()) < 0) {
    return ErrnoError(errno, "cannot sync directory", directory);
  }
  return absl::OkStatus();
}

enum class IfExists { kReplace, kFail };

absl::Status WriteThroughTemporaryFile(const std::string& path,
                                       absl::string_view contents, mode_t mode,
                                       IfExists if_exists) {
  if (path.empty() || path.back() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", path, "\" is not a file path"));
  }
  mode &= 07777;
  int raw_fd = -1;
  std::string temporary_path;
  absl::Status status =
      CreateTemporaryFile(path, mode, &raw_fd, &temporary_path);
  if (!status.ok()) return status;
  ScopedFd fd(raw_fd);

  if (WriteAll(fd.get(), contents) < 0) {
    status = ErrnoError(errno, "cannot write", temporary_path);
  } else if (FsyncRetryingOnEintr(fd.get()) < 0) {
    status = ErrnoError(errno, "cannot sync", temporary_path);
  } else if (fd.Close() < 0) {
    status = ErrnoError(errno, "cannot close", temporary_path);
  } else if (if_exists == IfExists::kReplace) {
    if (rename(temporary_path.c_str(), path.c_str()) < 0) {
      status = ErrnoError(
          errno, absl::StrCat("cannot rename ", temporary_path, " to"), path);
    }
  } else if (link(temporary_path.c_str(), path.c_str()) < 0) {
    // link(), unlike rename(), refuses to replace an existing file.
    status =
        errno == EEXIST
            ? absl::AlreadyExistsError(absl::StrCat(path, " already exists"))
            : ErrnoError(errno,
                         absl::StrCat("cannot link ", temporary_path, " to"),
                         path);
  } else {
    unlink(temporary_path.c_str());  // `path` now names the file.
  }
  if (!status.ok()) {
    unlink(temporary_path.c_str());
    return status;
  }
  return SyncDirectory(ParentDirectory(path));
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents, mode_t mode) {
  return WriteThroughTemporaryFile(path, contents, mode, IfExists::kReplace);
}

absl::Status CreateFileAtomically(const std::string& path,
                                  absl::string_view contents, mode_t mode) {
  return WriteThroughTemporaryFile(path, contents, mode, IfExists::kFail);
}

absl::StatusOr<int> RemoveTemporaryFiles(const std::string& path) {
  const std::string directory = ParentDirectory(path);
  const std::string prefix = TemporaryNamePrefix(path);
  DIR* listing = opendir(directory.c_str());
  if (listing == nullptr) return ErrnoError(errno, "cannot list", directory);
  int removed = 0;
  absl::Status status;
  errno = 0;
  while (dirent* entry = readdir(listing)) {
    absl::string_view suffix = entry->d_name;
    if (!absl::ConsumePrefix(&suffix, prefix) || suffix.size() != kTemporarySuffixDigits ||
        !std::all_of(suffix.begin(), suffix.end(), [](char c) {
          return absl::ascii_isxdigit(static_cast<unsigned char>(c));
        })) {
      continue;
    }
    const std::string leftover = absl::StrCat(directory, "/", entry->d_name);
    if (unlink(leftover.c_str()) == 0) {
      ++removed;
    } else if (errno != ENOENT && status.ok()) {
      status = ErrnoError(errno, "cannot remove", leftover);
    }
    errno = 0;
  }
  if (errno != 0 && status.ok()) status = ErrnoError(errno, "cannot list", directory);
  closedir(listing);
  if (!status.ok()) return status;
  return removed;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             size_t max_bytes) {
  ScopedFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, "cannot open", path);
  struct stat info;
  if (fstat(fd.get(), &info) < 0) return ErrnoError(errno, "cannot stat", path);
  if (S_ISDIR(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is a directory, not a file"));
  }
  auto too_large = [&] {
    return absl::ResourceExhaustedError(absl::StrCat(
        path, " is larger than the limit of ", max_bytes, " bytes"));
  };
  // st_size is only a hint (the file may grow, or be a pipe); the read loop
  // enforces the limit.
  if (info.st_size > 0 && static_cast<uint64_t>(info.st_size) > max_bytes) {
    return too_large();
  }
  std::string contents;
  constexpr size_t kChunk = 64 * 1024;
  char buffer[kChunk];
  for (;;) {
    // Ask for at most one byte past the limit: enough to detect an overflow
    // without ever holding much more than `max_bytes`.
    size_t room = max_bytes - contents.size();
    size_t wanted = room < kChunk ? room + 1 : kChunk;
    ssize_t got = read(fd.get(), buffer, wanted);
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "cannot read", path);
    }
    if (got == 0) return contents;
    if (static_cast<size_t>(got) > room) return too_large();
    contents.append(buffer, static_cast<size_t>(got));
  }
}

absl::Status MakeDirectories(const std::string& path, mode_t mode) {
  if (path.empty()) {
    return absl::InvalidArgumentError("empty directory path");
  }
  mode &= 07777;
  // Visit each prefix ending at a component boundary: "a", "a/b", "a/b/c".
  for (size_t end = 0; end != std::string::npos;) {
    end = path.find('/', end + 1);
    std::string prefix = path.substr(0, end);
    if (prefix.empty() || prefix.back() == '/') continue;  // "/" or "a//b".
    if (mkdir(prefix.c_str(), mode) == 0) {
      // mkdir() applied the umask; the caller asked for exactly `mode`.
      if (chmod(prefix.c_str(), mode) < 0) {
        return ErrnoError(errno, "cannot set the mode of", prefix);
      }
      continue;
    }
    if (errno != EEXIST) {
      return ErrnoError(errno, "cannot create directory", prefix);
    }
    struct stat info;
    if (stat(prefix.c_str(), &info) < 0) {
      return ErrnoError(errno, "cannot stat", prefix);
    }
    if (!S_ISDIR(info.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(prefix, " exists and is not a directory"));
    }
  }
  return absl::OkStatus();
}

}  // namespace omd::config

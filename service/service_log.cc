#include "service/service_log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "posix/unique_fd.h"

namespace omd::service {
namespace {

constexpr size_t kMaxMessageBytes = 64 << 10;
constexpr absl::string_view kCut = "...";
// Command output may say more than the world should read.
constexpr mode_t kLogMode = 0600;

absl::Status Errno(absl::string_view what, absl::string_view path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(what, " ", path));
}

// Whether `line` starts like a record: "YYYY-MM-DD hh:mm:ss,mmm ".

std::string FormatRecord(absl::Time time, LogLevel level, absl::string_view message) {
  std::string capped;
  if (message.size() > kMaxMessageBytes) {
    capped = absl::StrCat(message.substr(0, kMaxMessageBytes - kCut.size()), kCut);
    message = capped;
  }
  while (!message.empty() && message.back() == '\n') message.remove_suffix(1);
  const int64_t millis = ((absl::ToUnixMillis(time) % 1000) + 1000) % 1000;
  std::string record =
      absl::StrCat(absl::FormatTime("%Y-%m-%d %H:%M:%S", time, absl::LocalTimeZone()),
                   absl::StrFormat(",%03d ", millis), LogLevelName(level), " | ");
  bool first = true;
  for (absl::string_view line : absl::StrSplit(message, '\n')) {
    if (!first) {
      record.push_back('\n');
      if (HasRecordShape(line)) record.push_back(' ');
    }
    record.append(line.data(), line.size());
    first = false;
  }
  record.push_back('\n');
  return record;
}

absl::Status WriteAll(int fd, absl::string_view data, absl::string_view path) {
  // One write(2) in O_APPEND mode lands whole, after every other: a short write
  // happens only when the disk is full, and the rest then follows.
  while (!data.empty()) {
    const ssize_t written = write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", path);
    }
    data.remove_prefix(static_cast<size_t>(written));
  }
  return absl::OkStatus();
}

absl::Status Flock(int fd, int operation, absl::string_view path) {
  while (flock(fd, operation) != 0) {
    if (errno != EINTR) return Errno("cannot lock", path);
  }
  return absl::OkStatus();
}

// <log>.<keep> dropped, each <log>.<i> renamed <log>.<i+1>, <log> renamed <log>.1.
absl::Status Rotate(const std::string& path, int keep) {
  if (keep <= 0) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("cannot remove", path);
    return absl::OkStatus();
  }
  const std::string oldest = absl::StrCat(path, ".", keep);
  if (unlink(oldest.c_str()) != 0 && errno != ENOENT) return Errno("cannot remove", oldest);
  for (int i = keep - 1; i >= 1; --i) {
    const std::string from = absl::StrCat(path, ".", i);
    const std::string to = absl::StrCat(path, ".", i + 1);
    if (rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
      return Errno("cannot rename", from);
    }
  }
  const std::string first = absl::StrCat(path, ".1");
  if (rename(path.c_str(), first.c_str()) != 0 && errno != ENOENT) {
    return Errno("cannot rename", path);
  }
  return absl::OkStatus();
}

}  // namespace

bool HasRecordShape(absl::string_view line) {
  if (line.size() < kRecordShape.size()) return false;
  for (size_t i = 0; i < kRecordShape.size(); ++i) {
    if (kRecordShape[i] == '0' ? !absl::ascii_isdigit(static_cast<unsigned char>(line[i]))
                               : line[i] != kRecordShape[i]) {
      return false;
    }
  }
  return true;
}

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarning:
      return "WARNING";
    case LogLevel::kError:
      return "ERROR";
  }
  return "INFO";
}

std::string ServiceLogPath(absl::string_view root, absl::string_view name) {
  return absl::StrCat(root, "/var/log/", name, ".log");
}

ServiceLog::ServiceLog(std::string root, std::string name)
    : ServiceLog(std::move(root), std::move(name), Options()) {}

ServiceLog::ServiceLog(std::string root, std::string name, Options options)
    : root_(std::move(root)), name_(std::move(name)), options_(options) {}

absl::Status ServiceLog::Append(LogLevel level, absl::string_view message) {
  return AppendAt(absl::Now(), level, message);
}

absl::Status ServiceLog::AppendAt(absl::Time time, LogLevel level,
                                  absl::string_view message) {
  const std::string path = ServiceLogPath(root_, name_);
  const std::string lock_path = absl::StrCat(path, ".lock");
  if (absl::Status made = config::MakeDirectories(absl::StrCat(root_, "/var/log"), 0755);
      !made.ok()) {
    return made;
  }
  posix::UniqueFd lock(open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kLogMode));
  if (!lock.is_open()) return Errno("cannot open", lock_path);
  const std::string record = FormatRecord(time, level, message);

  // Appenders share the lock; a rotation takes it alone, so no appender holds a
  // descriptor of a file being renamed.
  if (absl::Status locked = Flock(lock.get(), LOCK_SH, lock_path); !locked.ok()) {
    return locked;
  }
  posix::UniqueFd log(open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, kLogMode));
  if (!log.is_open()) return Errno("cannot open", path);
  struct stat info;
  if (fstat(log.get(), &info) != 0) return Errno("cannot stat", path);
  const auto too_big = [&](const struct stat& file) {
    return file.st_size > 0 &&
           file.st_size + static_cast<int64_t>(record.size()) > options_.max_bytes;
  };
  if (!too_big(info)) return WriteAll(log.get(), record, path);

  log.Reset();
  if (absl::Status locked = Flock(lock.get(), LOCK_EX, lock_path); !locked.ok()) {
    return locked;
  }
  // Another appender may have rotated between the two locks.
  if (stat(path.c_str(), &info) == 0 && too_big(info)) {
    if (absl::Status rotated = Rotate(path, options_.keep); !rotated.ok()) return rotated;
  }
  log.Reset(open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, kLogMode));
  if (!log.is_open()) return Errno("cannot open", path);
  return WriteAll(log.get(), record, path);
}

}  // namespace omd::service

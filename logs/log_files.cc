#include "logs/log_files.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "logs/log_record.h"
#include "posix/unique_fd.h"
#include "proto/omd.pb.h"
#include "service/service_config.h"
#include "service/service_log.h"

namespace omd::logs {
namespace {

// A rotation between listing the rotated files and opening one makes the reader
// list them again; so many times in a row with no file read is an error.
constexpr int kMaxAttempts = 8;
constexpr int kMaxRotatedFiles = 100000;

using FileId = FileIdentity;

FileId IdOf(const struct stat& info) { return {info.st_dev, info.st_ino}; }

absl::Status Errno(absl::string_view what, absl::string_view path) {
  return absl::ErrnoToStatus(errno, absl::StrCat(what, " ", path));
}

// The records of `fd`'s bytes [0, end), whole lines only; of a file longer than
// kMaxBacklogBytesPerFile, its last bytes from the first line start in them.
absl::StatusOr<std::vector<v1::LogRecord>> ReadRecords(int fd, int64_t end,
                                                       absl::string_view path) {
  const int64_t start = std::max<int64_t>(0, end - kMaxBacklogBytesPerFile);
  absl::StatusOr<std::string> text = ReadFileRange(fd, start, static_cast<size_t>(end - start));
  if (!text.ok()) {
    return absl::Status(text.status().code(), absl::StrCat(path, ": ", text.status().message()));
  }
  absl::string_view whole(*text);
  const size_t last_newline = whole.rfind('\n');
  whole = last_newline == absl::string_view::npos ? absl::string_view()
                                                  : whole.substr(0, last_newline + 1);
  bool cut = false;
  if (start > 0) {
    const size_t first_newline = whole.find('\n');
    whole.remove_prefix(first_newline == absl::string_view::npos ? whole.size()
                                                                 : first_newline + 1);
    cut = true;
  }
  std::vector<v1::LogRecord> records = ParseLogRecords(whole);
  // A record cut by the bound is not a record of this file's.
  if (cut && !records.empty() && records.front().level().empty()) {
    records.erase(records.begin());
  }
  return records;
}

class Collector {
 public:
  Collector(size_t count, absl::Time since) : count_(count), since_(since) {}

  // Takes one file's records (older than every file taken before); false when
  // older files are not needed.
  bool Take(std::vector<v1::LogRecord> records) {
    const bool starts_before =
        !records.empty() && absl::FromUnixMillis(records.front().time_unix_ms()) < since_;
    records.erase(std::remove_if(records.begin(), records.end(),
                                 [&](const v1::LogRecord& record) {
                                   return absl::FromUnixMillis(record.time_unix_ms()) < since_;
                                 }),
                  records.end());
    found_ += records.size();
    files_.push_back(std::move(records));
    return found_ < count_ && !starts_before;
  }

  std::vector<v1::LogRecord> Result() && {
    std::vector<v1::LogRecord> all;
    for (auto file = files_.rbegin(); file != files_.rend(); ++file) {
      for (v1::LogRecord& record : *file) all.push_back(std::move(record));
    }
    if (all.size() > count_) all.erase(all.begin(), all.end() - count_);
    return all;
  }

 private:
  const size_t count_;
  const absl::Time since_;
  size_t found_ = 0;
  std::vector<std::vector<v1::LogRecord>> files_;  // newest first
};

}  // namespace

absl::StatusOr<std::string> ReadFileRange(int fd, int64_t offset, size_t max_bytes) {
  std::string data(max_bytes, '\0');
  size_t have = 0;
  while (have < max_bytes) {
    const ssize_t got = pread(fd, data.data() + have, max_bytes - have,
                              static_cast<off_t>(offset + static_cast<int64_t>(have)));
    if (got < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "cannot read");
    }
    if (got == 0) break;
    have += static_cast<size_t>(got);
  }
  data.resize(have);
  return data;
}

absl::StatusOr<std::vector<FileIdentity>> ListRotatedFiles(const std::string& log_path) {
  const std::string lock_path = absl::StrCat(log_path, ".lock");
  posix::UniqueFd lock(open(lock_path.c_str(), O_RDONLY | O_CLOEXEC));
  bool locked = false;
  for (int attempt = 0; lock.is_open() && attempt < 50; ++attempt) {
    if (flock(lock.get(), LOCK_SH | LOCK_NB) == 0) {
      locked = true;
      break;
    }
    if (errno != EWOULDBLOCK && errno != EINTR) break;
    usleep(1000);
  }
  std::vector<FileIdentity> rotated;
  absl::Status status;
  for (int i = 1; i <= kMaxRotatedFiles; ++i) {
    struct stat info;
    if (stat(absl::StrCat(log_path, ".", i).c_str(), &info) != 0) {
      if (errno != ENOENT) status = Errno("cannot stat", absl::StrCat(log_path, ".", i));
      break;
    }
    rotated.push_back(IdOf(info));
  }
  if (locked) flock(lock.get(), LOCK_UN);
  if (!status.ok()) return status;
  return rotated;
}

absl::StatusOr<std::vector<v1::LogRecord>> ReadBacklog(const std::string& root,
                                                        absl::string_view svcname,
                                                        size_t count, absl::Time since) {
  if (absl::Status valid = service::ValidateServiceName(svcname); !valid.ok()) return valid;
  const std::string path = service::ServiceLogPath(root, svcname);
  posix::UniqueFd current(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  int64_t end = 0;
  if (!current.is_open()) {
    if (errno != ENOENT) return Errno("cannot open", path);
  } else {
    struct stat info;
    if (fstat(current.get(), &info) != 0) return Errno("cannot stat", path);
    end = info.st_size;
  }
  return ReadBacklogBefore(root, svcname, current.get(), end, count, since);
}

absl::StatusOr<std::vector<v1::LogRecord>> ReadBacklogBefore(const std::string& root,
                                                              absl::string_view svcname,
                                                              int current_fd, int64_t end,
                                                              size_t count, absl::Time since) {
  if (absl::Status valid = service::ValidateServiceName(svcname); !valid.ok()) return valid;
  if (count == 0) return std::vector<v1::LogRecord>();
  const std::string path = service::ServiceLogPath(root, svcname);
  Collector collector(count, since);
  FileId current_id;
  if (current_fd >= 0) {
    struct stat info;
    if (fstat(current_fd, &info) != 0) return Errno("cannot stat", path);
    current_id = IdOf(info);
    absl::StatusOr<std::vector<v1::LogRecord>> records = ReadRecords(current_fd, end, path);
    if (!records.ok()) return records.status();
    if (!collector.Take(*std::move(records))) return std::move(collector).Result();
  }

  // The rotated files older than the last file read (the current one first),
  // newest first. A rotation between listing them and opening one moves them
  // all: they are listed again, and the reading goes on after the last one read.
  FileId last = current_id;
  bool have_last = current_fd >= 0;
  bool last_is_current = have_last;
  for (int fruitless = 0; fruitless < kMaxAttempts; ++fruitless) {
    absl::StatusOr<std::vector<FileId>> listed = ListRotatedFiles(path);
    if (!listed.ok()) return listed.status();
    const std::vector<FileId>& rotated = *listed;
    size_t first = 0;
    if (have_last) {
      const auto found = std::find(rotated.begin(), rotated.end(), last);
      if (found != rotated.end()) {
        first = static_cast<size_t>(found - rotated.begin()) + 1;
      } else if (!last_is_current) {
        return std::move(collector).Result();  // dropped, and the older ones too
      }
    }
    bool moved = false;
    for (size_t i = first; i < rotated.size(); ++i) {
      const std::string name = absl::StrCat(path, ".", i + 1);
      posix::UniqueFd fd(open(name.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.is_open()) {
        if (errno != ENOENT) return Errno("cannot open", name);
        moved = true;
        break;
      }
      struct stat info;
      if (fstat(fd.get(), &info) != 0) return Errno("cannot stat", name);
      if (!(IdOf(info) == rotated[i])) {
        moved = true;
        break;
      }
      absl::StatusOr<std::vector<v1::LogRecord>> records =
          ReadRecords(fd.get(), info.st_size, name);
      if (!records.ok()) return records.status();
      last = rotated[i];
      have_last = true;
      last_is_current = false;
      fruitless = -1;
      if (!collector.Take(*std::move(records))) return std::move(collector).Result();
    }
    if (!moved) return std::move(collector).Result();
  }
  return absl::UnavailableError(
      absl::StrCat(path, " was rotated ", kMaxAttempts, " times in a row while its backlog was read"));
}

}  // namespace omd::logs

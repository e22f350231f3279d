#include "testing/process_stats.h"

#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace omd::testing {
namespace {

absl::StatusOr<std::string> ReadProcFile(pid_t pid, const char* name) {
  const std::string path = absl::StrCat("/proc/", pid, "/", name);
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// Fields of /proc/PID/stat after the command name, which is in parentheses and
// may itself contain spaces and parentheses: the first of them is field 3, state.
absl::StatusOr<std::vector<std::string>> StatFieldsAfterName(pid_t pid) {
  absl::StatusOr<std::string> stat = ReadProcFile(pid, "stat");
  if (!stat.ok()) return stat.status();
  const size_t name_end = stat->rfind(')');
  if (name_end == std::string::npos) {
    return absl::InternalError(absl::StrCat("unexpected /proc/", pid, "/stat"));
  }
  return absl::StrSplit(absl::string_view(*stat).substr(name_end + 1), ' ', absl::SkipWhitespace());
}

// A "Key:   1234 kB" line of /proc/PID/status, in bytes (or as is, without kB).
int64_t StatusValue(absl::string_view status, absl::string_view key, int64_t multiplier) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, ":")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, "kB");
    int64_t value = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &value)) return -1;
    return value * multiplier;
  }
  return -1;
}

int CountOpenFds(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/fd");
  DIR* directory = opendir(path.c_str());
  if (directory == nullptr) return -1;
  int count = 0;
  while (const dirent* entry = readdir(directory)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(directory);
  return count;
}

}  // namespace

absl::StatusOr<double> ProcessCpuSeconds(pid_t pid) {
  absl::StatusOr<std::vector<std::string>> fields = StatFieldsAfterName(pid);
  if (!fields.ok()) return fields.status();
  // utime and stime are fields 14 and 15 of proc(5); the list starts at field 3.
  uint64_t user_ticks = 0;
  uint64_t system_ticks = 0;
  if (fields->size() < 13 || !absl::SimpleAtoi((*fields)[11], &user_ticks) ||
      !absl::SimpleAtoi((*fields)[12], &system_ticks)) {
    return absl::InternalError(absl::StrCat("unexpected /proc/", pid, "/stat"));
  }
  static const long ticks_per_second = sysconf(_SC_CLK_TCK);
  return static_cast<double>(user_ticks + system_ticks) / static_cast<double>(ticks_per_second);
}

absl::StatusOr<ProcessStats> ReadProcessStats(pid_t pid, bool count_fds) {
  ProcessStats stats;
  absl::StatusOr<double> cpu = ProcessCpuSeconds(pid);
  if (!cpu.ok()) return cpu.status();
  stats.cpu_seconds = *cpu;
  absl::StatusOr<std::string> status = ReadProcFile(pid, "status");
  if (!status.ok()) return status.status();
  stats.rss_bytes = StatusValue(*status, "VmRSS", 1024);
  stats.peak_rss_bytes = StatusValue(*status, "VmHWM", 1024);
  stats.threads = static_cast<int>(StatusValue(*status, "Threads", 1));
  if (stats.rss_bytes < 0 || stats.threads < 1) {
    // A zombie has a status without memory lines: as good as gone.
    return absl::NotFoundError(absl::StrCat("process ", pid, " has no memory (exited?)"));
  }
  if (count_fds) stats.open_fds = CountOpenFds(pid);
  return stats;
}

RssSampler::RssSampler(pid_t pid, absl::Duration interval) : pid_(pid), interval_(interval) {
  Sample();
  thread_ = std::thread([this] { Loop(); });
}

RssSampler::~RssSampler() { Stop(); }

void RssSampler::Stop() {
  {
    sync::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  if (thread_.joinable()) {
    thread_.join();
    Sample();
  }
}

void RssSampler::Loop() {
  while (true) {
    {
      sync::MutexLock lock(&mutex_);
      // Sleeps for the interval, or less if Stop comes first.
      if (mutex_.AwaitWithTimeout(
              [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return stopping_; }, interval_)) {
        return;
      }
    }
    Sample();
  }
}

void RssSampler::Sample() {
  absl::StatusOr<ProcessStats> stats = ReadProcessStats(pid_, /*count_fds=*/false);
  if (!stats.ok()) return;
  sync::MutexLock lock(&mutex_);
  ++samples_;
  if (stats->rss_bytes > max_rss_bytes_) max_rss_bytes_ = stats->rss_bytes;
  if (stats->threads > max_threads_) max_threads_ = stats->threads;
}

int64_t RssSampler::max_rss_bytes() const {
  sync::MutexLock lock(&mutex_);
  return max_rss_bytes_;
}

int RssSampler::max_threads() const {
  sync::MutexLock lock(&mutex_);
  return max_threads_;
}

int RssSampler::samples() const {
  sync::MutexLock lock(&mutex_);
  return samples_;
}

}  // namespace omd::testing

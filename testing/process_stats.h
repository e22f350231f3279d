// What a process costs, read from /proc: CPU time, resident memory now and at
// its peak, threads, open descriptors; and a sampler that watches the resident
// memory of a process on a thread of its own and keeps the maximum, for the peak
// during an attack (VmHWM is the peak since the process started).
//
//   absl::StatusOr<ProcessStats> before = ReadProcessStats(pid);
//   RssSampler sampler(pid, absl::Milliseconds(10));
//   ... attack ...
//   sampler.Stop();
//   absl::StatusOr<ProcessStats> after = ReadProcessStats(pid);
//   double cpu = after->cpu_seconds - before->cpu_seconds;
//   int64_t peak = sampler.max_rss_bytes();
#ifndef OMD_TESTING_PROCESS_STATS_H_
#define OMD_TESTING_PROCESS_STATS_H_

#include <sys/types.h>

#include <cstdint>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sync/mutex.h"

namespace omd::testing {

struct ProcessStats {
  double cpu_seconds = 0;      // user + system, all threads, from /proc/PID/stat
  int64_t rss_bytes = 0;       // VmRSS
  int64_t peak_rss_bytes = 0;  // VmHWM: the peak since the process started
  int threads = 0;
  int open_fds = -1;  // entries of /proc/PID/fd; -1 if not asked for or not readable
};

// NOT_FOUND once the process is gone. Counting descriptors lists /proc/PID/fd,
// which takes a while for a process holding tens of thousands.
absl::StatusOr<ProcessStats> ReadProcessStats(pid_t pid, bool count_fds = true);

// utime + stime of /proc/PID/stat, in seconds.
absl::StatusOr<double> ProcessCpuSeconds(pid_t pid);

// Reads VmRSS (and Threads) of a process every `interval` until stopped, keeping
// the maximum. Samples once at construction and once in Stop, so that even a short
// attack has two samples.
class RssSampler {
 public:
  RssSampler(pid_t pid, absl::Duration interval);
  ~RssSampler();  // stops
  RssSampler(const RssSampler&) = delete;
  RssSampler& operator=(const RssSampler&) = delete;

  void Stop();

  int64_t max_rss_bytes() const;
  int max_threads() const;
  int samples() const;

 private:
  void Sample();
  void Loop();

  const pid_t pid_;
  const absl::Duration interval_;
  mutable sync::Mutex mutex_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  int64_t max_rss_bytes_ ABSL_GUARDED_BY(mutex_) = 0;
  int max_threads_ ABSL_GUARDED_BY(mutex_) = 0;
  int samples_ ABSL_GUARDED_BY(mutex_) = 0;
  std::thread thread_;  // last: started once the fields above exist
};

}  // namespace omd::testing

#endif  // OMD_TESTING_PROCESS_STATS_H_

#include "testing/process_stats.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "sync/mutex.h"

extern char** environ;

namespace omd::testing {
namespace {

constexpr size_t kBlockBytes = size_t{64} << 20;

double CpuClock(clockid_t clock) {
  timespec now{};
  clock_gettime(clock, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}
double ThreadCpuClock() { return CpuClock(CLOCK_THREAD_CPUTIME_ID); }
double ProcessCpuClock() { return CpuClock(CLOCK_PROCESS_CPUTIME_ID); }

// 64 MiB of anonymous memory, touched (resident) until destroyed. mmap, not new:
// the compiler may not elide it, and munmap gives it back to the system at once.
class ResidentBlock {
 public:
  ResidentBlock()
      : data_(mmap(nullptr, kBlockBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                   0)) {
    if (data_ != MAP_FAILED) std::memset(data_, 1, kBlockBytes);
  }
  ~ResidentBlock() {
    if (data_ != MAP_FAILED) munmap(data_, kBlockBytes);
  }
  bool ok() const { return data_ != MAP_FAILED; }

 private:
  void* const data_;
};

TEST(ProcessStatsTest, ReadsCpuMemoryThreadsAndDescriptorsOfThisProcess) {
  absl::StatusOr<ProcessStats> before = ReadProcessStats(getpid());
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_GT(before->rss_bytes, 0);
  EXPECT_GE(before->peak_rss_bytes, before->rss_bytes);
  EXPECT_GE(before->threads, 1);
  EXPECT_GE(before->open_fds, 3);

  // 300 ms of CPU on this thread, by the kernel's own clock, however busy the
  // machine is.
  const double process_cpu_before = ProcessCpuClock();
  const double thread_cpu_start = ThreadCpuClock();
  volatile uint64_t spins = 0;
  while (ThreadCpuClock() - thread_cpu_start < 0.3) spins = spins + 1;
  const double process_cpu_used = ProcessCpuClock() - process_cpu_before;
  ResidentBlock block;
  ASSERT_TRUE(block.ok());
  std::vector<int> fds;
  for (int k = 0; k < 10; ++k) fds.push_back(open("/dev/null", O_RDONLY | O_CLOEXEC));
  sync::Mutex mutex;
  bool stop = false;  // guarded by mutex
  std::thread sleeper([&] {
    sync::MutexLock lock(&mutex);
    mutex.Await([&] { return stop; });
  });

  absl::StatusOr<ProcessStats> after = ReadProcessStats(getpid());
  ASSERT_TRUE(after.ok()) << after.status();
  // /proc counts in clock ticks (10 ms).
  EXPECT_GE(after->cpu_seconds - before->cpu_seconds, 0.3 - 0.02);
  EXPECT_LE(after->cpu_seconds - before->cpu_seconds, process_cpu_used + 0.1);
  EXPECT_GE(after->rss_bytes - before->rss_bytes, static_cast<int64_t>(kBlockBytes / 2));
  EXPECT_GE(after->peak_rss_bytes, after->rss_bytes);
  EXPECT_EQ(after->open_fds - before->open_fds, 10);

  {
    sync::MutexLock lock(&mutex);
    stop = true;
  }
  sleeper.join();
  for (int fd : fds) close(fd);
  absl::StatusOr<ProcessStats> without_fds = ReadProcessStats(getpid(), /*count_fds=*/false);
  ASSERT_TRUE(without_fds.ok());
  EXPECT_EQ(without_fds->open_fds, -1);
  // Compared with after the thread ended, not with before it started: a sanitizer
  // may start a thread of its own with the first one.
  EXPECT_EQ(after->threads - without_fds->threads, 1);
}

TEST(ProcessStatsTest, GoneProcessIsNotFound) {
  pid_t pid = 0;
  char* argv[] = {const_cast<char*>("true"), nullptr};
  ASSERT_EQ(posix_spawnp(&pid, "true", nullptr, nullptr, argv, environ), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(ReadProcessStats(pid).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ProcessCpuSeconds(pid).status().code(), absl::StatusCode::kNotFound);
}

TEST(RssSamplerTest, KeepsThePeakOfMemoryFreedSince) {
  const int64_t baseline = ReadProcessStats(getpid(), false).value().rss_bytes;
  RssSampler sampler(getpid(), absl::Milliseconds(5));
  {
    ResidentBlock block;
    ASSERT_TRUE(block.ok());
    absl::SleepFor(absl::Milliseconds(100));
  }
  absl::SleepFor(absl::Milliseconds(50));
  sampler.Stop();
  const int64_t now = ReadProcessStats(getpid(), false).value().rss_bytes;
  EXPECT_GE(sampler.max_rss_bytes() - baseline, static_cast<int64_t>(kBlockBytes / 2));
  EXPECT_LT(now, sampler.max_rss_bytes() - static_cast<int64_t>(kBlockBytes / 2));
  EXPECT_GE(sampler.samples(), 5);
  EXPECT_GE(sampler.max_threads(), 2);  // this one and the sampler's
  const int samples = sampler.samples();
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(sampler.samples(), samples);  // stopped
}

}  // namespace
}  // namespace omd::testing

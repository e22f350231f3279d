// Micro-benchmarks of the replay guard at the steady state of a busy gate: 2^20 ids
// held (8192 new ids a second, each held 128 s), from 8 members, with a journal and
// without. The clock is simulated, so that the steady state does not depend on the
// benchmark's speed: the daemon's absl::Now() (a clock read) comes on top.
//
//   bazel build -c opt //server:replay_guard_benchmark
//   bazel-bin/server/replay_guard_benchmark --benchmark_min_time=1
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "posix/memory.h"
#include "server/replay_guard.h"

namespace omd::server {
namespace {

constexpr size_t kIdsPerSecond = 8192;
constexpr int64_t kRetentionSeconds = 128;
constexpr size_t kHeld = kIdsPerSecond * kRetentionSeconds;  // 2^20
constexpr size_t kSenders = 8;
const char* const kSenderNames[kSenders] = {"node0", "node1", "node2", "node3",
                                            "node4", "node5", "node6", "node7"};

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

class SteadyState {
 public:
  explicit SteadyState(bool journaled) {
    ReplayGuard::Options options;
    options.retention = absl::Seconds(kRetentionSeconds);
    options.capacity = kHeld + kHeld / 16;  // room for the second being filled
    options.clock = [this] { return now_; };
    if (journaled) {
      const char* tmpdir = getenv("TMPDIR");
      directory_ = absl::StrCat(tmpdir != nullptr ? tmpdir : "/tmp",
                                "/replay_guard_benchmark.XXXXXX");
      if (mkdtemp(directory_.data()) == nullptr) std::abort();
      options.journal_path = directory_ + "/replay.journal";
    }
    options_ = options;
    const size_t resident_before = posix::ResidentBytes();
    guard_ = ReplayGuard::Create(options).value();
    // One retention and a second: the oldest ids are being dropped.
    for (size_t i = 0; i < kHeld + kIdsPerSecond; ++i) {
      if (!AdmitNew().ok()) std::abort();
    }
    resident_bytes_per_id_ =
        static_cast<double>(posix::ResidentBytes() - resident_before) / guard_->held();
  }

  ~SteadyState() {
    if (directory_.empty()) return;
    guard_.reset();
    unlink((directory_ + "/replay.journal").c_str());
    rmdir(directory_.c_str());
  }

  // A fresh id, from the members in turn, time passing at kIdsPerSecond.
  absl::Status AdmitNew() {
    if (++admitted_this_second_ == kIdsPerSecond) {
      admitted_this_second_ = 0;
      now_ += absl::Seconds(1);
    }
    const uint64_t n = next_id_++;
    return guard_->Admit(Id(n), kSenderNames[n % kSenders], now_, kSenders);
  }

  // An id admitted earlier and still held: `back` ids ago, 1 <= back <= kHeld / 2.
  absl::Status AdmitReplay(uint64_t back) {
    return guard_->Admit(Id(next_id_ - back), kSenderNames[0], now_, kSenders);
  }

  // Whether the next AdmitNew is the first of a second: the one that drops the ids
  // accepted in a second, a retention ago.
  bool next_starts_a_second() const {
    return admitted_this_second_ == kIdsPerSecond - 1;
  }

  // A clean stop and start of omd: the journal is reloaded.
  void Restart() {
    guard_.reset();
    guard_ = ReplayGuard::Create(options_).value();
  }

  ReplayGuard& guard() { return *guard_; }
  double resident_bytes_per_id() const { return resident_bytes_per_id_; }

 private:
  absl::string_view Id(uint64_t n) {
    const uint64_t halves[2] = {SplitMix64(2 * n), SplitMix64(2 * n + 1)};
    std::memcpy(id_, halves, sizeof(id_));
    return absl::string_view(id_, sizeof(id_));
  }

  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  size_t admitted_this_second_ = 0;
  uint64_t next_id_ = 0;
  double resident_bytes_per_id_ = 0;
  char id_[ReplayGuard::kRequestIdBytes];
  std::string directory_;
  ReplayGuard::Options options_;
  std::unique_ptr<ReplayGuard> guard_;
};

// One per mode, kept across the benchmark's runs (filling one takes a while), and
// destroyed at exit, which removes the journal.
SteadyState& Shared(bool journaled) {
  static std::unique_ptr<SteadyState> states[2];
  std::unique_ptr<SteadyState>& state = states[journaled ? 1 : 0];
  if (state == nullptr) state = std::make_unique<SteadyState>(journaled);
  return *state;
}

void BM_AdmitFresh(benchmark::State& state) {
  SteadyState& steady = Shared(state.range(0) != 0);
  for (auto _ : state) {
    absl::Status status = steady.AdmitNew();
    if (!status.ok()) {
      state.SkipWithError(std::string(status.message()).c_str());
      break;
    }
  }
  state.counters["held"] = static_cast<double>(steady.guard().held());
  state.counters["resident_B_per_id"] = steady.resident_bytes_per_id();
}
BENCHMARK(BM_AdmitFresh)->ArgName("journal")->Arg(0)->Arg(1);

void BM_AdmitReplay(benchmark::State& state) {
  SteadyState& steady = Shared(state.range(0) != 0);
  uint64_t back = 0;
  for (auto _ : state) {
    back = (back + 7919) % (kHeld / 2);  // spread over the held ids
    absl::Status status = steady.AdmitReplay(back + 1);
    if (status.code() != absl::StatusCode::kUnauthenticated) {
      state.SkipWithError("a replay was not refused");
      break;
    }
  }
}
BENCHMARK(BM_AdmitReplay)->ArgName("journal")->Arg(0)->Arg(1);

// The worst Admit: the first of a second, which drops the 8192 ids that expired in
// that second.
void BM_AdmitDroppingASecond(benchmark::State& state) {
  SteadyState& steady = Shared(state.range(0) != 0);
  for (auto _ : state) {
    state.PauseTiming();
    while (!steady.next_starts_a_second()) {
      if (!steady.AdmitNew().ok()) std::abort();
    }
    state.ResumeTiming();
    if (!steady.AdmitNew().ok()) {
      state.SkipWithError("Admit failed");
      break;
    }
  }
}
BENCHMARK(BM_AdmitDroppingASecond)
    ->ArgName("journal")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond);

// The housekeeping thread's Sync() after a second of traffic (8192 ids, 32 pages of
// slots): msync to the journal's file system, then of the header.
void BM_SyncAfterASecond(benchmark::State& state) {
  SteadyState& steady = Shared(true);
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t i = 0; i < kIdsPerSecond; ++i) {
      if (!steady.AdmitNew().ok()) std::abort();
    }
    state.ResumeTiming();
    if (!steady.guard().Sync().ok()) {
      state.SkipWithError("Sync failed");
      break;
    }
  }
}
BENCHMARK(BM_SyncAfterASecond)->Unit(benchmark::kMicrosecond);

// Destroying the guard (final sync) and creating it again: reading the 2^20 ids
// held, writing them to a new journal, syncing it and renaming it into place.
void BM_RestartWithAJournal(benchmark::State& state) {
  SteadyState& steady = Shared(true);
  for (auto _ : state) steady.Restart();
  state.counters["held"] = static_cast<double>(steady.guard().held());
}
BENCHMARK(BM_RestartWithAJournal)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace omd::server

BENCHMARK_MAIN();

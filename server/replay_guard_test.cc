#include "server/replay_guard.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::server {
namespace {

using ::testing::HasSubstr;

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);
constexpr char kReplayed[] = "UNAUTHENTICATED: replayed request";
constexpr char kBelowTheFloor[] =
    "UNAUTHENTICATED: sent before this node's unclean restart; resend";
constexpr char kBoot1[] = "0b7f5b1c-1d2e-4f3a-8b9c-0d1e2f3a4b5c\n";
constexpr char kBoot2[] = "9e8d7c6b-5a49-4382-a170-f0e1d2c3b4a5\n";

class FakeClock {
 public:
  absl::Time Now() const { return absl::FromUnixNanos(nanos_.load()); }
  void Advance(absl::Duration d) { nanos_ += absl::ToInt64Nanoseconds(d); }

 private:
  std::atomic<int64_t> nanos_{absl::ToUnixNanos(kStart)};
};

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

// A 16-byte id that looks random, like a CSPRNG's.
std::string Id(uint64_t n) {
  const uint64_t halves[2] = {SplitMix64(2 * n), SplitMix64(2 * n + 1)};
  return std::string(reinterpret_cast<const char*>(halves), sizeof(halves));
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << contents;
  ASSERT_TRUE(file.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)),
                     std::istreambuf_iterator<char>());
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

template <typename T>
T ReadAt(const std::string& bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(value));
  return value;
}

// Runs `work` in a child process that is then killed with SIGKILL, like omd under
// kill -9: no destructor runs, and what the child stored into the journal's mapping
// is only in the page cache. `work` returns false if it failed.
void RunAndKill(absl::FunctionRef<bool()> work) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipe_fds[0]);
    if (!work()) _exit(1);
    const char done = 'x';
    if (write(pipe_fds[1], &done, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(pipe_fds[1]);
  char done;
  const ssize_t n = read(pipe_fds[0], &done, 1);
  close(pipe_fds[0]);
  kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_EQ(n, 1) << "the child's work failed";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

class ReplayGuardTestBase {
 protected:
  void MakeDirectory() {
    const char* tmpdir = getenv("TEST_TMPDIR");
    ASSERT_NE(tmpdir, nullptr);
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = absl::StrCat(tmpdir, "/",
                        absl::StrReplaceAll(absl::StrCat(test->test_suite_name(), ".",
                                                         test->name()),
                                            {{"/", "_"}}));
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0) << dir_;
    journal_path_ = dir_ + "/replay.journal";
    boot_id_path_ = dir_ + "/boot_id";
    WriteFile(boot_id_path_, kBoot1);
  }

  ReplayGuard::Options Options(size_t capacity, bool journaled) {
    ReplayGuard::Options options;
    options.capacity = capacity;
    options.clock = [this] { return clock_.Now(); };
    options.boot_id_path = boot_id_path_;
    if (journaled) options.journal_path = journal_path_;
    return options;
  }

  static std::unique_ptr<ReplayGuard> Create(ReplayGuard::Options options) {
    absl::StatusOr<std::unique_ptr<ReplayGuard>> guard =
        ReplayGuard::Create(std::move(options));
    EXPECT_TRUE(guard.ok()) << guard.status();
    return guard.ok() ? *std::move(guard) : nullptr;
  }

  // Admit from node1, sent now, in a cluster of `senders`.
  absl::Status Admit(ReplayGuard& guard, uint64_t id, absl::string_view sender = "node1",
                     size_t senders = 1) {
    return guard.Admit(Id(id), sender, clock_.Now(), senders);
  }

  FakeClock clock_;
  std::string dir_;
  std::string journal_path_;
  std::string boot_id_path_;
};

// The guard's rules, with a journal (GetParam()) and without.
class ReplayGuardTest : public ReplayGuardTestBase, public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { MakeDirectory(); }
  std::unique_ptr<ReplayGuard> Create(size_t capacity = 1024) {
    return ReplayGuardTestBase::Create(Options(capacity, GetParam()));
  }
};

INSTANTIATE_TEST_SUITE_P(Modes, ReplayGuardTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Journal" : "Memory";
                         });

TEST_P(ReplayGuardTest, AcceptsAnIdOnceWhateverItsSentAt) {
  std::unique_ptr<ReplayGuard> guard = Create();
  ASSERT_NE(guard, nullptr);
  EXPECT_TRUE(guard->Admit(Id(1), "node1", kStart, 3).ok());
  EXPECT_TRUE(guard->Admit(Id(2), "node1", kStart, 3).ok());
  // A new envelope with the same id and another send time: still a replay.
  for (absl::Duration sent : {absl::Seconds(30), -absl::Seconds(30), absl::ZeroDuration()}) {
    absl::Status replay = guard->Admit(Id(1), "node1", kStart + sent, 3);
    EXPECT_EQ(replay.code(), absl::StatusCode::kUnauthenticated) << sent;
    EXPECT_EQ(replay.ToString(), kReplayed);
  }
  // From another sender too.
  EXPECT_EQ(guard->Admit(Id(2), "node2", kStart, 3).code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(guard->held(), 2u);
  EXPECT_EQ(guard->floor(), std::nullopt);
}

TEST_P(ReplayGuardTest, ForgetsAnIdOnceTheRetentionHasPassed) {
  std::unique_ptr<ReplayGuard> guard = Create();
  ASSERT_NE(guard, nullptr);
  clock_.Advance(absl::Milliseconds(500));
  ASSERT_TRUE(Admit(*guard, 1).ok());
  // Held for the whole retention (120 s by default)...
  clock_.Advance(absl::Seconds(120));
  EXPECT_EQ(Admit(*guard, 1).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(guard->held(), 1u);
  // ... and at most one second more (expiries are whole seconds, rounded up).
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(Admit(*guard, 2).ok());
  EXPECT_EQ(guard->held(), 1u);
  EXPECT_TRUE(Admit(*guard, 1).ok());
  EXPECT_EQ(guard->held(), 2u);
}

TEST_P(ReplayGuardTest, EnforcesEachSendersShareOnceHalfFull) {
  std::unique_ptr<ReplayGuard> guard = Create(16);
  ASSERT_NE(guard, nullptr);
  // 4 members: 16 / 4 = 4 ids each, once 8 are held.
  for (int i = 1; i <= 8; ++i) ASSERT_TRUE(Admit(*guard, i, "node1", 4).ok()) << i;
  absl::Status flooding = Admit(*guard, 9, "node1", 4);
  EXPECT_EQ(flooding.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(flooding.message(), HasSubstr("node1"));
  EXPECT_THAT(flooding.message(), HasSubstr("retry later"));
  // The others still get in, up to their own share.
  for (int i = 10; i <= 13; ++i) EXPECT_TRUE(Admit(*guard, i, "node2", 4).ok()) << i;
  EXPECT_EQ(Admit(*guard, 14, "node2", 4).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Admit(*guard, 15, "node3", 4).ok());
  EXPECT_EQ(guard->held(), 13u);
  // A replay is a replay, even from a sender over its share.
  EXPECT_EQ(Admit(*guard, 1, "node1", 4).ToString(), kReplayed);
  // The share follows the number of members the caller passes.
  EXPECT_TRUE(Admit(*guard, 14, "node2", 2).ok());
  EXPECT_EQ(guard->held(), 14u);
  // And frees up as ids expire.
  clock_.Advance(absl::Seconds(121));
  for (int i = 17; i <= 24; ++i) EXPECT_TRUE(Admit(*guard, i, "node1", 4).ok()) << i;
  EXPECT_EQ(Admit(*guard, 25, "node1", 4).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(guard->held(), 8u);
}

// With many members, a busy one is not held to 1/members of the guard while the
// others are quiet.
TEST_P(ReplayGuardTest, OneBusyMemberOfALargeClusterUsesTheOpenHalf) {
  std::unique_ptr<ReplayGuard> guard = Create(1000);
  ASSERT_NE(guard, nullptr);
  for (int i = 1; i <= 500; ++i) ASSERT_TRUE(Admit(*guard, i, "node1", 1000).ok()) << i;
  EXPECT_EQ(Admit(*guard, 501, "node1", 1000).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Admit(*guard, 502, "node2", 1000).ok());
  EXPECT_EQ(Admit(*guard, 503, "node2", 1000).code(), absl::StatusCode::kResourceExhausted);
}

TEST_P(ReplayGuardTest, RefusesWhenFullWithoutEvicting) {
  std::unique_ptr<ReplayGuard> guard = Create(4);
  ASSERT_NE(guard, nullptr);
  for (uint64_t id = 0; id < 4; ++id) {
    ASSERT_TRUE(Admit(*guard, id, absl::StrCat("node", id), 1).ok()) << id;
    clock_.Advance(absl::Seconds(1));
  }
  absl::Status full = Admit(*guard, 4, "node9", 1);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.message(), HasSubstr("full"));
  EXPECT_THAT(full.message(), HasSubstr("retry later"));
  // Every id held is still refused: none was evicted.
  for (uint64_t id = 0; id < 4; ++id) {
    EXPECT_EQ(Admit(*guard, id, "node9", 1).ToString(), kReplayed) << id;
  }
  EXPECT_EQ(guard->held(), 4u);
  // The oldest (accepted at kStart, now kStart + 4 s) expires first, and makes room
  // for one.
  clock_.Advance(absl::Seconds(116));
  EXPECT_TRUE(Admit(*guard, 4, "node9", 1).ok());
  EXPECT_EQ(Admit(*guard, 5, "node9", 1).code(), absl::StatusCode::kResourceExhausted);
}

TEST_P(ReplayGuardTest, RefusesBadArguments) {
  std::unique_ptr<ReplayGuard> guard = Create();
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(guard->Admit(Id(1).substr(0, 15), "node1", kStart, 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(guard->Admit(Id(1) + "x", "node1", kStart, 1).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(guard->Admit(Id(1), "node1", kStart, 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(guard->held(), 0u);
  EXPECT_EQ(ReplayGuard::Create(Options(0, GetParam())).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Ids that expire at different times, in a ring that wraps around; with a journal,
// the ring is reloaded across its end after a restart.
TEST_P(ReplayGuardTest, WrapsAroundTheRing) {
  ReplayGuard::Options options = Options(4, GetParam());
  options.retention = absl::Seconds(10);
  std::unique_ptr<ReplayGuard> guard = ReplayGuardTestBase::Create(options);
  ASSERT_NE(guard, nullptr);
  ASSERT_TRUE(Admit(*guard, 'a').ok());
  ASSERT_TRUE(Admit(*guard, 'b').ok());
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(Admit(*guard, 'c').ok());
  ASSERT_TRUE(Admit(*guard, 'd').ok());
  EXPECT_EQ(Admit(*guard, 'e').code(), absl::StatusCode::kResourceExhausted);
  // a and b expire; e and f take their slots, at the start of the ring.
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(Admit(*guard, 'e').ok());
  ASSERT_TRUE(Admit(*guard, 'f').ok());
  EXPECT_EQ(Admit(*guard, 'g').code(), absl::StatusCode::kResourceExhausted);
  if (GetParam()) {
    guard.reset();
    guard = ReplayGuardTestBase::Create(options);
    ASSERT_NE(guard, nullptr);
    EXPECT_EQ(guard->floor(), std::nullopt) << guard->floor_reason();
    EXPECT_EQ(Admit(*guard, 'g').code(), absl::StatusCode::kResourceExhausted);
  }
  EXPECT_EQ(guard->held(), 4u);
  for (uint64_t id : {'c', 'd', 'e', 'f'}) {
    EXPECT_EQ(Admit(*guard, id).ToString(), kReplayed) << id;
  }
  EXPECT_EQ(Admit(*guard, 'a').code(), absl::StatusCode::kResourceExhausted);
  clock_.Advance(absl::Seconds(5));  // c and d expire, then e and f
  ASSERT_TRUE(Admit(*guard, 'g').ok());
  ASSERT_TRUE(Admit(*guard, 'h').ok());
  EXPECT_EQ(Admit(*guard, 'i').code(), absl::StatusCode::kResourceExhausted);
  for (uint64_t id : {'e', 'f', 'g', 'h'}) {
    EXPECT_EQ(Admit(*guard, id).ToString(), kReplayed) << id;
  }
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(guard->held(), 4u);  // dropped lazily, by the next Admit
  ASSERT_TRUE(Admit(*guard, 'i').ok());
  EXPECT_EQ(guard->held(), 3u);
  for (uint64_t id : {'g', 'h', 'i'}) {
    EXPECT_EQ(Admit(*guard, id).ToString(), kReplayed) << id;
  }
  EXPECT_TRUE(Admit(*guard, 'e').ok());
}

TEST_P(ReplayGuardTest, ConcurrentAdmitsAcceptEachIdOnce) {
  // Each thread admits ids of its own and ids all the threads try.
  constexpr int kThreads = 4;
  constexpr int kIds = 500;
  std::unique_ptr<ReplayGuard> guard = Create(4096);
  ASSERT_NE(guard, nullptr);
  std::vector<std::atomic<int>> shared_wins(kIds);
  std::atomic<int> own_wins{0};
  std::atomic<bool> stop_syncing{false};
  std::thread syncer([&] {  // as the daemon's housekeeping thread does
    while (GetParam() && !stop_syncing) {
      EXPECT_TRUE(guard->Sync().ok());
      absl::SleepFor(absl::Milliseconds(1));
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string sender = absl::StrCat("node", t);
      for (int i = 0; i < kIds; ++i) {
        if (guard->Admit(Id(1'000'000 + t * kIds + i), sender, kStart, 1).ok()) {
          ++own_wins;
        }
        if (guard->Admit(Id(i), sender, kStart, 1).ok()) ++shared_wins[i];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  stop_syncing = true;
  syncer.join();
  EXPECT_EQ(own_wins.load(), kThreads * kIds);
  for (int i = 0; i < kIds; ++i) EXPECT_EQ(shared_wins[i].load(), 1) << i;
  EXPECT_EQ(guard->held(), size_t{kThreads * kIds + kIds});
}

// What only a journal does.
class JournalTest : public ReplayGuardTestBase, public ::testing::Test {
 protected:
  void SetUp() override { MakeDirectory(); }
  ReplayGuard::Options Options(size_t capacity = 1024) {
    return ReplayGuardTestBase::Options(capacity, /*journaled=*/true);
  }
  std::unique_ptr<ReplayGuard> Create(size_t capacity = 1024) {
    return ReplayGuardTestBase::Create(Options(capacity));
  }
};

TEST_F(JournalTest, RestartReloadsTheIdsNotExpired) {
  std::unique_ptr<ReplayGuard> guard = Create();
  ASSERT_NE(guard, nullptr);
  ASSERT_TRUE(Admit(*guard, 1).ok());
  clock_.Advance(absl::Seconds(100));
  ASSERT_TRUE(Admit(*guard, 2).ok());
  guard.reset();
  clock_.Advance(absl::Seconds(30));  // 1 has expired, 2 has not
  guard = Create();
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(guard->floor(), std::nullopt) << guard->floor_reason();
  EXPECT_EQ(guard->held(), 1u);
  EXPECT_EQ(Admit(*guard, 2).ToString(), kReplayed);
  EXPECT_TRUE(Admit(*guard, 1).ok());
}

// A journal whose ids have all expired reloads to an empty ring whose oldest
// slot is slot 0: a restart after a stop longer than the retention then admits
// requests, and drops the expired ones, as a fresh guard does. (The ring's head
// was one past its end: the first expiry read past the mapping, and a daemon
// restarted that late crashed on its second request.)
TEST_F(JournalTest, RestartAfterEveryIdExpiredStartsAtTheFirstSlot) {
  std::unique_ptr<ReplayGuard> guard = Create(64);
  ASSERT_NE(guard, nullptr);
  ASSERT_TRUE(Admit(*guard, 1).ok());
  guard.reset();
  clock_.Advance(absl::Seconds(200));  // past the 120 s retention
  guard = Create(64);
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(guard->held(), 0u);
  // Many times round the ring, each id expired before the next comes.
  for (uint64_t id = 2; id < 2 + 64 * 20; ++id) {
    ASSERT_TRUE(Admit(*guard, id).ok()) << id;
    EXPECT_LE(guard->held(), 1u);
    clock_.Advance(absl::Seconds(121));
  }
  ASSERT_TRUE(Admit(*guard, 1000000).ok());
  EXPECT_EQ(Admit(*guard, 1000000).ToString(), kReplayed);
}

TEST_F(JournalTest, RestartKeepsEachSendersCount) {
  std::unique_ptr<ReplayGuard> guard = Create(8);
  ASSERT_NE(guard, nullptr);
  for (int i = 1; i <= 4; ++i) ASSERT_TRUE(Admit(*guard, i, "node1", 4).ok()) << i;
  ASSERT_TRUE(Admit(*guard, 5, "node2", 4).ok());
  guard.reset();
  guard = Create(8);
  ASSERT_NE(guard, nullptr);
  // Half full: node1 is over its share of 8 / 4, node2 under it.
  EXPECT_EQ(Admit(*guard, 6, "node1", 4).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(Admit(*guard, 7, "node2", 4).ok());
  EXPECT_EQ(Admit(*guard, 8, "node2", 4).code(), absl::StatusCode::kResourceExhausted);
}

// kill -9 of omd: the ids are in the page cache, and no floor is needed.
TEST_F(JournalTest, ProcessCrashKeepsTheIdsWithoutAFloor) {
  RunAndKill([&] {
    absl::StatusOr<std::unique_ptr<ReplayGuard>> guard = ReplayGuard::Create(Options());
    if (!guard.ok()) return false;
    for (uint64_t id = 0; id < 100; ++id) {
      if (!Admit(**guard, id).ok()) return false;
    }
    (void)guard->release();  // and never destroyed
    return true;
  });
  clock_.Advance(absl::Seconds(10));
  std::unique_ptr<ReplayGuard> guard = Create();
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(guard->floor(), std::nullopt) << guard->floor_reason();
  EXPECT_EQ(guard->held(), 100u);
  for (uint64_t id = 0; id < 100; ++id) {
    EXPECT_EQ(Admit(*guard, id).ToString(), kReplayed) << id;
  }
  EXPECT_TRUE(Admit(*guard, 100).ok());
}

// A crash of the machine: omd died without closing the journal, and the boot id
// has changed since.
TEST_F(JournalTest, UncleanRebootAppliesAFloor) {
  RunAndKill([&] {
    absl::StatusOr<std::unique_ptr<ReplayGuard>> guard = ReplayGuard::Create(Options());
    if (!guard.ok() || !Admit(**guard, 1).ok()) return false;
    clock_.Advance(absl::Seconds(5));
    if (!(*guard)->Sync().ok() || !Admit(**guard, 2).ok()) return false;
    (void)guard->release();
    return true;
  });
  WriteFile(boot_id_path_, kBoot2);
  clock_.Advance(absl::Seconds(20));
  std::unique_ptr<ReplayGuard> guard = Create();
  ASSERT_NE(guard, nullptr);
  // Synced at kStart + 5 s; sync_interval 1 s; clock_skew 60 s.
  const absl::Time floor = kStart + absl::Seconds(5 + 1 + 60);
  EXPECT_EQ(guard->floor(), floor);
  EXPECT_THAT(guard->floor_reason(), HasSubstr("boot id"));
  absl::Status old = guard->Admit(Id(3), "node1", floor - absl::Milliseconds(1), 1);
  EXPECT_EQ(old.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(old.ToString(), kBelowTheFloor);
  EXPECT_TRUE(guard->Admit(Id(3), "node1", floor, 1).ok());
  // What the page cache kept is reloaded all the same.
  EXPECT_EQ(guard->Admit(Id(2), "node1", floor, 1).ToString(), kReplayed);

  // Another start on this boot keeps the floor, however the last one ended: the ids
  // the reboot lost are still lost.
  guard.reset();
  guard = Create();
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(guard->floor(), floor);
  EXPECT_THAT(guard->floor_reason(), HasSubstr("earlier start"));
  // Until Open refuses anything sent before it.
  guard.reset();
  clock_.Advance(floor + absl::Seconds(60) - clock_.Now());
  guard = Create();
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(guard->floor(), std::nullopt) << guard->floor_reason();
}

TEST_F(JournalTest, UnreadableBootIdAfterAnUncleanStopAppliesAFloor) {
  RunAndKill([&] {
    absl::StatusOr<std::unique_ptr<ReplayGuard>> guard = ReplayGuard::Create(Options());
    if (!guard.ok() || !Admit(**guard, 1).ok()) return false;
    (void)guard->release();
    return true;
  });
  ASSERT_EQ(unlink(boot_id_path_.c_str()), 0);
  std::unique_ptr<ReplayGuard> guard = Create();
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(guard->floor(), kStart + absl::Seconds(61));
  EXPECT_THAT(guard->floor_reason(), HasSubstr("unknown"));
}

TEST_F(JournalTest, CleanCloseNeedsNoFloorAfterAReboot) {
  std::unique_ptr<ReplayGuard> guard = Create();
  ASSERT_NE(guard, nullptr);
  ASSERT_TRUE(Admit(*guard, 1).ok());
  guard.reset();
  WriteFile(boot_id_path_, kBoot2);
  guard = Create();
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(guard->floor(), std::nullopt) << guard->floor_reason();
  EXPECT_EQ(Admit(*guard, 1).ToString(), kReplayed);
  // That start cleared the flag: a crash now, then a reboot, would need the floor.
  EXPECT_EQ(ReadAt<uint32_t>(ReadFile(journal_path_), 48), 0u);
}

// The same reboot, simulated by editing the header; a time in it that cannot be
// right does not push the floor beyond what any lost id needs.
TEST_F(JournalTest, FloorIsNeverAboveNowPlusTheSkew) {
  ASSERT_NE(Create(), nullptr);  // closed cleanly
  const int fd = open(journal_path_.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const uint32_t unclean = 0;
  const int64_t far_future = absl::ToUnixMillis(kStart + absl::Hours(24 * 365));
  EXPECT_EQ(pwrite(fd, &unclean, sizeof(unclean), 48), 4);
  EXPECT_EQ(pwrite(fd, &far_future, sizeof(far_future), 56), 8);
  close(fd);
  WriteFile(boot_id_path_, kBoot2);
  clock_.Advance(absl::Seconds(30));
  std::unique_ptr<ReplayGuard> guard = Create();
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(guard->floor(), clock_.Now() + absl::Seconds(61));
}

TEST_F(JournalTest, CorruptJournalIsMovedAsideBehindAFloor) {
  // A valid journal, then three ways of spoiling it.
  std::string valid;
  {
    std::unique_ptr<ReplayGuard> guard = Create(16);
    ASSERT_NE(guard, nullptr);
    ASSERT_TRUE(Admit(*guard, 1).ok());
  }
  valid = ReadFile(journal_path_);
  ASSERT_EQ(valid.size(), 4096u + 16 * 16);
  std::string bad_magic = valid;
  bad_magic[0] ^= 1;
  std::string bad_version = valid;
  bad_version[8] = 2;
  const std::string truncated = valid.substr(0, valid.size() - 16);
  const std::string garbage(100, 'x');
  const std::vector<std::pair<const char*, const std::string*>> cases = {
      {"bad magic", &bad_magic},
      {"bad version", &bad_version},
      {"truncated", &truncated},
      {"garbage", &garbage}};
  for (const auto& [name, spoiled] : cases) {
    SCOPED_TRACE(name);
    WriteFile(journal_path_, *spoiled);
    std::unique_ptr<ReplayGuard> guard = Create(16);
    ASSERT_NE(guard, nullptr);
    EXPECT_EQ(ReadFile(journal_path_ + ".corrupt"), *spoiled);
    EXPECT_EQ(guard->floor(), clock_.Now() + absl::Seconds(61));
    EXPECT_THAT(guard->floor_reason(), HasSubstr("corrupt"));
    EXPECT_EQ(guard->held(), 0u);
    EXPECT_EQ(guard->Admit(Id(2), "node1", clock_.Now(), 1).ToString(),
              kBelowTheFloor);
    const absl::Time floor = *guard->floor();
    EXPECT_TRUE(guard->Admit(Id(2), "node1", floor, 1).ok());
    guard.reset();
    // The new journal is valid, and keeps the floor while it matters.
    guard = Create(16);
    ASSERT_NE(guard, nullptr);
    EXPECT_EQ(guard->floor(), floor);
    EXPECT_THAT(guard->floor_reason(), HasSubstr("earlier start"));
    EXPECT_EQ(guard->Admit(Id(2), "node1", floor, 1).ToString(), kReplayed);
    clock_.Advance(absl::Seconds(200));
  }
}

TEST_F(JournalTest, LayoutIsAsDocumented) {
  std::unique_ptr<ReplayGuard> guard = Create(8);
  ASSERT_NE(guard, nullptr);
  clock_.Advance(absl::Milliseconds(250));
  ASSERT_TRUE(Admit(*guard, 7, "node1").ok());
  ASSERT_TRUE(Admit(*guard, 8, "node2").ok());
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(guard->Sync().ok());
  const std::string synced = ReadFile(journal_path_);
  EXPECT_EQ(ReadAt<uint32_t>(synced, 48), 0u);  // not clean while open
  EXPECT_EQ(ReadAt<int64_t>(synced, 56), absl::ToUnixMillis(clock_.Now()));
  guard.reset();

  const std::string bytes = ReadFile(journal_path_);
  ASSERT_EQ(bytes.size(), 4096u + 8 * 16);
  EXPECT_EQ(bytes.substr(0, 8), "omd-rply");
  EXPECT_EQ(ReadAt<uint32_t>(bytes, 8), 1u);    // format version
  EXPECT_EQ(ReadAt<uint32_t>(bytes, 12), 16u);  // slot bytes
  EXPECT_EQ(ReadAt<uint64_t>(bytes, 16), 8u);   // slot count
  EXPECT_EQ(ReadAt<uint64_t>(bytes, 24), 2u);   // next slot
  EXPECT_EQ(bytes.substr(32, 16),
            std::string("\x0b\x7f\x5b\x1c\x1d\x2e\x4f\x3a\x8b\x9c\x0d\x1e\x2f\x3a\x4b\x5c",
                        16));                     // kBoot1
  EXPECT_EQ(ReadAt<uint32_t>(bytes, 48), 1u);     // clean
  EXPECT_EQ(ReadAt<uint32_t>(bytes, 52), 120u);   // retention seconds
  EXPECT_EQ(ReadAt<int64_t>(bytes, 56), absl::ToUnixMillis(clock_.Now()));  // synced at
  EXPECT_EQ(ReadAt<int64_t>(bytes, 64), 0);       // no floor
  EXPECT_EQ(bytes.substr(72, 4096 - 72), std::string(4096 - 72, '\0'));
  // Slot 0: the id folded to 64 bits, its expiry rounded up to a second, the sender.
  const std::string id = Id(7);
  EXPECT_EQ(ReadAt<uint64_t>(bytes, 4096),
            ReadAt<uint64_t>(id, 0) ^ ReadAt<uint64_t>(id, 8));
  EXPECT_EQ(ReadAt<uint32_t>(bytes, 4096 + 8), absl::ToUnixSeconds(kStart) + 121);
  const uint32_t node1 = ReadAt<uint32_t>(bytes, 4096 + 12);
  const uint32_t node2 = ReadAt<uint32_t>(bytes, 4096 + 16 + 12);
  EXPECT_NE(node1, 0u);
  EXPECT_NE(node1, node2);
  EXPECT_EQ(bytes.find_first_not_of('\0', 4096 + 2 * 16), std::string::npos);

  struct stat st;
  ASSERT_EQ(stat(journal_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(Exists(journal_path_ + ".new"));
}

TEST_F(JournalTest, SmallerCapacityKeepsTheNewestIdsBehindAFloor) {
  std::unique_ptr<ReplayGuard> guard = Create(8);
  ASSERT_NE(guard, nullptr);
  for (uint64_t id = 0; id < 6; ++id) {
    ASSERT_TRUE(Admit(*guard, id).ok());
    clock_.Advance(absl::Seconds(1));
  }
  guard.reset();
  guard = Create(4);
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(guard->held(), 4u);
  // Id 1, accepted at kStart + 1 s, was dropped: anything sent before 61 s is
  // refused.
  const absl::Time floor = kStart + absl::Seconds(61);
  EXPECT_EQ(guard->floor(), floor);
  EXPECT_THAT(guard->floor_reason(), HasSubstr("capacity 4"));
  EXPECT_EQ(guard->Admit(Id(1), "node1", floor - absl::Seconds(1), 1).ToString(),
            "UNAUTHENTICATED: sent before this node's replay guard was shrunk; resend");
  for (uint64_t id = 2; id < 6; ++id) {
    EXPECT_EQ(guard->Admit(Id(id), "node1", floor, 1).ToString(), kReplayed) << id;
  }
  guard.reset();
  // Growing loses nothing (and the floor stays while it matters).
  clock_.Advance(absl::Seconds(60));
  guard = Create(16);
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(guard->floor(), floor);
  EXPECT_EQ(guard->held(), 4u);
  for (uint64_t id = 2; id < 6; ++id) {
    EXPECT_EQ(Admit(*guard, id).ToString(), kReplayed) << id;
  }
  for (uint64_t id = 10; id < 22; ++id) EXPECT_TRUE(Admit(*guard, id).ok()) << id;
  EXPECT_EQ(Admit(*guard, 22).code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(JournalTest, LongerRetentionAppliesToReloadedIds) {
  std::unique_ptr<ReplayGuard> guard = Create();
  ASSERT_NE(guard, nullptr);
  ASSERT_TRUE(Admit(*guard, 1).ok());
  guard.reset();
  clock_.Advance(absl::Seconds(150));  // past the old retention of 120 s
  ReplayGuard::Options longer = Options();
  longer.retention = absl::Seconds(200);
  guard = ReplayGuardTestBase::Create(longer);
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(Admit(*guard, 1).ToString(), kReplayed);
  clock_.Advance(absl::Seconds(50));
  EXPECT_TRUE(Admit(*guard, 1).ok());
}

TEST_F(JournalTest, OneProcessAtATime) {
  std::unique_ptr<ReplayGuard> guard = Create();
  ASSERT_NE(guard, nullptr);
  EXPECT_EQ(ReplayGuard::Create(Options()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  guard.reset();
  EXPECT_TRUE(ReplayGuard::Create(Options()).ok());
}

TEST_F(JournalTest, MissingDirectoryIsAnError) {
  ReplayGuard::Options options = Options();
  options.journal_path = dir_ + "/missing/replay.journal";
  EXPECT_EQ(ReplayGuard::Create(options).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace omd::server

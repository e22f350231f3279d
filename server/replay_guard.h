// Remembers the request ids the gate has accepted, so that each authentic request
// is acted on once, across restarts of omd.
//
// Guarantees:
// - A 16-byte request id is accepted once within `retention` of its acceptance
//   (held for the retention rounded up to a whole second), whatever its sent_at. The daemon passes retention = 2 x clock_skew: Open refuses
//   an envelope with |now - sent_at| > clock_skew, so an envelope accepted at t has
//   sent_at <= t + skew and is refused by Open from t + 2 x skew on.
// - Bounded memory, and no live id is ever evicted: at most `capacity` ids are held.
//   Once half of them are, a sender is admitted only while it holds fewer than its
//   share, capacity / senders. A sender over its share then, or any sender when
//   the guard is full, is refused with RESOURCE_EXHAUSTED (retry later), so one
//   flooding member cannot make the others' requests fail, and a busy member of a
//   quiet cluster may use half the guard whatever the cluster's size.
// - With a journal file, accepted ids survive a restart of omd, including a crash or
//   kill -9: each id is stored into a MAP_SHARED ring file before Admit returns OK,
//   and the page cache outlives the process. Only a crash of the machine itself can
//   lose the stores made since the last Sync(); a journal that was not closed cleanly
//   on an earlier boot (or that is corrupt) therefore makes the new guard refuse
//   every envelope sent before a floor (see floor()), older than any id it may have
//   lost. The floor is kept in the journal while it matters, so a second crash does
//   not lift it.
// - One process per journal (flock); Create rewrites the journal beside itself and
//   renames it into place, so a crash during Create leaves the old one or the new.
//
// Every id has the same retention, so acceptance order is expiry order: the ring
// file is also the FIFO of expiries, and expired ids are dropped from its head as
// Admit goes, in amortised O(1). Lookups use a hash set of 64-bit digests of the ids
// (the first 8 bytes XOR the last 8): honest ids are CSPRNG output, so with n ids
// held a fresh id is refused as a replay with probability n / 2^64 (2^-44 at 2^20
// ids). Memory per held id: a 16-byte slot (page cache when journaled) and about
// 18 bytes of hash set at full capacity.
//
//   absl::StatusOr<std::unique_ptr<ReplayGuard>> guard = ReplayGuard::Create({
//       .retention = 2 * clock_skew,
//       .clock_skew = clock_skew,
//       .journal_path = "/srv/omd/var/replay.journal",
//   });
//   if (!guard.ok()) return guard.status();
//   if ((*guard)->floor()) OMD_LOG(WARNING, "%s", (*guard)->floor_reason());
//   ...
//   absl::Status fresh = (*guard)->Admit(opened.request_id, envelope.nodename(),
//                                        opened.sent_at, view->nodes.size());
//   ...
//   absl::Status synced = (*guard)->Sync();  // about once a second, from a
//                                            // housekeeping thread
#ifndef OMD_SERVER_REPLAY_GUARD_H_
#define OMD_SERVER_REPLAY_GUARD_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "sync/mutex.h"

namespace omd::server {

namespace replay_guard_internal {
struct JournalHeader;  // the journal's layout, in replay_guard.cc
struct JournalSlot;
}  // namespace replay_guard_internal

class ReplayGuard {
 public:
  static constexpr size_t kRequestIdBytes = 16;

  struct Options {
    absl::Duration retention = absl::Seconds(120);    // 2 x clock_skew
    absl::Duration clock_skew = absl::Seconds(60);    // for the floor
    // How often the daemon calls Sync(); for the floor, which counts on no more than
    // this passing between the end of one Sync() and the end of the next.
    absl::Duration sync_interval = absl::Seconds(1);
    size_t capacity = size_t{1} << 20;                // ids held at most
    std::string journal_path;                         // empty: memory only
    std::function<absl::Time()> clock = [] { return absl::Now(); };
    // Where this boot's id is read, to tell a restart of omd from a restart of the
    // machine. Tests point it at a file of their own.
    std::string boot_id_path = "/proc/sys/kernel/random/boot_id";
  };

  // Opens (or creates) the journal and reloads the ids it holds that have not
  // expired. A journal whose slot count differs from `capacity` is reloaded into one
  // of the new size, newest ids first; if they do not all fit, the floor is raised
  // above the ones dropped. A corrupt journal is moved to `<path>.corrupt`, with a
  // warning, and the guard starts empty behind a floor. Errors: INVALID_ARGUMENT for
  // bad options, FAILED_PRECONDITION if another process has the journal open, the
  // file system's errors otherwise (e.g. NOT_FOUND for a missing directory).
  static absl::StatusOr<std::unique_ptr<ReplayGuard>> Create(Options options);

  ReplayGuard(const ReplayGuard&) = delete;
  ReplayGuard& operator=(const ReplayGuard&) = delete;

  // Syncs and marks the journal clean, so that the next Create needs no floor.
  ~ReplayGuard();

  // OK the first time `request_id` (16 bytes) is seen within the retention.
  // UNAUTHENTICATED "replayed request" for a repeat; UNAUTHENTICATED for sent_at
  // below the floor; RESOURCE_EXHAUSTED when half the capacity is used and so is
  // `sender`'s share (capacity / senders, at least 1), or the whole capacity. INVALID_ARGUMENT if request_id is not
  // 16 bytes or senders is 0. `senders` is the number of cluster members.
  absl::Status Admit(absl::string_view request_id, absl::string_view sender,
                     absl::Time sent_at, size_t senders);

  // Writes the journal to disk (msync) and records the time in its header, the
  // base of the floor after a crash of the machine. Admit is not blocked meanwhile.
  // OK and nothing to do without a journal.
  absl::Status Sync();

  // Ids held.
  size_t held() const;

  // Set when the journal could not vouch for every id accepted before this start:
  // envelopes sent before it are refused. floor_reason() says why, for the log.
  std::optional<absl::Time> floor() const { return floor_; }
  const std::string& floor_reason() const { return floor_reason_; }

 private:
  using Header = replay_guard_internal::JournalHeader;
  using Slot = replay_guard_internal::JournalSlot;
  struct Reloaded;

  ReplayGuard(Options options, Reloaded reloaded);

  // Forgets the ids at the head of the ring that expired by `now_seconds`.
  void DropExpired(int64_t now_seconds) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const Options options_;
  const std::optional<absl::Time> floor_;
  const std::string floor_reason_;
  const std::string floor_refusal_;  // Admit's message below the floor

  // The mapping: a header page, then `capacity` slots. A MAP_SHARED mapping of the
  // journal, or anonymous memory without one.
  void* const mapping_;
  const size_t mapping_bytes_;
  const int journal_fd_;  // holds the journal's flock; -1 without a journal

  // Serializes Sync(), so that header updates follow the msync they record.
  sync::Mutex sync_mutex_;

  mutable sync::Mutex mutex_;
  Header* const header_ ABSL_PT_GUARDED_BY(mutex_);
  Slot* const slots_ ABSL_PT_GUARDED_BY(mutex_);
  // The held ids are the slots [head_, tail_) of the ring (all of them when the
  // ring is full), each with its digest in held_.
  absl::flat_hash_set<uint64_t> held_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<uint32_t, uint32_t> held_by_sender_ ABSL_GUARDED_BY(mutex_);
  size_t head_ ABSL_GUARDED_BY(mutex_);
  size_t tail_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::server

#endif  // OMD_SERVER_REPLAY_GUARD_H_

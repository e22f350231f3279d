// Which members a routine heartbeat round calls: every member, except one whose
// calls keep failing (down, or out of reach), which is called less and less
// often, until it is heard from again.
//
// A round to 999 absent members had gRPC make about 500 connection attempts a
// second, 10% of a core on an idle daemon. A member that starts again announces
// itself at once (Heartbeat's first round), and any message from it resets its
// schedule, so a member that comes back is called every round again at once;
// one that was only out of reach is found within `max_rounds_between_calls`.
//
//   HeartbeatSchedule schedule(HeartbeatSchedule::Options{});
//   if (schedule.Due(node, round, states.Get(node).last_seen)) { ...call... }
//   schedule.Record(node, round, acknowledged, states.Get(node).last_seen);
#ifndef OMD_CLUSTER_HEARTBEAT_SCHEDULE_H_
#define OMD_CLUSTER_HEARTBEAT_SCHEDULE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sync/mutex.h"

namespace omd::cluster {

class HeartbeatSchedule {
 public:
  struct Options {
    // Failed calls in a row after which a member is skipped: 3 rounds of 2 s,
    // about the 7 s after which it is no longer "up" anyway.
    int failures_before_backoff = 3;
    // Then it is called every 2, 4, 8... rounds, at most this many apart (30 s).
    int max_rounds_between_calls = 15;
  };

  explicit HeartbeatSchedule(Options options) : options_(options) {}

  // Whether round `round` calls `member`. `last_seen` is when the member was
  // last heard from (NodeStates): a change since its last failure means it
  // spoke, and makes it due at once. Thread-safe.
  bool Due(absl::string_view member, int64_t round, absl::Time last_seen);

  // The outcome of round `round`'s call to `member`; `last_seen` as for Due,
  // read after the call. Returns whether the member now skips rounds (its
  // channel is then better let go: Peers::Disconnect). Thread-safe (a call's
  // completion runs on gRPC's thread).
  bool Record(absl::string_view member, int64_t round, bool acknowledged, absl::Time last_seen);

  // Forgets the members not in `members` (they left the cluster).
  void Retain(const std::vector<std::string>& members);

 private:
  struct Failing {
    int failures = 0;
    int64_t next_round = 0;
    absl::Time last_seen;  // as of the last failure
  };

  const Options options_;
  sync::Mutex mutex_;
  absl::flat_hash_map<std::string, Failing> failing_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::cluster

#endif  // OMD_CLUSTER_HEARTBEAT_SCHEDULE_H_

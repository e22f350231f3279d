// This node's part of the cluster-wide lock that serializes changes of
// cluster.nodes (cluster/membership.h). One node holds it at a time, under a
// random token of its choosing, for a lease (capped); the holder releases it with
// that token, and a lease that runs out frees it by itself, on a monotonic clock
// (a wall-clock step neither stretches nor ends it), so a holder that died or
// was cut off cannot block the cluster.
//
//   ClusterLock lock(ClusterLock::Options{});
//   const std::string token = ClusterLock::NewToken();
//   absl::StatusOr<ClusterLock::Grant> grant =
//       lock.Acquire("node2", token, absl::Seconds(10));
//   if (grant.ok() && !grant->granted) ... grant->held_by ...
//   bool mine = lock.IsHeldBy("node2", token);
//   absl::Status released = lock.Release("node2", token);
//
// Thread-safe.
#ifndef OMD_CLUSTER_CLUSTER_LOCK_H_
#define OMD_CLUSTER_CLUSTER_LOCK_H_

#include <cstddef>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sync/mutex.h"

namespace omd::cluster {

class ClusterLock {
 public:
  // A token is this many random bytes.
  static constexpr size_t kTokenBytes = 16;

  struct Options {
    // The longest lease granted: a change of the membership takes seconds.
    absl::Duration max_lease = absl::Seconds(10);
    // A monotonic clock; tests pass their own.
    std::function<absl::Time()> clock;  // empty: std::chrono::steady_clock
  };

  struct Grant {
    bool granted = false;
    std::string held_by;  // not granted: the node that holds the lock
    absl::Duration lease;  // granted: how long it holds without a renewal
  };

  explicit ClusterLock(Options options);

  ClusterLock(const ClusterLock&) = delete;
  ClusterLock& operator=(const ClusterLock&) = delete;

  // kTokenBytes fresh random bytes.
  static std::string NewToken();

  // Grants the lock to `holder` under `token` for `lease` (zero or more than the
  // maximum: the maximum) if it is free or its lease ran out; renews it if
  // `holder` holds it already. A holder that asks with a new token takes over
  // from its own previous one: a node runs one change at a time, so the previous
  // one is over (its daemon restarted, say). Otherwise not granted, naming the
  // holder. INVALID_ARGUMENT for a token that is not kTokenBytes long.
  absl::StatusOr<Grant> Acquire(absl::string_view holder, absl::string_view token,
                                absl::Duration lease);

  // Frees the lock that `holder` holds under `token`. OK if nobody holds it (a
  // release may be retried, or come after the lease ran out);
  // FAILED_PRECONDITION, changing nothing, if another node holds it, or `holder`
  // under another token.
  absl::Status Release(absl::string_view holder, absl::string_view token);

  // Whether `holder` holds the lock under `token`, its lease still running.
  bool IsHeldBy(absl::string_view holder, absl::string_view token) const;

 private:
  absl::Time Now() const;
  bool HeldLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const Options options_;
  mutable sync::Mutex mutex_;
  std::string holder_ ABSL_GUARDED_BY(mutex_);  // empty: free
  std::string token_ ABSL_GUARDED_BY(mutex_);
  absl::Time expires_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::cluster

#endif  // OMD_CLUSTER_CLUSTER_LOCK_H_

// Remembers the request ids accepted within the send-time window, so that each
// authentic request is acted on once.
//
// Ids are kept in one bucket per second of send time. A replay carries the same
// authenticated send time as the original, so it is looked up in one bucket; buckets
// older than the window are dropped, since Open already refuses their messages. When
// more than `capacity` ids are held, the oldest bucket goes too and its second
// becomes a floor: anything sent before it is refused, which keeps the guarantee
// (never accept an id twice) at bounded memory.
//
//   ReplayGuard guard({.window = absl::Seconds(60)});
//   absl::Status admitted = guard.Admit(opened.request_id, opened.sent_at, absl::Now());
#ifndef OMD_CRYPTO_REPLAY_GUARD_H_
#define OMD_CRYPTO_REPLAY_GUARD_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sync/mutex.h"

namespace omd::crypto {

class ReplayGuard {
 public:
  struct Options {
    absl::Duration window = absl::Seconds(60);  // the envelope's clock skew
    size_t capacity = 1 << 20;                  // ids held at most
  };

  explicit ReplayGuard(Options options);

  // OK the first time an id is seen; UNAUTHENTICATED for a replay, or for a
  // message older than the floor that a full guard had to raise.
  absl::Status Admit(absl::string_view request_id, absl::Time sent_at, absl::Time now);

  size_t size() const;

 private:
  void DropExpired(int64_t now_second) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const Options options_;
  mutable sync::Mutex mutex_;
  std::map<int64_t, absl::flat_hash_set<std::string>> buckets_ ABSL_GUARDED_BY(mutex_);
  size_t size_ ABSL_GUARDED_BY(mutex_) = 0;
  int64_t floor_second_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::crypto

#endif  // OMD_CRYPTO_REPLAY_GUARD_H_

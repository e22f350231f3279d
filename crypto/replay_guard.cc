#include "crypto/replay_guard.h"

#include <limits>

namespace omd::crypto {

ReplayGuard::ReplayGuard(Options options)
    : options_(options), floor_second_(std::numeric_limits<int64_t>::min()) {}

void ReplayGuard::DropExpired(int64_t now_second) {
  // A message sent before now - window - 1 s is refused by Open anyway.
  const int64_t oldest_useful =
      now_second - absl::ToInt64Seconds(options_.window) - 1;
  while (!buckets_.empty() && buckets_.begin()->first < oldest_useful) {
    size_ -= buckets_.begin()->second.size();
    buckets_.erase(buckets_.begin());
  }
}

absl::Status ReplayGuard::Admit(absl::string_view request_id, absl::Time sent_at,
                                absl::Time now) {
  const int64_t second = absl::ToUnixSeconds(sent_at);
  sync::MutexLock lock(&mutex_);
  DropExpired(absl::ToUnixSeconds(now));
  if (second < floor_second_) {
    return absl::UnauthenticatedError(
        "request too old for the replay guard, which is full: resend it");
  }
  if (!buckets_[second].emplace(request_id).second) {
    return absl::UnauthenticatedError("replayed request");
  }
  ++size_;
  while (size_ > options_.capacity && buckets_.size() > 1) {
    floor_second_ = buckets_.begin()->first + 1;
    size_ -= buckets_.begin()->second.size();
    buckets_.erase(buckets_.begin());
  }
  return absl::OkStatus();
}

size_t ReplayGuard::size() const {
  sync::MutexLock lock(&mutex_);
  return size_;
}

}  // namespace omd::crypto

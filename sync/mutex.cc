#include "sync/mutex.h"

#include <chrono>

#include "absl/time/clock.h"

namespace omd::sync {

void Mutex::Unlock() {
  const bool someone_awaits = awaiting_ > 0;
  mutex_.unlock();
  if (someone_awaits) unlocked_.notify_all();
}

void Mutex::Await(absl::FunctionRef<bool()> condition) {
  AwaitWithTimeout(condition, absl::InfiniteDuration());
}

bool Mutex::AwaitWithTimeout(absl::FunctionRef<bool()> condition,
                             absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  // The caller holds mutex_; adopt it for the wait and hand it back locked.
  std::unique_lock<std::mutex> lock(mutex_, std::adopt_lock);
  ++awaiting_;
  bool satisfied = condition();
  while (!satisfied) {
    if (deadline == absl::InfiniteFuture()) {
      unlocked_.wait(lock);
    } else if (unlocked_.wait_until(lock, absl::ToChronoTime(deadline)) ==
               std::cv_status::timeout) {
      satisfied = condition();
      break;
    }
    satisfied = condition();
  }
  --awaiting_;
  lock.release();
  return satisfied;
}

}  // namespace omd::sync

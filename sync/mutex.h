// A mutex with absl::Mutex's annotations and Await, built on std::mutex.
//
// Why not absl::Mutex itself: Debian's Abseil is a shared library built without
// ThreadSanitizer, so TSan cannot see the order absl::Mutex creates, and
// `tools/test --config=tsan` would report every field it guards. std::mutex is
// pthread's, which TSan intercepts. The thread-safety annotations are absl's, so
// `bazel build --config=clang` checks ABSL_GUARDED_BY fields with -Wthread-safety.
//
//   mutable sync::Mutex mutex_;
//   int count_ ABSL_GUARDED_BY(mutex_);
//   ...
//   sync::MutexLock lock(&mutex_);
//   mutex_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return count_ > 0; });
#ifndef OMD_SYNC_MUTEX_H_
#define OMD_SYNC_MUTEX_H_

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/time/time.h"

namespace omd::sync {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mutex_.lock(); }
  // Wakes the threads in Await, which re-check their condition.
  void Unlock() ABSL_UNLOCK_FUNCTION();

  // Releases the mutex until `condition` holds (checked with it held).
  void Await(absl::FunctionRef<bool()> condition) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this);
  // The same, giving up after `timeout`; returns the condition's last value.
  bool AwaitWithTimeout(absl::FunctionRef<bool()> condition, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this);

 private:
  std::mutex mutex_;
  std::condition_variable unlocked_;
  int awaiting_ = 0;  // guarded by mutex_
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mutex) ABSL_EXCLUSIVE_LOCK_FUNCTION(mutex) : mutex_(mutex) {
    mutex_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mutex_->Unlock(); }

  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mutex_;
};

}  // namespace omd::sync

#endif  // OMD_SYNC_MUTEX_H_

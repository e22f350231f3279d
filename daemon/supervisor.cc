#include "daemon/supervisor.h"

#include <pthread.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "log/log.h"

namespace omd::daemon {

class Supervisor::Thread final : public StopSignal {
 public:
  Thread(std::string id, Body body, const Options* options)
      : id_(std::move(id)), body_(std::move(body)), options_(options) {}

  ~Thread() {
    if (worker_.joinable()) worker_.join();
  }

  const std::string& id() const { return id_; }

  bool WaitFor(absl::Duration timeout) const override {
    sync::MutexLock lock(&mutex_);
    return mutex_.AwaitWithTimeout(
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return stop_requested_; },
        timeout);
  }

  absl::Status Start() {
    sync::MutexLock control(&control_mutex_);
    {
      sync::MutexLock lock(&mutex_);
      if (state_ != State::kStopped) {
        return absl::FailedPreconditionError(
            absl::StrCat("thread ", id_, " is already running"));
      }
    }
    if (worker_.joinable()) worker_.join();  // a finished run
    {
      sync::MutexLock lock(&mutex_);
      stop_requested_ = false;
      state_ = State::kRunning;
    }
    worker_ = std::thread([this] { Run(); });
    pthread_setname_np(worker_.native_handle(),
                       absl::StrCat("omd-", id_).substr(0, 15).c_str());
    return absl::OkStatus();
  }

  absl::Status Stop() {
    sync::MutexLock control(&control_mutex_);
    {
      sync::MutexLock lock(&mutex_);
      if (state_ == State::kStopped) {
        return absl::FailedPreconditionError(
            absl::StrCat("thread ", id_, " is already stopped"));
      }
      stop_requested_ = true;
    }
    if (worker_.joinable()) worker_.join();
    return absl::OkStatus();
  }

  ThreadState Snapshot() const {
    sync::MutexLock lock(&mutex_);
    ThreadState snapshot;
    snapshot.id = id_;
    switch (state_) {
      case State::kRunning:
        snapshot.state = "running";
        break;
      case State::kRestarting:
        snapshot.state = "restarting";
        break;
      case State::kStopped:
        snapshot.state = "stopped";
        break;
    }
    snapshot.restarts = restarts_;
    snapshot.last_error = last_error_;
    return snapshot;
  }

 private:
  enum class State { kStopped, kRunning, kRestarting };

  absl::Status RunBodyOnce() {
    try {
      return body_(*this);
    } catch (const std::exception& exception) {
      return absl::InternalError(absl::StrCat("exception: ", exception.what()));
    } catch (...) {
      return absl::InternalError("exception of an unknown type");
    }
  }

  void Run() {
    absl::Duration backoff = options_->initial_backoff;
    while (true) {
      const absl::Time started = absl::Now();
      absl::Status exited = RunBodyOnce();
      sync::MutexLock lock(&mutex_);
      if (stop_requested_) {
        state_ = State::kStopped;
        return;
      }
      if (exited.ok())
        exited = absl::InternalError("returned without being asked to stop");
      if (absl::Now() - started >= options_->reset_after)
        backoff = options_->initial_backoff;
      last_error_ = std::string(exited.message());
      ++restarts_;
      state_ = State::kRestarting;
      OMD_LOG(WARNING, "thread %s exited: %s; restarting in %s", id_, last_error_,
              absl::FormatDuration(backoff));
      if (mutex_.AwaitWithTimeout(
              [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return stop_requested_; },
              backoff)) {
        state_ = State::kStopped;
        return;
      }
      backoff = std::min(2 * backoff, options_->max_backoff);
      state_ = State::kRunning;
    }
  }

  const std::string id_;
  const Body body_;
  const Options* const options_;
  // Serializes Start and Stop, which wait for the worker outside mutex_.
  sync::Mutex control_mutex_;
  std::thread worker_ ABSL_GUARDED_BY(control_mutex_);
  mutable sync::Mutex mutex_;
  State state_ ABSL_GUARDED_BY(mutex_) = State::kStopped;
  bool stop_requested_ ABSL_GUARDED_BY(mutex_) = false;
  uint32_t restarts_ ABSL_GUARDED_BY(mutex_) = 0;
  std::string last_error_ ABSL_GUARDED_BY(mutex_);
};

Supervisor::Supervisor(Options options) : options_(std::move(options)) {}

Supervisor::~Supervisor() { StopAll(); }

void Supervisor::Add(std::string id, Body body) {
  sync::MutexLock lock(&mutex_);
  threads_.push_back(std::make_unique<Thread>(std::move(id), std::move(body), &options_));
}

void Supervisor::StartAll() {
  sync::MutexLock lock(&mutex_);
  for (const std::unique_ptr<Thread>& thread : threads_) (void)thread->Start();
}

void Supervisor::StopAll() {
  sync::MutexLock lock(&mutex_);
  for (auto it = threads_.rbegin(); it != threads_.rend(); ++it) (void)(*it)->Stop();
}

absl::StatusOr<Supervisor::Thread*> Supervisor::Find(absl::string_view id) const {
  sync::MutexLock lock(&mutex_);
  std::vector<std::string> ids;
  for (const std::unique_ptr<Thread>& thread : threads_) {
    if (thread->id() == id) return thread.get();
    ids.push_back(thread->id());
  }
  std::sort(ids.begin(), ids.end());
  return absl::NotFoundError(absl::StrCat(
      "no thread \"", id, "\"; the threads are: ", absl::StrJoin(ids, ", ")));
}

absl::Status Supervisor::Start(absl::string_view id) {
  absl::StatusOr<Thread*> thread = Find(id);
  if (!thread.ok()) return thread.status();
  return (*thread)->Start();
}

absl::Status Supervisor::Stop(absl::string_view id) {
  absl::StatusOr<Thread*> thread = Find(id);
  if (!thread.ok()) return thread.status();
  return (*thread)->Stop();
}

std::vector<ThreadState> Supervisor::States() const {
  std::vector<ThreadState> states;
  {
    sync::MutexLock lock(&mutex_);
    for (const std::unique_ptr<Thread>& thread : threads_)
      states.push_back(thread->Snapshot());
  }
  std::sort(states.begin(), states.end(),
            [](const ThreadState& a, const ThreadState& b) { return a.id < b.id; });
  return states;
}

std::vector<std::string> Supervisor::Ids() const {
  std::vector<std::string> ids;
  for (const ThreadState& state : States()) ids.push_back(state.id);
  return ids;
}

}  // namespace omd::daemon

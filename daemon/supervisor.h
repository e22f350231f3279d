// The daemon's named threads: each runs a body that returns when asked to stop;
// a body that exits uncleanly (an error, an exception, or returning while nobody
// asked it to stop) is restarted after a backoff, and a thread stopped on purpose
// stays stopped until started again.
//
//   Supervisor supervisor;
//   supervisor.Add("listener", [&](const StopSignal& stop) -> absl::Status {
//     absl::Status bound = listener.StartAccepting();
//     if (!bound.ok()) return bound;   // restarted in 0.5 s, then 1 s, 2 s...
//     while (!stop.WaitFor(absl::Seconds(1))) listener.Check();
//     listener.StopAccepting();
//     return absl::OkStatus();
//   });
//   supervisor.StartAll();
//   supervisor.Stop("listener");      // NOT_FOUND for an unknown id
//   std::vector<ThreadState> states = supervisor.States();
//   supervisor.StopAll();
#ifndef OMD_DAEMON_SUPERVISOR_H_
#define OMD_DAEMON_SUPERVISOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sync/mutex.h"

namespace omd::daemon {

// What a thread's body waits on between rounds of work.
class StopSignal {
 public:
  // Waits up to `timeout`; true once the thread is asked to stop.
  virtual bool WaitFor(absl::Duration timeout) const = 0;
  bool stopping() const { return WaitFor(absl::ZeroDuration()); }

 protected:
  ~StopSignal() = default;
};

struct ThreadState {
  std::string id;
  std::string state;  // "running", "stopped", or "restarting" (failed, restart pending)
  uint32_t restarts = 0;
  std::string last_error;  // why it last exited uncleanly; empty: never did
};

class Supervisor {
 public:
  using Body = std::function<absl::Status(const StopSignal& stop)>;

  struct Options {
    // Delay before the first restart after an unclean exit, doubled at each
    // failure in a row up to max_backoff; a run that lasted reset_after resets it.
    absl::Duration initial_backoff = absl::Milliseconds(500);
    absl::Duration max_backoff = absl::Seconds(30);
    absl::Duration reset_after = absl::Seconds(30);
  };

  Supervisor() : Supervisor(Options()) {}
  explicit Supervisor(Options options);
  ~Supervisor();  // StopAll

  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Registers a thread, stopped. Ids are unique and short (the OS thread is
  // named "omd-<id>", truncated to 15 characters).
  void Add(std::string id, Body body);

  // Starts every registered thread.
  void StartAll();
  // Stops every thread, in the reverse order of Add, and waits for each.
  void StopAll();

  // NOT_FOUND (listing the known ids) for an unknown id; FAILED_PRECONDITION if
  // it is already running (Start) or already stopped (Stop). Stop waits for the
  // body to return.
  absl::Status Start(absl::string_view id);
  absl::Status Stop(absl::string_view id);

  std::vector<ThreadState> States() const;  // by id
  std::vector<std::string> Ids() const;     // by id

 private:
  class Thread;

  absl::StatusOr<Thread*> Find(absl::string_view id) const;

  const Options options_;
  mutable sync::Mutex mutex_;
  std::vector<std::unique_ptr<Thread>> threads_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::daemon

#endif  // OMD_DAEMON_SUPERVISOR_H_

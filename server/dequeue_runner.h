// Runs the action-dequeue command in the background whenever the daemon is
// told that actions were queued (the "empty packet").
//
// Triggers coalesce: there is at most one run at a time, and any number of
// Trigger() calls made while a run is in progress cause exactly one more run
// after it, which picks up everything queued meanwhile. Trigger() never blocks,
// so it is safe to call from an RPC handler.
//
//   omd::server::DequeueRunner::Options options;
//   options.argv = {"/usr/bin/om", "--root", root, "node", "dequeue", "actions"};
//   omd::server::DequeueRunner runner(std::move(options));
//   runner.Trigger();  // returns at once; the run happens on runner's thread
//   ...
//   runner.Stop();     // or let the destructor do it
#ifndef OMD_SERVER_DEQUEUE_RUNNER_H_
#define OMD_SERVER_DEQUEUE_RUNNER_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "process/subprocess.h"
#include "sync/mutex.h"

namespace omd::server {

class DequeueRunner {
 public:
  struct Options {
    std::vector<std::string> argv;  // run without a shell; see RunProcess
    absl::Duration timeout = absl::Minutes(10);  // per run
  };

  // Starts the background thread; nothing runs until Trigger().
  explicit DequeueRunner(Options options);
  // Stop().
  ~DequeueRunner();

  DequeueRunner(const DequeueRunner&) = delete;
  DequeueRunner& operator=(const DequeueRunner&) = delete;

  // Asks for a run: now if idle, else once after the current run.
  void Trigger();

  // Terminates a run in progress (its process group gets SIGTERM, then SIGKILL),
  // starts no other and joins the thread, so a daemon stops promptly. A run still
  // requested then is dropped with a warning; the queued actions stay on disk for
  // the next trigger. Triggers after Stop() are ignored with a warning.
  // Idempotent; any thread but the runner's own.
  void Stop();

  int64_t runs_started() const;
  int64_t runs_completed() const;

  // True once no run is in progress or requested; false after `timeout`.
  bool WaitForIdleForTesting(absl::Duration timeout);
  // True once at least `count` runs have started; false after `timeout`.
  bool WaitForRunsStartedForTesting(int64_t count, absl::Duration timeout);

 private:
  void RunLoop();
  void RunOnce();

  const Options options_;
  process::Cancellation stop_running_;  // cancelled by Stop()

  mutable sync::Mutex mu_;
  bool run_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t runs_started_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t runs_completed_ ABSL_GUARDED_BY(mu_) = 0;

  std::once_flag stop_once_;
  std::thread thread_;  // last: started once every other member exists
};

}  // namespace omd::server

#endif  // OMD_SERVER_DEQUEUE_RUNNER_H_

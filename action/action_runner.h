// Service actions that omd runs for a caller (the ServiceAction RPC): `om --root
// ROOT <svcname> <command...>` for the local instance, each on a thread of the
// runner, so that the gRPC handler that started it returns at once.
//
// Each action is one RunProcess (process/subprocess.h): an argument list, no
// shell, a process group of its own that its timeout (or Stop) ends, and its
// output capped per stream. Running actions are capped; finished ones are kept a
// while, for ListActions.
//
//   ActionRunner::Options options;
//   options.argv_prefix = {"/usr/bin/om", "--root", root};
//   ActionRunner runner(std::move(options));
//   ActionRunner::Request request;
//   request.svcname = "web";
//   request.command = {"start"};
//   absl::StatusOr<std::string> id = runner.Start(
//       request, [](const v1::ActionStatus& finished) { ... finished.exit_code() ... });
//   absl::StatusOr<std::vector<v1::ActionStatus>> kept = runner.List(*id);
//   ...
//   runner.Stop();  // daemon stop: every running action ends, its thread joined
#ifndef OMD_ACTION_ACTION_RUNNER_H_
#define OMD_ACTION_ACTION_RUNNER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "process/subprocess.h"
#include "proto/omd.pb.h"
#include "sync/mutex.h"

namespace omd::action {

// ActionStatus.state's values.
inline constexpr char kRunning[] = "running";
inline constexpr char kSucceeded[] = "succeeded";  // exit 0
inline constexpr char kFailed[] = "failed";        // another exit, a signal, or never ran
inline constexpr char kTimedOut[] = "timed out";   // killed with its group at its timeout
inline constexpr char kCancelled[] = "cancelled";  // killed with its group by Stop()

// Bounds of one action's command: what follows `om <svcname>`.
inline constexpr size_t kMaxCommandArguments = 64;
inline constexpr size_t kMaxArgumentBytes = 4096;

// What is left of a sync action's caller deadline for its reply to get out: the
// action is killed this long before the deadline.
inline constexpr absl::Duration kReplyMargin = absl::Milliseconds(250);

class ActionRunner {
 public:
  struct Options {
    // The program and its first arguments; the action runs
    // argv_prefix + {svcname} + command. The daemon's: {om, "--root", root}.
    std::vector<std::string> argv_prefix;
    // Refuses a command before anything runs (its error is Start's, as is); may
    // be empty. The daemon's keeps om's global flags out of the command.
    std::function<absl::Status(absl::string_view svcname,
                               absl::Span<const std::string> command)>
        check_command;
    int max_running = 8;  // actions running at once; past it, RESOURCE_EXHAUSTED
    absl::Duration default_timeout = absl::Minutes(5);  // a request's 0
    absl::Duration max_timeout = absl::Hours(1);        // a longer request's is cut to it
    // Kept per stream (the rest is read and dropped), so that a sync reply fits
    // gRPC's default 4 MiB message.
    size_t max_output_bytes = 256 << 10;
    // Finished actions are kept this long, and at most this many (the one that
    // finished first goes first).
    absl::Duration keep_finished_for = absl::Minutes(10);
    int keep_finished = 100;
    // Start and finish times, and the retention; empty: absl::Now.
    std::function<absl::Time()> clock;
  };

  struct Request {
    std::string svcname;
    std::vector<std::string> command;
    bool sync = false;
    // Zero: Options::default_timeout; capped at Options::max_timeout.
    absl::Duration timeout = absl::ZeroDuration();
    // A sync action is killed kReplyMargin before its caller's deadline, when
    // that comes before its timeout (the reply then says timed out).
    absl::Time deadline = absl::InfiniteFuture();
    std::string requested_by;  // the caller's node name
  };

  // Called once, on the action's thread, with the finished action. It must not
  // call Start() or Stop().
  using OnFinished = std::function<void(const v1::ActionStatus& finished)>;

  explicit ActionRunner(Options options);
  // Stop().
  ~ActionRunner();

  ActionRunner(const ActionRunner&) = delete;
  ActionRunner& operator=(const ActionRunner&) = delete;

  // Starts the action on a thread of its own and returns its id (32 hex digits)
  // at once; `on_finished` (may be empty) gets its result. Nothing runs, and
  // nothing is kept, on an error: INVALID_ARGUMENT for a bad service name or
  // command (or check_command's own error); RESOURCE_EXHAUSTED past max_running;
  // DEADLINE_EXCEEDED for a sync action whose caller's deadline leaves no time;
  // UNAVAILABLE after Stop().
  absl::StatusOr<std::string> Start(Request request, OnFinished on_finished = nullptr);

  // Every action kept, running and finished, by start time; or (a non-empty id)
  // the one with that id: NOT_FOUND if none (unknown, or no longer kept). A
  // running action's pid is 0: RunProcess tells it when the process is done.
  absl::StatusOr<std::vector<v1::ActionStatus>> List(absl::string_view session_id) const;

  // Actions running now.
  int running() const;

  // Ends every running action (its process group gets SIGTERM, then SIGKILL 2 s
  // later; each on_finished is called, state "cancelled"), refuses new ones and
  // joins every thread. Idempotent; any thread but an action's own.
  void Stop();

  // True once no action runs; false after `timeout`.
  bool WaitForIdleForTesting(absl::Duration timeout) const;

 private:
  struct Action {
    v1::ActionStatus status;
    absl::Time finished_at = absl::InfiniteFuture();
    // While running: Stop() cancels it.
    std::unique_ptr<process::Cancellation> cancellation;
  };

  absl::Time Now() const;
  absl::Status Validate(const Request& request) const;
  // Runs `action` (the process) on its thread, then records and reports it.
  void Run(Action* action, process::ProcessOptions process, OnFinished on_finished);
  // Drops the finished actions past their retention.
  void Prune(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the threads of finished actions out, to be joined outside mu_.
  std::vector<std::thread> TakeFinishedThreads() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;

  mutable sync::Mutex mu_;
  // By start time. unique_ptr: an action's thread keeps a pointer to its own.
  std::vector<std::unique_ptr<Action>> actions_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Running actions' threads, by id; an action's thread moves itself to
  // finished_threads_ as it ends, for the next Start or Stop to join.
  std::vector<std::pair<std::string, std::thread>> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> finished_threads_ ABSL_GUARDED_BY(mu_);
  std::once_flag stop_once_;
};

}  // namespace omd::action

#endif  // OMD_ACTION_ACTION_RUNNER_H_

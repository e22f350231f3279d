// Runs a program to completion without a shell and collects what it printed.
//
// RunProcess is meant for a multithreaded daemon: it spawns with posix_spawnp
// (no fork of a process full of threads and locks), gives the child /dev/null as
// standard input, reads standard output and standard error through close-on-exec
// pipes so that concurrent calls never leak each other's pipes, and puts the
// child in a process group of its own so that a timeout ends everything it
// started. Any number of threads may call it at once.
//
//   omd::process::ProcessOptions options;
//   options.argv = {"om", "node", "status"};
//   options.timeout = absl::Seconds(30);
//   absl::StatusOr<omd::process::ProcessResult> result = omd::process::RunProcess(options);
//   if (!result.ok()) return result.status();      // could not start it at all
//   if (result->exit_code != 0) { ... result->stderr_text ... }
//
//   // An editor, on the terminal: om node edit config.
//   absl::StatusOr<omd::process::ProcessResult> edited =
//       omd::process::RunAttached({"vi", "/srv/omd/etc/.node.conf.edit-1a2b3c"});
#ifndef OMD_PROCESS_SUBPROCESS_H_
#define OMD_PROCESS_SUBPROCESS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace omd::process {

// Lets another thread, or a signal handler, end RunProcess calls early: their
// child's process group is terminated as on a timeout. Once cancelled, it stays
// cancelled, and RunProcess refuses to start anything with it (CANCELLED).
class Cancellation {
 public:
  Cancellation();
  ~Cancellation();
  Cancellation(const Cancellation&) = delete;
  Cancellation& operator=(const Cancellation&) = delete;

  // Async-signal-safe: a write(2) to an eventfd.
  void Cancel();
  bool cancelled() const;
  // Readable once cancelled; RunProcess polls it with the child's output.
  int fd() const { return fd_; }

 private:
  const int fd_;
};

struct ProcessOptions {
  // argv[0] is a path, or a name looked up in PATH. Passed to the program as is:
  // nothing is interpreted by a shell.
  std::vector<std::string> argv;
  // After this, the child's process group gets SIGTERM, then SIGKILL 2 s later.
  absl::Duration timeout = absl::InfiniteDuration();
  // Kept per stream; the rest is read and dropped so the child never blocks.
  size_t max_output_bytes = 1 << 20;
  // Empty: inherit the caller's. A relative argv[0] containing '/' is resolved
  // from here.
  std::string working_directory;
  // If set (and outliving the call), cancelling it ends the run early.
  const Cancellation* cancellation = nullptr;
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int term_signal = 0;  // the signal that ended the child, if one did
  bool timed_out = false;
  bool cancelled = false;  // ended early by ProcessOptions::cancellation
  std::string stdout_text;
  std::string stderr_text;
  bool output_truncated = false;  // either stream went over max_output_bytes
  int64_t pid = 0;
};

// Runs options.argv and waits until it has exited and both of its output
// streams have closed (or, after a timeout, until its group has been killed).
// A program that ran is an OK result whatever its exit code. Errors:
// INVALID_ARGUMENT for an empty argv, an argument containing a NUL or a working
// directory that cannot be entered; NOT_FOUND when the program does not exist;
// INTERNAL for anything else the system refused.
absl::StatusOr<ProcessResult> RunProcess(const ProcessOptions& options);

// Runs `argv` attached to this process's terminal, for an interactive program
// such as an editor: it shares this process's standard input, output and error
// and its process group (so the terminal's Ctrl-C reaches it), and is waited
// for, however long it takes; only exit_code, term_signal and pid are set.
// Meanwhile this process ignores SIGINT and SIGQUIT, as the C library's shell
// runner does, so that they end the child only. Not for the daemon (no timeout,
// no capture). Errors as RunProcess's.
absl::StatusOr<ProcessResult> RunAttached(const std::vector<std::string>& argv);

// The absolute path of the running program (/proc/self/exe), or "" if unknown.
std::string CurrentExecutablePath();

}  // namespace omd::process

#endif  // OMD_PROCESS_SUBPROCESS_H_

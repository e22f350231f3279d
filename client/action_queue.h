// The logic of `om node dequeue actions`: runs the om commands queued as files.
//
// A queued action is a file in ROOT/var/actions/queue/ holding a JSON list of
// strings, the arguments of one om command. DequeueActions runs the queued
// files one at a time in file-name order, each as
// `<om_argv_prefix...> <arguments...>` without a shell, once `check_action`
// has accepted the arguments. A file is first claimed by renaming it into
// running/, so two dequeuers never run the same action; afterwards it moves to
// done/ (exit code 0) or failed/ (anything else, including a file that is not a
// valid action and an action the check refused, neither of which is run), with
// `<name>.out` beside it recording the exit code or error and the command's
// output.
//
//   omd::client::DequeueOptions options;
//   options.root = "/var/lib/omd";
//   options.om_argv_prefix = {"/usr/bin/om", "--root", options.root};
//   options.check_action = [](absl::Span<const std::string> arguments) {
//     return omd::client::CheckQueuedAction(arguments);  // client/commands.h
//   };
//   absl::StatusOr<omd::DequeueSummary> summary = omd::client::DequeueActions(options);
//   if (!summary.ok()) return summary.status();  // the queue itself is unusable
//   if (summary->failed > 0) { ... summary->failed_names ... }
#ifndef OMD_CLIENT_ACTION_QUEUE_H_
#define OMD_CLIENT_ACTION_QUEUE_H_

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "process/subprocess.h"

namespace omd::client {

// Limits on one queued file; a file over them goes to failed/ unrun.
inline constexpr size_t kMaxActionFileBytes = 64 * 1024;
inline constexpr size_t kMaxActionArguments = 256;

struct DequeueOptions {
  std::string root;                         // the daemon's root directory
  std::vector<std::string> om_argv_prefix;  // e.g. {"/path/to/om", "--root", root}
  // Decides, before an action runs, whether its arguments may follow
  // om_argv_prefix; an error sends the action to failed/ unrun, with the error
  // in its .out (and not in the log, as it may quote an argument). Required: om
  // passes CheckQueuedAction (client/commands.h), which keeps om's global flags
  // (--root, --server, --flagfile...) out of queued actions.
  std::function<absl::Status(absl::Span<const std::string> arguments)> check_action;
  absl::Duration action_timeout = absl::Minutes(10);
  // If set, cancelling it terminates the running action (recorded as failed) and
  // leaves the actions not yet started in the queue.
  const process::Cancellation* cancellation = nullptr;
};

struct DequeueSummary {
  int done = 0;
  int failed = 0;
  std::vector<std::string> failed_names;  // queue file names, in run order
};

// Runs every action queued when it is called (a file queued meanwhile may or
// may not be picked up; the next call gets it). A file taken by another
// dequeuer between listing and claiming is skipped and counted nowhere.
// Errors: INVALID_ARGUMENT for an empty root or om_argv_prefix, or no
// check_action; INTERNAL when
// the queue directories cannot be created or listed. A failing action is not
// an error: it is counted in the summary.
absl::StatusOr<DequeueSummary> DequeueActions(const DequeueOptions& options);

// At daemon start: moves every action left in running/ by a dequeuer that died
// (a crash, kill -9, a reboot) to failed/, with a `<name>.out` saying so. Not
// back to the queue: it may have run in part, and running it again could do
// twice what it did. Skipped, returning 0, while a dequeuer runs (each holds
// ROOT/var/actions/.dequeue.lock shared while it runs). Returns how many moved.
absl::StatusOr<int> RecoverInterruptedActions(const std::string& root);

}  // namespace omd::client

#endif  // OMD_CLIENT_ACTION_QUEUE_H_

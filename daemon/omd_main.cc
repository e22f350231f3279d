// omd: the cluster agent daemon. Runs in the foreground until SIGINT or SIGTERM.
#include <signal.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "log/log.h"
#include "daemon/daemon.h"

ABSL_FLAG(std::string, root, "./var/omd",
          "Root directory: ROOT/etc/node.conf (created with a random secret if "
          "missing), ROOT/var, ROOT/var/log.");
ABSL_FLAG(std::string, dequeue_command, "",
          "Command the empty packet runs, as space-separated arguments (no shell). "
          "Default: the om binary beside omd, with `--root ROOT node dequeue actions`.");
ABSL_FLAG(absl::Duration, dequeue_timeout, absl::Minutes(10),
          "Longest a dequeue run may take before it is killed.");
ABSL_FLAG(std::string, action_command, "",
          "What a service action runs before `<svcname> <command...>`, as "
          "space-separated arguments (no shell). Default: the om binary beside omd, "
          "with `--root ROOT`.");
ABSL_FLAG(int, max_actions, 8, "Service actions running at once; past it, refused.");
ABSL_FLAG(absl::Duration, action_timeout, absl::Minutes(5),
          "Timeout of a service action that asks for none.");
ABSL_FLAG(int64_t, max_request_bytes, 64 << 10,
          "Largest request accepted; larger ones get RESOURCE_EXHAUSTED.");
ABSL_FLAG(absl::Duration, monitor_interval, absl::Seconds(2),
          "Between two rounds of the service monitor's checks (100ms to 1h).");

namespace {

int Run() {
  // Signals are taken synchronously by this thread; every thread gRPC starts
  // inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  omd::daemon::Daemon::Options options;
  options.root = absl::GetFlag(FLAGS_root);
  options.dequeue_command = absl::StrSplit(absl::GetFlag(FLAGS_dequeue_command), ' ',
                                           absl::SkipEmpty());
  options.dequeue_timeout = absl::GetFlag(FLAGS_dequeue_timeout);
  options.action_command = absl::StrSplit(absl::GetFlag(FLAGS_action_command), ' ',
                                          absl::SkipEmpty());
  options.max_running_actions = absl::GetFlag(FLAGS_max_actions);
  options.action_timeout = absl::GetFlag(FLAGS_action_timeout);
  if (options.max_running_actions < 1 || options.max_running_actions > 1000) {
    OMD_LOG(ERROR, "--max_actions must be between 1 and 1000");
    return EXIT_FAILURE;
  }
  if (options.action_timeout <= absl::ZeroDuration() ||
      options.action_timeout > absl::Hours(1)) {
    OMD_LOG(ERROR, "--action_timeout must be positive, and at most 1h");
    return EXIT_FAILURE;
  }
  const int64_t max_request_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  if (max_request_bytes < 1024 || max_request_bytes > (int64_t{1} << 30)) {
    OMD_LOG(ERROR, "--max_request_bytes must be between 1024 and 1073741824");
    return EXIT_FAILURE;
  }
  options.max_request_bytes = static_cast<size_t>(max_request_bytes);
  options.monitor_interval = absl::GetFlag(FLAGS_monitor_interval);
  if (options.monitor_interval < absl::Milliseconds(100) ||
      options.monitor_interval > absl::Hours(1)) {
    OMD_LOG(ERROR, "--monitor_interval must be between 100ms and 1h");
    return EXIT_FAILURE;
  }

  absl::StatusOr<std::unique_ptr<omd::daemon::Daemon>> daemon =
      omd::daemon::Daemon::Start(options);
  if (!daemon.ok()) {
    OMD_LOG(ERROR, "omd cannot start: %s", daemon.status().ToString());
    return EXIT_FAILURE;
  }
  // A signal is `daemon stop`; so is the DaemonStop request, or DaemonShutdown.
  const timespec poll_interval = {0, 100 * 1000 * 1000};
  while (true) {
    const int signal_number = sigtimedwait(&stop_signals, nullptr, &poll_interval);
    if (signal_number > 0) {
      OMD_LOG(INFO, "signal %d: stopping", signal_number);
      (*daemon)->RequestStop(omd::daemon::StopKind::kStop);
    }
    if (std::optional<omd::daemon::StopKind> kind =
            (*daemon)->WaitForStopRequest(absl::ZeroDuration())) {
      (*daemon)->Stop(*kind);
      return EXIT_SUCCESS;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "The omd cluster agent daemon.\n\nUsage: omd [--root DIR] [flags]\n\n"
      "Serves the omd.v1.Agent gRPC API on node.conf's [listener] addr:port and on the "
      "local control socket ROOT/var/omd.sock, plus grpc.health.v1 and server "
      "reflection. Applies changes of node.conf within a second. Stops on SIGINT or "
      "SIGTERM (as `om daemon stop` does).");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    OMD_LOG(ERROR, "unexpected argument %s (see omd --help)", positional[1]);
    return EXIT_FAILURE;
  }
  // Debian's Abseil checks every absl::Mutex (gRPC's locks) for lock-order cycles,
  // as debug builds do: 3% of the daemon's CPU under load, in a graph of every
  // lock ever held. The sanitizer builds (TSan) find lock-order problems instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return Run();
}

#include "server/dequeue_runner.h"

#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "log/log.h"
#include "process/subprocess.h"

namespace omd::server {
namespace {

// Only the first line of stderr is logged; no need to keep more.
constexpr size_t kMaxCapturedOutputBytes = 64 * 1024;
constexpr size_t kMaxLoggedStderrBytes = 300;

absl::string_view FirstLine(absl::string_view text) {
  text = text.substr(0, text.find('\n'));
  return text.substr(0, kMaxLoggedStderrBytes);
}

}  // namespace

DequeueRunner::DequeueRunner(Options options)
    : options_(std::move(options)), thread_([this] { RunLoop(); }) {}

DequeueRunner::~DequeueRunner() { Stop(); }

void DequeueRunner::Trigger() {
  bool stopped;
  {
    sync::MutexLock lock(&mu_);
    stopped = stopping_;
    if (!stopped) {
      run_requested_ = true;  // the runner's Await sees it at unlock
    }
  }
  if (stopped) {
    OMD_LOG(WARNING, "dequeue triggered after stop; queued actions stay queued");
  }
}

void DequeueRunner::Stop() {
  std::call_once(stop_once_, [this] {
    {
      sync::MutexLock lock(&mu_);
      stopping_ = true;
    }
    stop_running_.Cancel();
    thread_.join();
  });
}

int64_t DequeueRunner::runs_started() const {
  sync::MutexLock lock(&mu_);
  return runs_started_;
}

int64_t DequeueRunner::runs_completed() const {
  sync::MutexLock lock(&mu_);
  return runs_completed_;
}

bool DequeueRunner::WaitForIdleForTesting(absl::Duration timeout) {
  sync::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !running_ && !run_requested_;
  };
  return mu_.AwaitWithTimeout(idle, timeout);
}

bool DequeueRunner::WaitForRunsStartedForTesting(int64_t count,
                                                 absl::Duration timeout) {
  sync::MutexLock lock(&mu_);
  auto started = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return runs_started_ >= count;
  };
  return mu_.AwaitWithTimeout(started, timeout);
}

void DequeueRunner::RunLoop() {
  while (true) {
    {
      sync::MutexLock lock(&mu_);
      mu_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return run_requested_ || stopping_;
      });
      if (stopping_) {
        if (run_requested_) {
          OMD_LOG(WARNING,
                  "dequeue runner stopped with a run requested; queued actions "
                  "stay queued until the next trigger");
        }
        return;
      }
      // Cleared before the run starts: a trigger from here on may concern
      // something this run has already missed, so it earns a run of its own.
      run_requested_ = false;
      running_ = true;
      ++runs_started_;
    }
    RunOnce();
    {
      sync::MutexLock lock(&mu_);
      running_ = false;
      ++runs_completed_;
    }
  }
}

void DequeueRunner::RunOnce() {
  process::ProcessOptions process;
  process.argv = options_.argv;
  process.cancellation = &stop_running_;
  process.timeout = options_.timeout;
  process.max_output_bytes = kMaxCapturedOutputBytes;
  absl::StatusOr<process::ProcessResult> result = process::RunProcess(process);
  if (!result.ok()) {
    OMD_LOG(WARNING, "dequeue command could not run: %s",
            result.status().ToString());
    return;
  }
  if (result->cancelled) {
    OMD_LOG(INFO, "dequeue run terminated: the daemon is stopping");
  } else if (result->timed_out) {
    OMD_LOG(WARNING, "dequeue command timed out after %s; stderr: %s",
            absl::FormatDuration(options_.timeout),
            FirstLine(result->stderr_text));
  } else if (result->term_signal != 0) {
    OMD_LOG(WARNING, "dequeue command killed by signal %d; stderr: %s",
            result->term_signal, FirstLine(result->stderr_text));
  } else if (result->exit_code != 0) {
    OMD_LOG(WARNING, "dequeue command failed with exit code %d; stderr: %s",
            result->exit_code, FirstLine(result->stderr_text));
  }
}

}  // namespace omd::server

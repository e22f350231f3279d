#include "action/action_runner.h"

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "config/quote.h"
#include "crypto/aead.h"
#include "log/log.h"
#include "service/service_config.h"

namespace omd::action {
namespace {

constexpr size_t kIdBytes = 16;


}  // namespace


ActionRunner::ActionRunner(Options options) : options_(std::move(options)) {}

ActionRunner::~ActionRunner() { Stop(); }

absl::Time ActionRunner::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

absl::Status ActionRunner::Validate(const Request& request) const {
  absl::Status name = service::ValidateServiceName(request.svcname);
  if (!name.ok()) return name;
  if (request.command.empty()) {
    return absl::InvalidArgumentError(
        "no command given: an action is what follows `om <svcname>`, e.g. start");
  }
  if (request.command.size() > kMaxCommandArguments) {
    return absl::InvalidArgumentError(
        absl::StrCat("the command has ", request.command.size(),
                     " arguments: at most ", kMaxCommandArguments));
  }
  for (size_t i = 0; i < request.command.size(); ++i) {
    const std::string& argument = request.command[i];
    if (argument.size() > kMaxArgumentBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("argument ", i + 1, " of the command is ", argument.size(),
                       " bytes long: at most ", kMaxArgumentBytes));
    }
    if (argument.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("argument ", i + 1, " of the command contains a NUL character"));
    }
  }
  if (options_.check_command) {
    return options_.check_command(request.svcname, request.command);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ActionRunner::Start(Request request, OnFinished on_finished) {
  absl::Status valid = Validate(request);
  if (!valid.ok()) return valid;

  absl::Duration timeout =
      request.timeout > absl::ZeroDuration() ? request.timeout : options_.default_timeout;
  timeout = std::min(timeout, options_.max_timeout);
  if (request.sync && request.deadline != absl::InfiniteFuture()) {
    // The reply must still get out before the caller gives up: past that, the
    // action's output would be lost anyway.
    const absl::Duration left = request.deadline - absl::Now() - kReplyMargin;
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          "the call's deadline leaves no time to run the action");
    }
    timeout = std::min(timeout, left);
  }

  process::ProcessOptions process;
  process.argv = options_.argv_prefix;
  process.argv.push_back(request.svcname);
  process.argv.insert(process.argv.end(), request.command.begin(), request.command.end());
  process.timeout = timeout;
  // One byte more than kept: a stream longer than the cap is then told apart
  // from one exactly as long (RunProcess has one flag for both streams).
  process.max_output_bytes = options_.max_output_bytes + 1;

  std::vector<std::thread> finished;
  std::string id;
  {
    sync::MutexLock lock(&mu_);
    finished = TakeFinishedThreads();
    if (stopping_) {
      valid = absl::UnavailableError("the daemon is stopping: no new actions");
    } else if (running_ >= options_.max_running) {
      valid = absl::ResourceExhaustedError(absl::StrCat(
          running_, " actions are running, the most this daemon runs at once; "
          "retry when one has finished"));
    } else {
      const absl::Time now = Now();
      Prune(now);
      id = absl::BytesToHexString(crypto::RandomBytes(kIdBytes));
      auto action = std::make_unique<Action>();
      v1::ActionStatus& status = action->status;
      status.set_session_id(id);
      status.set_svcname(request.svcname);
      for (const std::string& argument : request.command) status.add_command(argument);
      status.set_requested_by(request.requested_by);
      status.set_sync(request.sync);
      status.set_state(kRunning);
      status.set_started_unix_ms(absl::ToUnixMillis(now));
      action->cancellation = std::make_unique<process::Cancellation>();
      process.cancellation = action->cancellation.get();
      Action* const running = action.get();
      actions_.push_back(std::move(action));
      ++running_;
      // Under mu_: the thread records itself as finished under mu_ too, so its
      // entry is in threads_ by then.
      threads_.emplace_back(id, std::thread([this, running, process = std::move(process),
                                             on_finished = std::move(on_finished)]() mutable {
                              Run(running, std::move(process), std::move(on_finished));
                            }));
    }
  }
  for (std::thread& thread : finished) thread.join();
  if (!valid.ok()) return valid;
  return id;
}

void ActionRunner::Run(Action* action, process::ProcessOptions process,
                       OnFinished on_finished) {
  absl::StatusOr<process::ProcessResult> result = process::RunProcess(process);
  v1::ActionStatus finished;
  {
    sync::MutexLock lock(&mu_);
    v1::ActionStatus& status = action->status;
    if (!result.ok() && absl::IsCancelled(result.status())) {
      // Stop() came before the process could start.
      status.set_state(kCancelled);
      status.set_exit_code(-1);
      status.set_stderr("the daemon stopped before the action could run");
    } else if (!result.ok()) {
      // Never ran (e.g. NOT_FOUND: no such program): a failure, told in stderr.
      status.set_state(kFailed);
      status.set_exit_code(-1);
      status.set_stderr(absl::StrCat("the action could not run: ", result.status().ToString()));
    } else {
      status.set_pid(result->pid);
      status.set_exit_code(result->exit_code);
      const size_t cap = options_.max_output_bytes;
      std::string& out = result->stdout_text;
      std::string& err = result->stderr_text;
      status.set_stdout_truncated(out.size() > cap);
      status.set_stderr_truncated(err.size() > cap);
      if (out.size() > cap) out.resize(cap);
      if (err.size() > cap) err.resize(cap);
      status.set_stdout(std::move(out));
      status.set_stderr(std::move(err));
      if (result->cancelled) {
        status.set_state(kCancelled);
      } else if (result->timed_out) {
        status.set_state(kTimedOut);
      } else if (result->exit_code == 0 && result->term_signal == 0) {
        status.set_state(kSucceeded);
      } else {
        status.set_state(kFailed);
      }
    }
    action->finished_at = Now();
    status.set_finished_unix_ms(std::max<int64_t>(absl::ToUnixMillis(action->finished_at),
                                                  status.started_unix_ms()));
    // RunProcess is done with it.
    action->cancellation.reset();
    finished = status;
    --running_;
    auto own = std::find_if(threads_.begin(), threads_.end(), [&](const auto& entry) {
      return entry.first == finished.session_id();
    });
    if (own != threads_.end()) {  // always: Start put it there under mu_
      finished_threads_.push_back(std::move(own->second));
      threads_.erase(own);
    }
    Prune(action->finished_at);  // `action` may be gone from here on
  }
  if (finished.state() != kSucceeded) {
    OMD_LOG(INFO, "action %s (%s, for %s) %s, exit code %d", finished.session_id(),
            finished.svcname(), finished.requested_by(), finished.state(),
            finished.exit_code());
  }
  if (on_finished) on_finished(finished);
}

void ActionRunner::Prune(absl::Time now) {
  const absl::Time expiry = now - options_.keep_finished_for;
  auto expired = [expiry](const std::unique_ptr<Action>& action) {
    return action->status.state() != kRunning && action->finished_at <= expiry;
  };
  actions_.erase(std::remove_if(actions_.begin(), actions_.end(), expired), actions_.end());
  int finished = 0;
  for (const auto& action : actions_) finished += action->status.state() != kRunning;
  while (finished > std::max(options_.keep_finished, 0)) {
    auto first_finished = actions_.end();
    for (auto it = actions_.begin(); it != actions_.end(); ++it) {
      if ((*it)->status.state() == kRunning) continue;
      if (first_finished == actions_.end() ||
          (*it)->finished_at < (*first_finished)->finished_at) {
        first_finished = it;
      }
    }
    actions_.erase(first_finished);
    --finished;
  }
}

std::vector<std::thread> ActionRunner::TakeFinishedThreads() {
  std::vector<std::thread> finished;
  finished.swap(finished_threads_);
  return finished;
}

absl::StatusOr<std::vector<v1::ActionStatus>> ActionRunner::List(
    absl::string_view session_id) const {
  const absl::Time now = Now();
  sync::MutexLock lock(&mu_);
  const absl::Time expiry = now - options_.keep_finished_for;
  std::vector<v1::ActionStatus> listed;
  for (const auto& action : actions_) {
    // Past its retention, even if no Start or finish has pruned it yet.
    if (action->status.state() != kRunning && action->finished_at <= expiry) continue;
    if (!session_id.empty() && action->status.session_id() != session_id) continue;
    listed.push_back(action->status);
  }
  if (!session_id.empty() && listed.empty()) {
    return absl::NotFoundError(absl::StrCat("no action ", config::QuoteForMessage(session_id),
                                            " (unknown, or no longer kept)"));
  }
  return listed;
}

int ActionRunner::running() const {
  sync::MutexLock lock(&mu_);
  return running_;
}

void ActionRunner::Stop() {
  std::call_once(stop_once_, [this] {
    std::vector<std::thread> threads;
    {
      sync::MutexLock lock(&mu_);
      stopping_ = true;
      for (const auto& action : actions_) {
        if (action->cancellation != nullptr) action->cancellation->Cancel();
      }
      mu_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; });
      threads = TakeFinishedThreads();
    }
    for (std::thread& thread : threads) thread.join();
  });
}

bool ActionRunner::WaitForIdleForTesting(absl::Duration timeout) const {
  sync::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return running_ == 0; }, timeout);
}

}  // namespace omd::action

#include "service/instance.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "config/quote.h"
#include "process/subprocess.h"

namespace omd::service {
namespace {

constexpr absl::Duration kLockPoll = absl::Milliseconds(20);
// The last lines of a failed command's stderr go to the log.
constexpr size_t kStderrTailLines = 10;

// The last `count` non-empty-ended lines of `text`.
std::string LastLines(absl::string_view text, size_t count) {
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (lines.size() > count) lines.erase(lines.begin(), lines.end() - count);
  return absl::StrJoin(lines, "\n");
}

// What ended a command other than exit 0, e.g. "exited 1", "timed out after 5s".
std::string Outcome(const process::ProcessResult& result, absl::Duration timeout) {
  if (result.cancelled) return "was cancelled";
  if (result.timed_out) return absl::StrCat("timed out after ", absl::FormatDuration(timeout));
  if (result.term_signal != 0) return absl::StrCat("was killed by signal ", result.term_signal);
  return absl::StrCat("exited ", result.exit_code);
}

struct CommandRun {
  absl::Status status;   // OK: exited 0
  std::string outcome;   // "exited 1", ...
};

const Resource* FindResource(const ServiceConfig& config, absl::string_view id) {
  for (const Resource& resource : config.resources) {
    if (resource.id == id) return &resource;
  }
  return nullptr;
}

absl::Status CheckLock(const ServiceConfig& config, const InstanceLock& lock) {
  if (lock.name() == config.name) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the lock held is service \"", lock.name(), "\"'s, not \"", config.name, "\"'s"));
}

}  // namespace

absl::string_view AvailName(Avail avail) {
  switch (avail) {
    case Avail::kUp:
      return "up";
    case Avail::kDown:
      return "down";
    case Avail::kWarn:
      return "warn";
    case Avail::kNotApplicable:
      return "n/a";
  }
  return "n/a";
}

absl::StatusOr<InstanceLock> InstanceLock::Acquire(absl::string_view root,
                                                   absl::string_view name,
                                                   absl::Duration timeout) {
  if (absl::Status valid = ValidateServiceName(name); !valid.ok()) return valid;
  const std::string var = absl::StrCat(root, "/var");
  const std::string directory = absl::StrCat(var, "/lock");
  if (absl::Status made = config::MakeDirectories(var, 0755); !made.ok()) return made;
  if (absl::Status made = config::MakeDirectories(directory, 0700); !made.ok()) return made;
  const std::string path = absl::StrCat(directory, "/", name, ".lock");
  // Close-on-exec: a resource's command, and what it leaves running, must not
  // keep the lock.
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  InstanceLock lock(fd, std::string(name));
  const absl::Time deadline = absl::Now() + timeout;
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot lock ", path));
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "service \"", name, "\" is busy (another action holds its lock)"));
    }
    absl::SleepFor(std::min(left, kLockPoll));
  }
  return lock;
}

InstanceLock::InstanceLock(InstanceLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), name_(std::move(other.name_)) {}

InstanceLock& InstanceLock::operator=(InstanceLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    name_ = std::move(other.name_);
  }
  return *this;
}

InstanceLock::~InstanceLock() {
  if (fd_ >= 0) close(fd_);  // releases the flock
}

InstanceRunner::InstanceRunner(Options options) : options_(std::move(options)) {}

namespace {

// Runs one command of a resource, logging it and its result.
CommandRun RunLogged(const InstanceRunner::Options& options, ServiceLog& log,
                     const Resource& resource, absl::string_view which,
                     const std::vector<std::string>& argv) {
  const auto record = [&](LogLevel level, const std::string& message) {
    log.Append(level, message).IgnoreError();  // an action never fails for its log
    if (options.echo) options.echo(level, message);
  };
  record(LogLevel::kInfo, absl::StrCat(resource.id, ": ", which, ": ", JoinArguments(argv)));
  process::ProcessOptions process;
  process.argv = argv;
  process.timeout = resource.timeout;
  process.cancellation = options.cancellation;
  process.max_output_bytes = 64 << 10;
  absl::StatusOr<process::ProcessResult> result = process::RunProcess(process);
  CommandRun run;
  if (!result.ok()) {
    run.outcome = absl::StrCat("could not run: ", result.status().message());
    const std::string message = absl::StrCat(resource.id, ": ", which, " ", run.outcome);
    record(LogLevel::kError, message);
    run.status = absl::IsCancelled(result.status()) ? absl::CancelledError(message)
                                                    : absl::InternalError(message);
    return run;
  }
  if (result->exit_code == 0 && !result->timed_out && !result->cancelled) {
    run.outcome = "exited 0";
    record(LogLevel::kInfo, absl::StrCat(resource.id, ": ", which, " exited 0"));
    return run;
  }
  run.outcome = Outcome(*result, resource.timeout);
  const std::string message = absl::StrCat(resource.id, ": ", which, " ", run.outcome);
  const std::string tail = LastLines(result->stderr_text, kStderrTailLines);
  record(LogLevel::kError, tail.empty() ? message : absl::StrCat(message, ":\n", tail));
  const std::string last_line = LastLines(tail, 1);
  const std::string status_message =
      last_line.empty() ? message
                        : absl::StrCat(message, ": ", config::EscapeForMessage(last_line));
  run.status = result->cancelled ? absl::CancelledError(status_message)
                                 : absl::InternalError(status_message);
  return run;
}

}  // namespace

absl::Status InstanceRunner::Start(const ServiceConfig& config,
                                   const InstanceLock& lock) const {
  if (absl::Status held = CheckLock(config, lock); !held.ok()) return held;
  ServiceLog log(options_.root, config.name);
  for (const Resource& resource : config.resources) {
    if (resource.start.empty()) continue;
    CommandRun run = RunLogged(options_, log, resource, "start", resource.start);
    if (!run.status.ok()) return run.status;
  }
  return absl::OkStatus();
}

absl::Status InstanceRunner::Stop(const ServiceConfig& config,
                                  const InstanceLock& lock) const {
  if (absl::Status held = CheckLock(config, lock); !held.ok()) return held;
  ServiceLog log(options_.root, config.name);
  absl::Status first;
  for (auto it = config.resources.rbegin(); it != config.resources.rend(); ++it) {
    if (it->stop.empty()) continue;
    CommandRun run = RunLogged(options_, log, *it, "stop", it->stop);
    if (first.ok()) first = run.status;
  }
  return first;
}

absl::Status InstanceRunner::RunResourceCommand(const ServiceConfig& config,
                                                absl::string_view id, bool start,
                                                const InstanceLock& lock) const {
  if (absl::Status held = CheckLock(config, lock); !held.ok()) return held;
  const Resource* resource = FindResource(config, id);
  if (resource == nullptr) {
    return absl::NotFoundError(absl::StrCat("service \"", config.name, "\" has no resource ",
                                            config::QuoteForMessage(id)));
  }
  const std::vector<std::string>& argv = start ? resource->start : resource->stop;
  if (argv.empty()) return absl::OkStatus();
  ServiceLog log(options_.root, config.name);
  return RunLogged(options_, log, *resource, start ? "start" : "stop", argv).status;
}

absl::Status InstanceRunner::StartResource(const ServiceConfig& config, absl::string_view id,
                                           const InstanceLock& lock) const {
  return RunResourceCommand(config, id, /*start=*/true, lock);
}

absl::Status InstanceRunner::StopResource(const ServiceConfig& config, absl::string_view id,
                                          const InstanceLock& lock) const {
  return RunResourceCommand(config, id, /*start=*/false, lock);
}

InstanceStatus InstanceRunner::Check(const ServiceConfig& config) const {
  InstanceStatus status;
  int up = 0;
  int down = 0;
  for (const Resource& resource : config.resources) {
    ResourceStatus& state = status.resources.emplace_back();
    state.id = resource.id;
    if (resource.check.empty()) {
      state.avail = Avail::kNotApplicable;
      state.detail = "no check command";
      continue;
    }
    process::ProcessOptions process;
    process.argv = resource.check;
    process.timeout = resource.timeout;
    process.cancellation = options_.cancellation;
    process.max_output_bytes = 64 << 10;
    absl::StatusOr<process::ProcessResult> result = process::RunProcess(process);
    if (!result.ok()) {
      state.avail = Avail::kDown;
      state.detail = absl::StrCat("check could not run: ", result.status().message());
    } else if (result->exit_code == 0 && !result->timed_out && !result->cancelled) {
      state.avail = Avail::kUp;
    } else {
      state.avail = Avail::kDown;
      state.detail = absl::StrCat("check ", Outcome(*result, resource.timeout));
    }
    ++(state.avail == Avail::kUp ? up : down);
  }
  if (up + down == 0) {
    status.avail = Avail::kNotApplicable;
  } else if (down == 0) {
    status.avail = Avail::kUp;
  } else if (up == 0) {
    status.avail = Avail::kDown;
  } else {
    status.avail = Avail::kWarn;
  }
  return status;
}

}  // namespace omd::service

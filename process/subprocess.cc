#include "process/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "posix/unique_fd.h"

extern char** environ;

namespace omd::process {
namespace {

using posix::UniqueFd;

// How long a timed-out group has between SIGTERM and SIGKILL.
constexpr absl::Duration kKillGrace = absl::Seconds(2);
// A descendant that left the group (setsid) can keep the pipes open after the
// SIGKILL; stop waiting for them after this.
constexpr absl::Duration kAbandonOutputAfterKill = absl::Seconds(2);
// Only for a child that closed both streams but has not exited: there is no fd
// to poll for its exit, so waitpid is retried this often until the deadline.
constexpr absl::Duration kExitPollInterval = absl::Milliseconds(10);
constexpr size_t kReadChunkBytes = 64 * 1024;

std::string ErrorText(int error_number) {
  char buffer[256];
  // The GNU strerror_r returns the message, in buffer or in static storage.
  return strerror_r(error_number, buffer, sizeof(buffer));
}

absl::Status ErrnoStatus(absl::string_view what, int error_number) {
  return absl::InternalError(
      absl::StrFormat("%s: %s", what, ErrorText(error_number)));
}


// A daemon that closed its standard streams gets 0, 1 or 2 from pipe2; the
// child's dup2 onto those numbers would then clobber one pipe with another.
absl::Status MoveAboveStandardStreams(UniqueFd& fd) {
  if (fd.get() > STDERR_FILENO) return absl::OkStatus();
  int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  if (moved < 0) return ErrnoStatus("fcntl(F_DUPFD_CLOEXEC)", errno);
  fd = UniqueFd(moved);
  return absl::OkStatus();
}

absl::Status MakePipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  // O_CLOEXEC at creation: a thread spawning at the same moment must not
  // inherit this pipe, or our reader would wait for that unrelated child.
  if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe2", errno);
  read_end = UniqueFd(fds[0]);
  write_end = UniqueFd(fds[1]);
  absl::Status status = MoveAboveStandardStreams(read_end);
  if (status.ok()) status = MoveAboveStandardStreams(write_end);
  return status;
}

class SpawnFileActions {
 public:
  SpawnFileActions() { initialized_ = posix_spawn_file_actions_init(&actions_) == 0; }
  ~SpawnFileActions() {
    if (initialized_) posix_spawn_file_actions_destroy(&actions_);
  }
  SpawnFileActions(const SpawnFileActions&) = delete;
  SpawnFileActions& operator=(const SpawnFileActions&) = delete;

  bool initialized() const { return initialized_; }
  posix_spawn_file_actions_t* native() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
  bool initialized_ = false;
};

class SpawnAttributes {
 public:
  SpawnAttributes() { initialized_ = posix_spawnattr_init(&attributes_) == 0; }
  ~SpawnAttributes() {
    if (initialized_) posix_spawnattr_destroy(&attributes_);
  }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;

  bool initialized() const { return initialized_; }
  posix_spawnattr_t* native() { return &attributes_; }

 private:
  posix_spawnattr_t attributes_;
  bool initialized_ = false;
};

// posix_spawn* functions return an error number instead of setting errno.
absl::Status SpawnCallStatus(absl::string_view what, int error_number) {
  if (error_number == 0) return absl::OkStatus();
  return ErrnoStatus(what, error_number);
}

absl::Status ConfigureFileActions(const ProcessOptions& options,
                                  const UniqueFd& stdout_write,
                                  const UniqueFd& stderr_write,
                                  SpawnFileActions& actions) {
  if (!actions.initialized()) {
    return absl::InternalError("posix_spawn_file_actions_init failed");
  }
  absl::Status status = SpawnCallStatus(
      "posix_spawn_file_actions_addopen",
      posix_spawn_file_actions_addopen(actions.native(), STDIN_FILENO, "/dev/null",
                                       O_RDONLY, 0));
  if (!status.ok()) return status;
  status = SpawnCallStatus("posix_spawn_file_actions_adddup2",
                           posix_spawn_file_actions_adddup2(
                               actions.native(), stdout_write.get(), STDOUT_FILENO));
  if (!status.ok()) return status;
  status = SpawnCallStatus("posix_spawn_file_actions_adddup2",
                           posix_spawn_file_actions_adddup2(
                               actions.native(), stderr_write.get(), STDERR_FILENO));
  if (!status.ok()) return status;
  if (!options.working_directory.empty()) {
    status = SpawnCallStatus(
        "posix_spawn_file_actions_addchdir_np",
        posix_spawn_file_actions_addchdir_np(actions.native(),
                                             options.working_directory.c_str()));
  }
  return status;
}

enum class ProcessGroup { kOwn, kCallers };

absl::Status ConfigureAttributes(ProcessGroup group, SpawnAttributes& attributes) {
  if (!attributes.initialized()) {
    return absl::InternalError("posix_spawnattr_init failed");
  }
  // Own process group (pgid = child pid) so a timeout reaches grandchildren;
  // an empty signal mask and default dispositions so the child does not
  // inherit the daemon's blocked or ignored signals (SIGPIPE above all).
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (group == ProcessGroup::kOwn) flags |= POSIX_SPAWN_SETPGROUP;
  absl::Status status = SpawnCallStatus(
      "posix_spawnattr_setflags", posix_spawnattr_setflags(attributes.native(), flags));
  if (!status.ok()) return status;
  if (group == ProcessGroup::kOwn) {
    status = SpawnCallStatus("posix_spawnattr_setpgroup",
                             posix_spawnattr_setpgroup(attributes.native(), 0));
    if (!status.ok()) return status;
  }
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  status = SpawnCallStatus("posix_spawnattr_setsigmask",
                           posix_spawnattr_setsigmask(attributes.native(), &empty_mask));
  if (!status.ok()) return status;
  sigset_t default_signals;
  sigemptyset(&default_signals);
  for (int signal_number : {SIGPIPE, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGCHLD,
                            SIGALRM, SIGUSR1, SIGUSR2}) {
    sigaddset(&default_signals, signal_number);
  }
  return SpawnCallStatus(
      "posix_spawnattr_setsigdefault",
      posix_spawnattr_setsigdefault(attributes.native(), &default_signals));
}

// One of the child's output streams, read until it closes.
struct OutputStream {
  UniqueFd fd;
  std::string* text = nullptr;
  bool truncated = false;
};

// Reads what is available (poll said so, so one read does not block). Closes
// the stream at end of file or on a read error.
void ReadAvailable(OutputStream& stream, size_t max_bytes) {
  char buffer[kReadChunkBytes];
  ssize_t count = read(stream.fd.get(), buffer, sizeof(buffer));
  if (count < 0) {
    if (errno == EINTR || errno == EAGAIN) return;
    stream.fd.Reset();
    return;
  }
  if (count == 0) {
    stream.fd.Reset();
    return;
  }
  size_t room = max_bytes - std::min(max_bytes, stream.text->size());
  size_t kept = std::min(room, static_cast<size_t>(count));
  stream.text->append(buffer, kept);
  if (kept < static_cast<size_t>(count)) stream.truncated = true;
}

// waitpid, retried on EINTR. Returns the pid, 0 (WNOHANG, still running) or -1.
pid_t WaitPid(pid_t pid, int* wait_status, int flags) {
  pid_t waited;
  do {
    waited = waitpid(pid, wait_status, flags);
  } while (waited < 0 && errno == EINTR);
  return waited;
}

// For error paths after a successful spawn: never leave a child or a zombie.
void KillAndReap(pid_t pid) {
  kill(-pid, SIGKILL);
  int wait_status = 0;
  WaitPid(pid, &wait_status, 0);
}

int PollTimeoutMillis(absl::Duration wait) {
  if (wait == absl::InfiniteDuration()) return -1;
  if (wait <= absl::ZeroDuration()) return 0;
  int64_t millis =
      absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1)));
  return static_cast<int>(std::min<int64_t>(millis, INT_MAX));
}

absl::Status ValidateOptions(const ProcessOptions& options) {
  if (options.argv.empty()) {
    return absl::InvalidArgumentError("argv is empty");
  }
  for (size_t i = 0; i < options.argv.size(); ++i) {
    if (options.argv[i].find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrFormat("argument %d contains a NUL byte", i));
    }
  }
  if (!options.working_directory.empty()) {
    // Checked here only for a clear error: the child's chdir failing would
    // come back as ENOENT, indistinguishable from a missing program.
    struct stat info;
    if (stat(options.working_directory.c_str(), &info) != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("working directory %s: %s", options.working_directory,
                          ErrorText(errno)));
    }
    if (!S_ISDIR(info.st_mode)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "working directory %s is not a directory", options.working_directory));
    }
  }
  return absl::OkStatus();
}

}  // namespace

Cancellation::Cancellation() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) std::abort();  // no fd to spare: nothing else would work either
}

Cancellation::~Cancellation() { close(fd_); }

void Cancellation::Cancel() {
  const uint64_t one = 1;
  // Cannot fail short of a counter overflow (2^64 cancels).
  [[maybe_unused]] ssize_t written = write(fd_, &one, sizeof(one));
}

bool Cancellation::cancelled() const {
  pollfd readable = {fd_, POLLIN, 0};
  return poll(&readable, 1, 0) == 1;
}

absl::StatusOr<ProcessResult> RunProcess(const ProcessOptions& options) {
  absl::Status status = ValidateOptions(options);
  if (!status.ok()) return status;
  if (options.cancellation != nullptr && options.cancellation->cancelled()) {
    return absl::CancelledError(absl::StrFormat("not started: %s", options.argv[0]));
  }

  UniqueFd stdout_read, stdout_write, stderr_read, stderr_write;
  status = MakePipe(stdout_read, stdout_write);
  if (!status.ok()) return status;
  status = MakePipe(stderr_read, stderr_write);
  if (!status.ok()) return status;

  SpawnFileActions actions;
  status = ConfigureFileActions(options, stdout_write, stderr_write, actions);
  if (!status.ok()) return status;
  SpawnAttributes attributes;
  status = ConfigureAttributes(ProcessGroup::kOwn, attributes);
  if (!status.ok()) return status;

  std::vector<char*> argv_pointers;
  argv_pointers.reserve(options.argv.size() + 1);
  for (const std::string& argument : options.argv) {
    argv_pointers.push_back(const_cast<char*>(argument.c_str()));
  }
  argv_pointers.push_back(nullptr);

  const absl::Time deadline = absl::Now() + options.timeout;
  pid_t pid = 0;
  int spawn_error = posix_spawnp(&pid, argv_pointers[0], actions.native(),
                                 attributes.native(), argv_pointers.data(), environ);
  if (spawn_error == ENOENT) {
    return absl::NotFoundError(
        absl::StrFormat("program not found: %s", options.argv[0]));
  }
  if (spawn_error != 0) {
    return absl::InternalError(absl::StrFormat(
        "cannot run %s: %s", options.argv[0], ErrorText(spawn_error)));
  }
  // Only the child may hold the write ends, or we would never see end of file.
  stdout_write.Reset();
  stderr_write.Reset();

  ProcessResult result;
  result.pid = pid;
  OutputStream streams[2];
  streams[0].fd = std::move(stdout_read);
  streams[0].text = &result.stdout_text;
  streams[1].fd = std::move(stderr_read);
  streams[1].text = &result.stderr_text;

  enum class KillStage { kNone, kTerminated, kKilled, kOutputAbandoned };
  KillStage kill_stage = KillStage::kNone;
  absl::Time next_escalation = deadline;
  int wait_status = 0;

  while (true) {
    absl::Time now = absl::Now();
    if (now >= next_escalation) {
      // The child is not reaped before this loop ends, so its pid (and so the
      // group id) cannot have been reused: signalling -pid is safe.
      switch (kill_stage) {
        case KillStage::kNone:
          result.timed_out = !result.cancelled;
          kill(-pid, SIGTERM);
          kill_stage = KillStage::kTerminated;
          next_escalation = now + kKillGrace;
          break;
        case KillStage::kTerminated:
          kill(-pid, SIGKILL);
          kill_stage = KillStage::kKilled;
          next_escalation = now + kAbandonOutputAfterKill;
          break;
        case KillStage::kKilled:
        case KillStage::kOutputAbandoned:
          for (OutputStream& stream : streams) stream.fd.Reset();
          kill_stage = KillStage::kOutputAbandoned;
          next_escalation = absl::InfiniteFuture();
          break;
      }
    }

    pollfd poll_fds[3];
    OutputStream* polled_streams[2];
    nfds_t stream_count = 0;
    for (OutputStream& stream : streams) {
      if (!stream.fd.is_open()) continue;
      poll_fds[stream_count] = {stream.fd.get(), POLLIN, 0};
      polled_streams[stream_count] = &stream;
      ++stream_count;
    }
    // The cancellation is watched until the child is being killed anyway.
    const bool watch_cancellation =
        options.cancellation != nullptr && kill_stage == KillStage::kNone;
    nfds_t poll_count = stream_count;
    if (watch_cancellation) poll_fds[poll_count++] = {options.cancellation->fd(), POLLIN, 0};

    absl::Duration wait = next_escalation - absl::Now();
    if (stream_count == 0) {
      pid_t waited = WaitPid(pid, &wait_status,
                             next_escalation == absl::InfiniteFuture() ? 0 : WNOHANG);
      if (waited == pid) break;
      if (waited < 0) {
        int error_number = errno;
        KillAndReap(pid);
        return ErrnoStatus("waitpid", error_number);
      }
      wait = std::min(wait, kExitPollInterval);
    }

    int ready = poll(poll_fds, poll_count, PollTimeoutMillis(wait));
    if (ready < 0) {
      if (errno == EINTR) continue;
      int error_number = errno;
      KillAndReap(pid);
      return ErrnoStatus("poll", error_number);
    }
    for (nfds_t i = 0; i < stream_count; ++i) {
      if (poll_fds[i].revents != 0) {
        ReadAvailable(*polled_streams[i], options.max_output_bytes);
      }
    }
    if (watch_cancellation && poll_fds[stream_count].revents != 0) {
      result.cancelled = true;
      next_escalation = absl::Now();  // terminate the group, as on a timeout
    }
  }

  result.output_truncated = streams[0].truncated || streams[1].truncated;
  if (WIFEXITED(wait_status)) {
    result.exit_code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    result.exit_code = -1;
    result.term_signal = WTERMSIG(wait_status);
  }
  return result;
}

absl::StatusOr<ProcessResult> RunAttached(const std::vector<std::string>& argv) {
  ProcessOptions options;
  options.argv = argv;
  absl::Status status = ValidateOptions(options);
  if (!status.ok()) return status;

  // The caller's group and standard streams (no file actions).
  SpawnAttributes attributes;
  status = ConfigureAttributes(ProcessGroup::kCallers, attributes);
  if (!status.ok()) return status;

  std::vector<char*> argv_pointers;
  argv_pointers.reserve(argv.size() + 1);
  for (const std::string& argument : argv) {
    argv_pointers.push_back(const_cast<char*>(argument.c_str()));
  }
  argv_pointers.push_back(nullptr);

  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction previous_interrupt, previous_quit;
  sigaction(SIGINT, &ignore, &previous_interrupt);
  sigaction(SIGQUIT, &ignore, &previous_quit);
  ProcessResult result;
  pid_t pid = 0;
  const int spawn_error = posix_spawnp(&pid, argv_pointers[0], nullptr, attributes.native(),
                                       argv_pointers.data(), environ);
  int wait_status = 0;
  const bool waited = spawn_error == 0 && WaitPid(pid, &wait_status, 0) == pid;
  const int wait_error = errno;
  sigaction(SIGINT, &previous_interrupt, nullptr);
  sigaction(SIGQUIT, &previous_quit, nullptr);

  if (spawn_error == ENOENT) {
    return absl::NotFoundError(absl::StrFormat("program not found: %s", argv[0]));
  }
  if (spawn_error != 0) {
    return absl::InternalError(
        absl::StrFormat("cannot run %s: %s", argv[0], ErrorText(spawn_error)));
  }
  if (!waited) return ErrnoStatus("waitpid", wait_error);
  result.pid = pid;
  if (WIFEXITED(wait_status)) {
    result.exit_code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    result.exit_code = -1;
    result.term_signal = WTERMSIG(wait_status);
  }
  return result;
}

std::string CurrentExecutablePath() {
  char path[PATH_MAX];
  const ssize_t length = readlink("/proc/self/exe", path, sizeof(path) - 1);
  return length > 0 ? std::string(path, static_cast<size_t>(length)) : std::string();
}

}  // namespace omd::process

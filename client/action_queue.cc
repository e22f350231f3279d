#include "client/action_queue.h"

#include <sys/file.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "config/atomic_file.h"
#include "log/log.h"
#include "posix/unique_fd.h"
#include "process/subprocess.h"

namespace omd::client {
namespace {

// Per stream, in the .out file: enough to diagnose, small enough to keep.
constexpr size_t kMaxRecordedOutputBytes = 256 * 1024;

std::string ErrorText(int error_number) {
  char buffer[256];
  // The GNU strerror_r returns the message, in buffer or in static storage.
  return strerror_r(error_number, buffer, sizeof(buffer));
}

absl::Status ErrnoStatus(absl::string_view what, absl::string_view path,
                         int error_number) {
  return absl::InternalError(
      absl::StrFormat("%s %s: %s", what, path, ErrorText(error_number)));
}

struct QueueDirectories {
  std::string queue, running, done, failed, lock;
};

QueueDirectories DirectoriesUnder(const std::string& root) {
  std::string actions = absl::StrCat(root, "/var/actions");
  return {absl::StrCat(actions, "/queue"), absl::StrCat(actions, "/running"),
          absl::StrCat(actions, "/done"), absl::StrCat(actions, "/failed"),
          absl::StrCat(actions, "/.dequeue.lock")};
}

// The dequeuers' lock: shared by each run, exclusive for recovery.
absl::StatusOr<posix::UniqueFd> LockDequeue(const QueueDirectories& directories,
                                            int operation) {
  posix::UniqueFd fd(open(directories.lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.is_open()) return ErrnoStatus("cannot open", directories.lock, errno);
  if (flock(fd.get(), operation) != 0) {
    if (errno == EWOULDBLOCK) return absl::UnavailableError("a dequeuer is running");
    return ErrnoStatus("cannot lock", directories.lock, errno);
  }
  return fd;
}

// The names of the queued files, sorted. Hidden files (being written, by
// convention) and subdirectories are not actions.
absl::StatusOr<std::vector<std::string>> ListQueue(const std::string& queue) {
  DIR* dir = opendir(queue.c_str());
  if (dir == nullptr) return ErrnoStatus("cannot list", queue, errno);
  std::vector<std::string> names;
  while (true) {
    errno = 0;  // readdir reports errors only through errno
    struct dirent* entry = readdir(dir);
    if (entry == nullptr) break;
    std::string name = entry->d_name;
    if (name.empty() || name[0] == '.') continue;
    bool is_directory = entry->d_type == DT_DIR;
    if (entry->d_type == DT_UNKNOWN) {
      struct stat info;
      std::string path = absl::StrCat(queue, "/", name);
      is_directory = lstat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
    }
    if (!is_directory) names.push_back(std::move(name));
  }
  int read_error = errno;
  closedir(dir);
  if (read_error != 0) return ErrnoStatus("cannot list", queue, read_error);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> ReadCappedFile(const std::string& path) {
  // O_NOFOLLOW: a queued symlink must not make us read (and echo into .out)
  // some other file. O_NONBLOCK: a queued FIFO must not hang the queue.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ELOOP) {
      return absl::InvalidArgumentError("not a regular file (a symbolic link)");
    }
    return ErrnoStatus("cannot open", path, errno);
  }
  struct stat info;
  if (fstat(fd, &info) != 0) {
    int error_number = errno;
    close(fd);
    return ErrnoStatus("cannot stat", path, error_number);
  }
  if (!S_ISREG(info.st_mode)) {
    close(fd);
    return absl::InvalidArgumentError("not a regular file");
  }
  std::string contents;
  char buffer[16 * 1024];
  // Reads one byte past the cap, whatever the size said, in case it grew.
  while (contents.size() <= kMaxActionFileBytes) {
    ssize_t count = read(fd, buffer, sizeof(buffer));
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) {
      int error_number = errno;
      close(fd);
      return ErrnoStatus("cannot read", path, error_number);
    }
    if (count == 0) break;
    contents.append(buffer, static_cast<size_t>(count));
  }
  close(fd);
  if (contents.size() > kMaxActionFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("file is over %d bytes", kMaxActionFileBytes));
  }
  return contents;
}

// The om arguments in a queued file; INVALID_ARGUMENT when it is no action.
absl::StatusOr<std::vector<std::string>> ParseAction(const std::string& json) {
  // The parser also takes the object form {"values": [...]} of a ListValue;
  // an action is a JSON array and nothing else.
  if (!absl::StartsWith(absl::StripLeadingAsciiWhitespace(json), "[")) {
    return absl::InvalidArgumentError("not a JSON list");
  }
  google::protobuf::ListValue list;
  auto parse_status = google::protobuf::util::JsonStringToMessage(json, &list);
  if (!parse_status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a JSON list: ", parse_status.message().as_string()));
  }
  if (list.values_size() == 0) {
    return absl::InvalidArgumentError("the argument list is empty");
  }
  if (static_cast<size_t>(list.values_size()) > kMaxActionArguments) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%d arguments, more than %d", list.values_size(), kMaxActionArguments));
  }
  std::vector<std::string> arguments;
  arguments.reserve(list.values_size());
  for (int i = 0; i < list.values_size(); ++i) {
    const google::protobuf::Value& value = list.values(i);
    if (value.kind_case() != google::protobuf::Value::kStringValue) {
      return absl::InvalidArgumentError(
          absl::StrFormat("argument %d is not a string", i));
    }
    if (value.string_value().find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrFormat("argument %d contains a NUL byte", i));
    }
    arguments.push_back(value.string_value());
  }
  return arguments;
}

struct ActionOutcome {
  bool succeeded = false;
  bool not_started = false;  // cancelled before it could run: goes back to the queue
  std::string report;  // the contents of <name>.out
  std::string summary;  // one line for the log; never the arguments
};

ActionOutcome ErrorOutcome(const absl::Status& status) {
  ActionOutcome outcome;
  outcome.report = absl::StrCat("error: ", status.ToString(), "\n");
  outcome.summary = status.ToString();
  return outcome;
}

void AppendSection(absl::string_view title, absl::string_view text,
                   std::string& report) {
  absl::StrAppend(&report, "--- ", title, "\n", text);
  if (!text.empty() && text.back() != '\n') report += '\n';
}

ActionOutcome RunClaimedAction(const std::string& path,
                               const DequeueOptions& options) {
  absl::StatusOr<std::string> contents = ReadCappedFile(path);
  if (!contents.ok()) return ErrorOutcome(contents.status());
  absl::StatusOr<std::vector<std::string>> arguments = ParseAction(*contents);
  if (!arguments.ok()) return ErrorOutcome(arguments.status());
  absl::Status allowed = options.check_action(*arguments);
  if (!allowed.ok()) {
    ActionOutcome refused = ErrorOutcome(allowed);
    refused.summary = absl::StrCat("refused, not run: ",
                                   absl::StatusCodeToString(allowed.code()),
                                   " (the reason is in its .out)");
    return refused;
  }

  process::ProcessOptions process;
  process.argv = options.om_argv_prefix;
  process.argv.insert(process.argv.end(), arguments->begin(), arguments->end());
  process.timeout = options.action_timeout;
  process.cancellation = options.cancellation;
  process.max_output_bytes = kMaxRecordedOutputBytes;
  absl::StatusOr<process::ProcessResult> result = process::RunProcess(process);
  if (absl::IsCancelled(result.status())) {
    ActionOutcome not_started = ErrorOutcome(result.status());
    not_started.not_started = true;
    return not_started;
  }
  if (!result.ok()) return ErrorOutcome(result.status());

  ActionOutcome outcome;
  outcome.succeeded = result->exit_code == 0 && !result->timed_out && !result->cancelled;
  std::string& report = outcome.report;
  absl::StrAppend(&report, "exit_code: ", result->exit_code, "\n");
  if (result->term_signal != 0) {
    absl::StrAppend(&report, "term_signal: ", result->term_signal, " (",
                    strsignal(result->term_signal), ")\n");
  }
  if (result->timed_out) {
    absl::StrAppend(&report, "timed_out: after ",
                    absl::FormatDuration(options.action_timeout), "\n");
  }
  if (result->cancelled) {
    absl::StrAppend(&report, "cancelled: the dequeue was stopped\n");
  }
  if (result->output_truncated) {
    absl::StrAppend(&report, "output_truncated: each stream kept to ",
                    kMaxRecordedOutputBytes, " bytes\n");
  }
  AppendSection("stdout", result->stdout_text, report);
  AppendSection("stderr", result->stderr_text, report);

  if (result->cancelled) {
    outcome.summary = "cancelled";
  } else if (result->timed_out) {
    outcome.summary = absl::StrCat("timed out after ",
                                   absl::FormatDuration(options.action_timeout));
  } else if (result->term_signal != 0) {
    outcome.summary = absl::StrCat("killed by signal ", result->term_signal);
  } else {
    outcome.summary = absl::StrCat("exit code ", result->exit_code);
  }
  return outcome;
}

}  // namespace

absl::StatusOr<DequeueSummary> DequeueActions(const DequeueOptions& options) {
  if (options.root.empty()) {
    return absl::InvalidArgumentError("the root directory is empty");
  }
  if (options.om_argv_prefix.empty()) {
    return absl::InvalidArgumentError("om_argv_prefix is empty");
  }
  if (!options.check_action) {
    return absl::InvalidArgumentError("no check_action for the queued actions");
  }
  const QueueDirectories directories = DirectoriesUnder(options.root);
  for (const std::string* directory :
       {&directories.queue, &directories.running, &directories.done,
        &directories.failed}) {
    absl::Status status = config::MakeDirectories(*directory, 0750);
    if (!status.ok()) return status;
  }
  absl::StatusOr<posix::UniqueFd> lock = LockDequeue(directories, LOCK_SH);
  if (!lock.ok()) return lock.status();
  absl::StatusOr<std::vector<std::string>> names = ListQueue(directories.queue);
  if (!names.ok()) return names.status();

  DequeueSummary summary;
  for (const std::string& name : *names) {
    if (options.cancellation != nullptr && options.cancellation->cancelled()) {
      OMD_LOG(INFO, "dequeue cancelled: the remaining actions stay queued");
      break;
    }
    std::string queued = absl::StrCat(directories.queue, "/", name);
    std::string running = absl::StrCat(directories.running, "/", name);
    if (rename(queued.c_str(), running.c_str()) != 0) {
      if (errno == ENOENT) {
        OMD_LOG(INFO, "action %s was taken by another dequeuer", name);
        continue;
      }
      // Cannot be moved to failed/ either, most likely: leave it in place.
      OMD_LOG(WARNING, "cannot claim action %s: %s", name, ErrorText(errno));
      ++summary.failed;
      summary.failed_names.push_back(name);
      continue;
    }

    ActionOutcome outcome = RunClaimedAction(running, options);
    if (outcome.not_started) {
      if (rename(running.c_str(), queued.c_str()) != 0) {
        OMD_LOG(WARNING, "action %s: cannot put it back in the queue: %s", name,
                ErrorText(errno));
      }
      break;
    }
    const std::string& destination =
        outcome.succeeded ? directories.done : directories.failed;
    // 0600: the output of an om command may be sensitive.
    absl::Status written = config::WriteFileAtomically(
        absl::StrCat(destination, "/", name, ".out"), outcome.report, 0600);
    if (!written.ok()) {
      OMD_LOG(WARNING, "action %s: cannot record its output: %s", name,
              written.ToString());
    }
    std::string finished = absl::StrCat(destination, "/", name);
    if (rename(running.c_str(), finished.c_str()) != 0) {
      OMD_LOG(WARNING, "action %s: cannot move it out of running/: %s", name,
              ErrorText(errno));
    }

    if (outcome.succeeded) {
      ++summary.done;
      OMD_LOG(INFO, "action %s done", name);
    } else {
      ++summary.failed;
      summary.failed_names.push_back(name);
      OMD_LOG(WARNING, "action %s failed: %s", name, outcome.summary);
    }
  }
  return summary;
}

absl::StatusOr<int> RecoverInterruptedActions(const std::string& root) {
  const QueueDirectories directories = DirectoriesUnder(root);
  for (const std::string* directory : {&directories.running, &directories.failed}) {
    absl::Status status = config::MakeDirectories(*directory, 0750);
    if (!status.ok()) return status;
  }
  absl::StatusOr<posix::UniqueFd> lock = LockDequeue(directories, LOCK_EX | LOCK_NB);
  if (absl::IsUnavailable(lock.status())) return 0;  // its running/ files are live
  if (!lock.ok()) return lock.status();
  absl::StatusOr<std::vector<std::string>> names = ListQueue(directories.running);
  if (!names.ok()) return names.status();
  int moved = 0;
  for (const std::string& name : *names) {
    absl::Status noted = config::WriteFileAtomically(
        absl::StrCat(directories.failed, "/", name, ".out"),
        "interrupted: found in running/ when omd started (the dequeuer running it died); "
        "it may have run in part, and is not run again\n",
        0600);
    if (!noted.ok()) OMD_LOG(WARNING, "action %s: %s", name, noted.ToString());
    const std::string from = absl::StrCat(directories.running, "/", name);
    const std::string to = absl::StrCat(directories.failed, "/", name);
    if (rename(from.c_str(), to.c_str()) != 0) {
      OMD_LOG(WARNING, "action %s: cannot move it out of running/: %s", name, ErrorText(errno));
      continue;
    }
    ++moved;
    OMD_LOG(WARNING, "action %s was interrupted by the death of its dequeuer: moved to failed/",
            name);
  }
  return moved;
}

}  // namespace omd::client

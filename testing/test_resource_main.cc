// test_resource: a resource for service tests, run by the instance runner like
// any other program.
//
//   test_resource start --pidfile F   a detached `sleep` (own session, /dev/null
//                                     for its streams), its pid written to F; 0
//   test_resource check --pidfile F   0 iff F names a live process, else 1
//   test_resource stop --pidfile F    SIGTERM, waits until it is gone, removes F; 0
//   test_resource note --file F --text T   appends the line T to F (order of calls)
//   test_resource fail --text T       prints T on stderr, exits 3
//
// Tests kill the pid with SIGKILL to play a crashed resource.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "posix/unique_fd.h"

ABSL_FLAG(std::string, pidfile, "", "The file of the started process's pid.");
ABSL_FLAG(std::string, file, "", "For note: the file to append to.");
ABSL_FLAG(std::string, text, "", "For note: the line to append; for fail: the error.");

extern char** environ;

namespace {

constexpr absl::Duration kStopWait = absl::Seconds(10);

pid_t ReadPid(const std::string& path) {
  absl::StatusOr<std::string> text = omd::config::ReadFileToString(path, 64);
  int pid = 0;
  if (!text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid) || pid <= 0) {
    return 0;
  }
  return pid;
}

// Alive and not a zombie (a killed orphan may wait a while to be reaped).
bool IsAlive(pid_t pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  absl::StatusOr<std::string> stat =
      omd::config::ReadFileToString(absl::StrCat("/proc/", pid, "/stat"), 4096);
  if (!stat.ok()) return false;
  const size_t paren = stat->rfind(')');
  return paren == std::string::npos || paren + 2 >= stat->size() || (*stat)[paren + 2] != 'Z';
}

int Start(const std::string& pidfile) {
  if (IsAlive(ReadPid(pidfile))) return 0;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int fd = 0; fd <= 2; ++fd) {
    posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY,
                                     0);
  }
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID);
  std::vector<std::string> words = {"sleep", "100000"};
  std::vector<char*> argv = {words[0].data(), words[1].data(), nullptr};
  pid_t pid = 0;
  const int error = posix_spawnp(&pid, "sleep", &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    std::fprintf(stderr, "cannot start sleep: %s\n", std::strerror(error));
    return 2;
  }
  absl::Status written = omd::config::WriteFileAtomically(pidfile, absl::StrCat(pid, "\n"), 0644);
  if (!written.ok()) {
    kill(pid, SIGKILL);
    std::fprintf(stderr, "%s\n", written.ToString().c_str());
    return 2;
  }
  return 0;
}

int Stop(const std::string& pidfile) {
  const pid_t pid = ReadPid(pidfile);
  if (IsAlive(pid)) {
    kill(pid, SIGTERM);
    const absl::Time deadline = absl::Now() + kStopWait;
    while (IsAlive(pid) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
    if (IsAlive(pid)) {
      std::fprintf(stderr, "process %d did not end\n", static_cast<int>(pid));
      return 2;
    }
  }
  if (unlink(pidfile.c_str()) != 0 && errno != ENOENT) {
    std::fprintf(stderr, "cannot remove %s: %s\n", pidfile.c_str(), std::strerror(errno));
    return 2;
  }
  return 0;
}

int Note(const std::string& file, const std::string& text) {
  omd::posix::UniqueFd fd(open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  const std::string line = absl::StrCat(text, "\n");
  if (!fd.is_open() || write(fd.get(), line.data(), line.size()) !=
                           static_cast<ssize_t>(line.size())) {
    std::fprintf(stderr, "cannot append to %s: %s\n", file.c_str(), std::strerror(errno));
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  const std::string command = positional.size() == 2 ? positional[1] : "";
  const std::string pidfile = absl::GetFlag(FLAGS_pidfile);
  if ((command == "start" || command == "stop" || command == "check") && pidfile.empty()) {
    std::fprintf(stderr, "%s needs --pidfile\n", command.c_str());
    return 2;
  }
  if (command == "start") return Start(pidfile);
  if (command == "stop") return Stop(pidfile);
  if (command == "check") return IsAlive(ReadPid(pidfile)) ? 0 : 1;
  if (command == "note") return Note(absl::GetFlag(FLAGS_file), absl::GetFlag(FLAGS_text));
  if (command == "fail") {
    std::fprintf(stderr, "some output\n%s\n", absl::GetFlag(FLAGS_text).c_str());
    return 3;
  }
  std::fprintf(stderr, "usage: test_resource start|stop|check|note|fail [--pidfile F]\n");
  return 2;
}

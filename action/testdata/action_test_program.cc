// A stand-in for om in the action tests: run as `action_test_program <svcname>
// <mode> ...`, as the runner runs om, it ignores the service name and does what
// its mode says.
//
//   print OUT ERR CODE        writes OUT to stdout and ERR to stderr, exits CODE
//   flood BYTES               writes BYTES bytes to stdout and to stderr, exits 0
//   sleep SECONDS             sleeps, exits 0
//   hang PIDFILE [ignore-term]  starts a child `sleep 600` (in its own process
//                             group, inherited), writes the child's pid to
//                             PIDFILE and waits forever; with ignore-term, both
//                             ignore SIGTERM
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

extern char** environ;

namespace {

int Usage() {
  std::fputs("usage: action_test_program SVCNAME print|flood|sleep|hang ...\n", stderr);
  return 2;
}

int Hang(const char* pid_file, bool ignore_term) {
  if (ignore_term) signal(SIGTERM, SIG_IGN);  // inherited by the child
  char sleep_name[] = "sleep";
  char seconds[] = "600";
  char* child_argv[] = {sleep_name, seconds, nullptr};
  pid_t child = 0;
  if (posix_spawnp(&child, "sleep", nullptr, nullptr, child_argv, environ) != 0) {
    std::perror("posix_spawnp sleep");
    return 1;
  }
  const std::string temporary = std::string(pid_file) + ".tmp";
  FILE* file = std::fopen(temporary.c_str(), "w");
  if (file == nullptr) return 1;
  std::fprintf(file, "%d\n", static_cast<int>(child));
  std::fclose(file);
  std::rename(temporary.c_str(), pid_file);  // whole, or not there
  std::puts("hanging");
  std::fflush(stdout);
  while (true) pause();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  const std::string mode = argv[2];
  if (mode == "print" && argc == 6) {
    std::fputs(argv[3], stdout);
    std::fputs(argv[4], stderr);
    return std::atoi(argv[5]);
  }
  if (mode == "flood" && argc == 4) {
    const long bytes = std::atol(argv[3]);
    std::string chunk(4096, 'x');
    for (long written = 0; written < bytes; written += static_cast<long>(chunk.size())) {
      const size_t n = static_cast<size_t>(std::min<long>(bytes - written, chunk.size()));
      std::fwrite(chunk.data(), 1, n, stdout);
      std::fwrite(chunk.data(), 1, n, stderr);
    }
    return 0;
  }
  if (mode == "sleep" && argc == 4) {
    sleep(static_cast<unsigned>(std::atoi(argv[3])));
    return 0;
  }
  if (mode == "hang" && (argc == 4 || argc == 5)) {
    return Hang(argv[3], argc == 5 && std::strcmp(argv[4], "ignore-term") == 0);
  }
  return Usage();
}

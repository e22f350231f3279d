// A main() for libFuzzer targets in ordinary builds (gcc, no libFuzzer): it runs
// LLVMFuzzerTestOneInput on every seed file it is given, then on deterministic
// pseudo-random mutations of them, so a fuzzer's corpus is a regression test in CI
// (bazel/fuzz.bzl makes the cc_test). Under --config=fuzz the same fuzzer links
// libFuzzer's main instead and explores for real (tools/fuzz).
//
//   fuzzer_test [--mutations=N] [--seed=S] FILE_OR_DIRECTORY...
//
// The mutations are fixed by the seed, so a failure reproduces: the driver writes
// the failing input as fuzz-failure-input in the current directory, or under
// `bazel test` in the test's undeclared outputs
// (bazel-testlogs/PACKAGE/NAME/test.outputs/outputs.zip), and either fuzzer binary
// (bazel/fuzz.bzl) replays it when given that file alone.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Present when a sanitizer is linked in (--config=asan, ubsan, fuzz): its reports
// end the process with _exit, not a signal.
extern "C" void __sanitizer_set_death_callback(void (*callback)()) __attribute__((weak));

namespace {

// Mutated inputs stay below what the fuzzers are run with (tools/fuzz -max_len).
constexpr size_t kMaxMutatedBytes = 4096;

struct Seed {
  std::string path;
  std::string bytes;
};

// What runs now, for the crash handler: it must not allocate, so these are set
// before each run and only read there.
const std::string* current_input = nullptr;
char current_description[256] = "";
char failure_path[1024] = "fuzz-failure-input";

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t written = write(fd, data, size);
    if (written <= 0) return;
    data += written;
    size -= static_cast<size_t>(written);
  }
}

void WriteString(int fd, const char* text) { WriteAll(fd, text, strlen(text)); }

// Saves the input that failed and names it.
void SaveFailure() {
  WriteString(2, "\nfuzz_driver: failed on ");
  WriteString(2, current_description);
  if (current_input != nullptr) {
    const int fd = open(failure_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      WriteAll(fd, current_input->data(), current_input->size());
      close(fd);
      WriteString(2, "; input saved as ");
      WriteString(2, failure_path);
    }
  }
  WriteString(2, "\n");
}

// Abort, trap, segfault: save the input, then let the signal kill the process as
// it would have.
void OnCrash(int signal_number) {
  SaveFailure();
  signal(signal_number, SIG_DFL);
  raise(signal_number);
}

void InstallCrashHandlers() {
  if (const char* outputs = getenv("TEST_UNDECLARED_OUTPUTS_DIR")) {
    snprintf(failure_path, sizeof(failure_path), "%s/fuzz-failure-input", outputs);
  }
  for (int signal_number : {SIGABRT, SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGTRAP}) {
    signal(signal_number, OnCrash);
  }
  if (__sanitizer_set_death_callback != nullptr) __sanitizer_set_death_callback(SaveFailure);
}

bool ReadFile(const std::string& path, std::string& bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

// Files given, and the files of directories given (not recursively), sorted so the
// mutations do not depend on the order readdir returns.
bool CollectSeeds(const std::string& path, std::vector<Seed>& seeds) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    fprintf(stderr, "fuzz_driver: cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<std::string> files;
  if (S_ISDIR(info.st_mode)) {
    DIR* dir = opendir(path.c_str());
    if (dir == nullptr) return false;
    while (const dirent* entry = readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      files.push_back(path + "/" + entry->d_name);
    }
    closedir(dir);
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  for (const std::string& file : files) {
    Seed seed{file, ""};
    if (!ReadFile(file, seed.bytes)) {
      fprintf(stderr, "fuzz_driver: cannot read %s\n", file.c_str());
      return false;
    }
    seeds.push_back(std::move(seed));
  }
  return true;
}

// splitmix64: the same sequence on every platform and standard library, which
// std::uniform_int_distribution does not promise.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n) for n > 0.
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }

 private:
  uint64_t state_;
};

// A few of libFuzzer's own mutations: enough to leave the seeds' paths and reach
// the checks next to them.
void Mutate(std::string& input, const std::vector<Seed>& seeds, Random& random) {
  static constexpr uint8_t kInteresting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x04, 0x09};
  const size_t count = 1 + random.Below(4);
  for (size_t i = 0; i < count; ++i) {
    const size_t at = input.empty() ? 0 : random.Below(input.size());
    switch (random.Below(8)) {
      case 0:  // flip a bit
        if (!input.empty()) input[at] = static_cast<char>(input[at] ^ (1u << random.Below(8)));
        break;
      case 1:  // a random byte
        if (!input.empty()) input[at] = static_cast<char>(random.Next());
        break;
      case 2:  // an interesting byte
        if (!input.empty()) {
          input[at] = static_cast<char>(kInteresting[random.Below(sizeof(kInteresting))]);
        }
        break;
      case 3:  // insert a byte
        input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(random.Next()));
        break;
      case 4:  // erase a range
        if (!input.empty()) input.erase(at, 1 + random.Below(std::min<size_t>(16, input.size() - at)));
        break;
      case 5: {  // duplicate a range
        if (input.empty()) break;
        const std::string range = input.substr(at, 1 + random.Below(32));
        input.insert(random.Below(input.size() + 1), range);
        break;
      }
      case 6: {  // splice in a piece of another seed
        const std::string& other = seeds[random.Below(seeds.size())].bytes;
        if (other.empty()) break;
        const size_t from = random.Below(other.size());
        input.insert(input.empty() ? 0 : random.Below(input.size() + 1),
                     other.substr(from, 1 + random.Below(64)));
        break;
      }
      default:  // truncate
        input.resize(at);
        break;
    }
  }
  if (input.size() > kMaxMutatedBytes) input.resize(kMaxMutatedBytes);
}

void Run(const std::string& input) {
  current_input = &input;
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  current_input = nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  size_t mutations = 0;
  uint64_t seed = 1;
  std::vector<Seed> seeds;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--mutations=", 0) == 0) {
      mutations = std::strtoull(arg.c_str() + strlen("--mutations="), nullptr, 10);
    } else if (arg.rfind("--seed=", 0) == 0) {
      seed = std::strtoull(arg.c_str() + strlen("--seed="), nullptr, 10);
    } else if (!CollectSeeds(arg, seeds)) {
      return 2;
    }
  }
  if (seeds.empty()) {
    fprintf(stderr, "usage: %s [--mutations=N] [--seed=S] FILE_OR_DIRECTORY...\n", argv[0]);
    return 2;
  }
  InstallCrashHandlers();
  const auto start = std::chrono::steady_clock::now();
  for (const Seed& s : seeds) {
    snprintf(current_description, sizeof(current_description), "seed %s", s.path.c_str());
    Run(s.bytes);
  }
  Random random(seed);
  for (size_t i = 0; i < mutations; ++i) {
    const Seed& base = seeds[random.Below(seeds.size())];
    std::string input = base.bytes;
    Mutate(input, seeds, random);
    snprintf(current_description, sizeof(current_description),
             "mutation %zu (--seed=%llu) of %s", i, static_cast<unsigned long long>(seed),
             base.path.c_str());
    Run(input);
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  printf("fuzz_driver: %zu seeds and %zu mutations passed in %lld ms\n", seeds.size(),
         mutations, static_cast<long long>(elapsed.count()));
  return 0;
}

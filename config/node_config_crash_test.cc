// node.conf under writers in processes of their own (node_config_writer): two at
// once lose no update, and one killed with SIGKILL at any moment leaves the old
// file or the new one, complete, never a mix; its temporary file goes at the
// next write.
#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "config/ini.h"
#include "config/node_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "process/subprocess.h"

extern char** environ;

namespace omd::config {
namespace {

using ::testing::ElementsAre;

constexpr char kInitialFile[] =
    "# keep this comment\n"
    "[node]\n"
    "name = n1\n"
    "\n"
    "[cluster]\n"
    "secret = crash-test-secret-0123456789\n"
    "nodes = n1 n2\n"
    "addr@n2 = 10.0.0.2\n"
    "\n"
    "[hb#1]\n"
    "type = unicast\n"
    "\n"
    "[listener]\n"
    "port = 1214\n"
    "\n"
    "[test]\n"
    "counter = 0\n"
    "shared = 0\n";

std::string WriterPath() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/omd/config/node_config_writer");
}

std::string MakeRoot() {
  std::string pattern = ::testing::TempDir() + "node_config_crash_test.XXXXXX";
  EXPECT_NE(mkdtemp(pattern.data()), nullptr) << strerror(errno);
  EXPECT_TRUE(MakeDirectories(pattern + "/etc", 0700).ok());
  EXPECT_TRUE(WriteFileAtomically(NodeConfigPath(pattern), kInitialFile, 0600).ok());
  return pattern;
}

// Files in ROOT/etc named as WriteFileAtomically names its temporary files.
int TemporaryFiles(const std::string& root) {
  int count = 0;
  DIR* directory = opendir((root + "/etc").c_str());
  if (directory == nullptr) return -1;
  while (dirent* entry = readdir(directory)) {
    if (absl::StartsWith(entry->d_name, ".node.conf.tmp-")) ++count;
  }
  closedir(directory);
  return count;
}

int64_t Count(const IniFile& ini, const std::string& key) {
  int64_t count = -1;
  std::optional<std::string> value = ini.Get("test", key);
  if (!value.has_value() || !absl::SimpleAtoi(*value, &count)) return -1;
  return count;
}

// The whole file, as every reader must see it at any moment: it loads, has
// every section and the comment, and each write's two counts moved together.
void ExpectComplete(const std::string& root, int padding, int64_t* counter) {
  absl::StatusOr<std::string> text = ReadFileToString(NodeConfigPath(root), 1 << 20);
  ASSERT_TRUE(text.ok()) << text.status();
  absl::StatusOr<NodeConfig> config = ParseNodeConfig(*text);
  ASSERT_TRUE(config.ok()) << config.status() << "\n" << *text;
  EXPECT_TRUE(absl::StartsWith(*text, "# keep this comment\n[node]\n"));
  EXPECT_THAT(config->ini.SectionNames(), ElementsAre("node", "cluster", "hb#1", "listener", "test"));
  EXPECT_EQ(config->node_addresses.at("n2"), "10.0.0.2:1214");
  EXPECT_EQ(config->ini.Get("hb#1", "type"), "unicast");
  const int64_t count = Count(config->ini, "counter");
  EXPECT_GE(count, *counter);
  EXPECT_EQ(Count(config->ini, "shared"), count);
  if (count > 0) {
    std::optional<std::string> padded = config->ini.Get("test", "padding");
    ASSERT_TRUE(padded.has_value());
    EXPECT_EQ(padded->size(), static_cast<size_t>(padding));
    EXPECT_EQ(padded->find_first_not_of(padded->front()), std::string::npos);
  }
  *counter = count;
}

pid_t SpawnWriter(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {WriterPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_argv;
  for (std::string& arg : argv) c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, c_argv[0], nullptr, nullptr, c_argv.data(), environ);
  EXPECT_EQ(spawned, 0) << strerror(spawned);
  return pid;
}

TEST(NodeConfigCrashTest, ConcurrentWriterProcessesLoseNoUpdate) {
  const std::string root = MakeRoot();
  constexpr int kRounds = 150;
  std::vector<absl::StatusOr<process::ProcessResult>> results(2);
  std::vector<std::thread> writers;
  for (int i = 0; i < 2; ++i) {
    writers.emplace_back([&, i] {
      process::ProcessOptions options;
      options.argv = {WriterPath(), "--root", root, "--key", absl::StrCat("writer", i),
                      "--count", absl::StrCat(kRounds)};
      options.timeout = absl::Seconds(120);
      results[i] = process::RunProcess(options);
    });
  }
  for (std::thread& writer : writers) writer.join();
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  }
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(root);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(Count(config->ini, "writer0"), kRounds);
  EXPECT_EQ(Count(config->ini, "writer1"), kRounds);
  // Both incremented it: any interleaving of read and write would show here.
  EXPECT_EQ(Count(config->ini, "shared"), 2 * kRounds);
  EXPECT_EQ(TemporaryFiles(root), 0);
}

TEST(NodeConfigCrashTest, AWriterKilledAtAnyMomentLeavesACompleteFile) {
  const std::string root = MakeRoot();
  constexpr int kKills = 200;
  constexpr int kPadding = 64 * 1024;  // so that a write lasts long enough to be cut
  absl::BitGen random;
  int64_t counter = 0;
  int kills_leaving_a_temporary_file = 0;
  for (int kill_number = 0; kill_number < kKills; ++kill_number) {
    SCOPED_TRACE(absl::StrCat("kill ", kill_number));
    const int64_t before = counter;
    const pid_t writer =
        SpawnWriter({"--root", root, "--padding", absl::StrCat(kPadding)});
    ASSERT_GT(writer, 0);
    // Kill it once it is writing (it has written once), a random moment later.
    // Every read meanwhile must see a complete file too.
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (counter == before && absl::Now() < deadline) {
      ExpectComplete(root, kPadding, &counter);
      if (::testing::Test::HasFailure()) break;
    }
    absl::SleepFor(absl::Microseconds(absl::Uniform(random, 0, 5000)));
    ASSERT_EQ(kill(writer, SIGKILL), 0) << strerror(errno);
    int wait_status = 0;
    ASSERT_EQ(waitpid(writer, &wait_status, 0), writer);
    ASSERT_TRUE(WIFSIGNALED(wait_status))
        << "the writer was not running: exit status " << WEXITSTATUS(wait_status);
    ASSERT_GT(counter, before) << "the writer never wrote";

    ExpectComplete(root, kPadding, &counter);
    if (::testing::Test::HasFailure()) return;
    // At most the killed writer's own file: the one before it was removed by
    // this writer's first write.
    const int leftovers = TemporaryFiles(root);
    ASSERT_LE(leftovers, 1);
    kills_leaving_a_temporary_file += leftovers;
  }
  std::printf("%d of %d kills interrupted a write, leaving its temporary file\n",
              kills_leaving_a_temporary_file, kKills);

  // The next write removes what the last kill left.
  const pid_t last = SpawnWriter({"--root", root, "--count", "1", "--padding", absl::StrCat(kPadding)});
  int wait_status = 0;
  ASSERT_EQ(waitpid(last, &wait_status, 0), last);
  ASSERT_TRUE(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0);
  EXPECT_EQ(TemporaryFiles(root), 0);
  ExpectComplete(root, kPadding, &counter);
}

}  // namespace
}  // namespace omd::config

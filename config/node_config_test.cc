#include "config/node_config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "config/names.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

// Secrets that no error message or log line may contain.
constexpr char kSecret[] = "S3cr3t-Value-Never-Shown";
constexpr char kPreviousSecret[] = "Pr3vious-S3cret-Value";

std::string HostName() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

// Skips the test if this host's name cannot be a node name, since the defaults
// being tested come from it.
#define SKIP_UNLESS_HOST_NAME_IS_VALID()       \
  if (!IsValidName(HostName()))                \
  GTEST_SKIP() << "host name \"" << HostName() \
               << "\" is not a valid "         \
                  "node name"

std::string MakeTestDirectory() {
  std::string pattern = ::testing::TempDir() + "node_config_test.XXXXXX";
  char* created = mkdtemp(pattern.data());
  EXPECT_NE(created, nullptr) << strerror(errno);
  return pattern;
}

class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : previous_(umask(mask)) {}
  ~ScopedUmask() { umask(previous_); }

 private:
  mode_t previous_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

mode_t ModeOf(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) < 0) return 0;
  return info.st_mode & 07777;
}

// Writes ROOT/etc/node.conf with `text` and `mode`.
void WriteNodeConf(const std::string& root, const std::string& text,
                   mode_t mode = 0600) {
  ASSERT_TRUE(MakeDirectories(root + "/etc", 0700).ok());
  ASSERT_TRUE(WriteFileAtomically(root + "/etc/node.conf", text, mode).ok());
}

std::string WithSecret(absl::string_view rest = "") {
  return absl::StrCat("[cluster]\nsecret = ", kSecret, "\n", rest);
}

TEST(ParseNodeConfigTest, AppliesDefaultsToAMinimalFile) {
  SKIP_UNLESS_HOST_NAME_IS_VALID();
  absl::StatusOr<NodeConfig> config = ParseNodeConfig(WithSecret());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_name, HostName());
  EXPECT_EQ(config->cluster_name, "default");
  EXPECT_EQ(config->secret, kSecret);
  EXPECT_EQ(config->key_generation, 1u);
  EXPECT_EQ(config->previous_secret, "");
  EXPECT_THAT(config->cluster_nodes, ElementsAre(HostName()));
  EXPECT_EQ(config->listener_addr, "127.0.0.1");
  EXPECT_EQ(config->listener_port, 1214);
  EXPECT_EQ(config->clock_skew, absl::Seconds(60));
}

TEST(ParseNodeConfigTest, ReadsEveryKeyAndKeepsUnknownOnes) {
  absl::StatusOr<NodeConfig> config =
      ParseNodeConfig(absl::StrCat("# comment\n"
                                   "[node]\n"
                                   "name = n1\n"
                                   "zone = eu-west\n"
                                   "[cluster]\n"
                                   "name = prod\n"
                                   "secret = ",
                                   kSecret,
                                   "\n"
                                   "key_generation = 3\n"
                                   "previous_secret = ",
                                   kPreviousSecret,
                                   "\n"
                                   "nodes =  n1\tn2   n3 \n"
                                   "[listener]\n"
                                   "addr = ::1\n"
                                   "port = 0\n"
                                   "clock_skew = 3600\n"
                                   "[extra]\n"
                                   "anything = goes\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_name, "n1");
  EXPECT_EQ(config->cluster_name, "prod");
  EXPECT_EQ(config->secret, kSecret);
  EXPECT_EQ(config->key_generation, 3u);
  EXPECT_EQ(config->previous_secret, kPreviousSecret);
  EXPECT_THAT(config->cluster_nodes, ElementsAre("n1", "n2", "n3"));
  EXPECT_EQ(config->listener_addr, "::1");
  EXPECT_EQ(config->listener_port, 0);
  EXPECT_EQ(config->clock_skew, absl::Seconds(3600));
  EXPECT_EQ(config->ini.Get("node", "zone"), "eu-west");
  EXPECT_EQ(config->ini.Get("extra", "anything"), "goes");
}

TEST(ParseNodeConfigTest, AcceptsTheBoundsOfEveryRange) {
  for (const char* listener :
       {"port = 0\nclock_skew = 1\n", "port = 65535\nclock_skew = 3600\n",
        "addr = 0.0.0.0\n", "addr = ::\n", "addr = fe80::1\n"}) {
    absl::StatusOr<NodeConfig> config = ParseNodeConfig(
        WithSecret(absl::StrCat("[node]\nname = n1\n[listener]\n", listener)));
    EXPECT_TRUE(config.ok()) << listener << ": " << config.status();
  }
  absl::StatusOr<NodeConfig> config = ParseNodeConfig(
      WithSecret("key_generation = 4294967295\n[node]\nname = n1\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->key_generation, 4294967295u);
}

TEST(ParseNodeConfigTest, AcceptsAnEmptyPreviousSecretAtGenerationOne) {
  absl::StatusOr<NodeConfig> config =
      ParseNodeConfig(WithSecret("previous_secret =\n[node]\nname = n1\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->previous_secret, "");
}

// What ParseNodeConfig says a member address must be.
constexpr char kAddressRule[] =
    "is not host[:port] (an IP address, an IPv6 one in brackets with a port, or a "
    "DNS name; port 1 to 65535, default 1214)";

TEST(ParseNodeConfigTest, ReadsMemberAddressesWithTheirPorts) {
  absl::StatusOr<NodeConfig> config = ParseNodeConfig(WithSecret(
      "nodes = n1 n2 n3 n4 n5 n6\n"
      "addr@n1 = 10.0.0.1\n"
      "addr@n2 = 10.0.0.2:1300\n"
      "addr@n3 = [fe80::3]:1301\n"
      "addr@n4 = fe80::4\n"
      "addr@n5 = n5.example.com:65535\n"
      "addr@later = later.example.com\n"
      "address = unknown key, kept\n"
      "[node]\nname = n1\n[listener]\naddr = 127.0.0.7\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->node_addresses,
              ElementsAre(Pair("later", "later.example.com:1214"), Pair("n1", "10.0.0.1:1214"),
                          Pair("n2", "10.0.0.2:1300"), Pair("n3", "[fe80::3]:1301"),
                          Pair("n4", "[fe80::4]:1214"), Pair("n5", "n5.example.com:65535")));
  // This node's own address is for its peers: it listens where [listener] says.
  EXPECT_EQ(config->listener_addr, "127.0.0.7");
  EXPECT_EQ(config->ini.Get("cluster", "address"), "unknown key, kept");
}

TEST(PeerTargetTest, IsTheMembersAddressOrItsNameOnTheDefaultPort) {
  absl::StatusOr<NodeConfig> config = ParseNodeConfig(
      WithSecret("nodes = n1 n2 n3\naddr@n2 = [::1]:1300\n[node]\nname = n1\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(PeerTarget(*config, "n2"), "[::1]:1300");
  EXPECT_EQ(PeerTarget(*config, "n3"), "n3:1214");
  EXPECT_EQ(PeerTarget(*config, "n1"), "n1:1214");
  EXPECT_EQ(PeerTarget(*config, "elsewhere"), "elsewhere:1214");
}

struct BadConfig {
  std::string text;
  std::string message;  // The exact error.
};

TEST(ParseNodeConfigTest, RejectsEveryBadValueNamingItsKey) {
  const std::string kNode = "[node]\nname = n1\n";
  const std::vector<BadConfig> cases = {
      {"[node]\nname = a/b\n" + WithSecret(),
       "[node] name: invalid node name \"a/b\": use 1-63 letters, digits, "
       "'.', '_' or '-', starting with a letter or digit"},
      {"[node]\nname =\n" + WithSecret(),
       "[node] name: invalid node name \"\": use 1-63 letters, digits, '.', "
       "'_' or '-', starting with a letter or digit"},
      {kNode + WithSecret("name = a..b\n"),
       "[cluster] name: invalid cluster name \"a..b\": \"..\" is not allowed"},
      {kNode + "[cluster]\nnodes = n1\n",
       "[cluster] secret: missing: set the cluster's shared secret, at least "
       "16 characters"},
      {kNode + "[cluster]\nsecret = 123456789012345\n",
       "[cluster] secret: too short: use at least 16 characters"},
      {kNode + "[cluster]\nsecret =\n",
       "[cluster] secret: too short: use at least 16 characters"},
      {kNode + WithSecret("key_generation = 0\n"),
       "[cluster] key_generation: \"0\" is not a whole number from 1 to "
       "4294967295"},
      {kNode + WithSecret("key_generation = -1\n"),
       "[cluster] key_generation: \"-1\" is not a whole number from 1 to "
       "4294967295"},
      {kNode + WithSecret("key_generation = 4294967296\n"),
       "[cluster] key_generation: \"4294967296\" is not a whole number from "
       "1 to 4294967295"},
      {kNode + WithSecret("key_generation = two\n"),
       "[cluster] key_generation: \"two\" is not a whole number from 1 to "
       "4294967295"},
      {kNode + WithSecret(
                   absl::StrCat("previous_secret = ", kPreviousSecret, "\n")),
       "[cluster] previous_secret: set, but key_generation is 1: a previous "
       "secret is accepted under key_generation - 1, so key_generation must "
       "be 2 or more"},
      {kNode + WithSecret("key_generation = 2\nprevious_secret = short\n"),
       "[cluster] previous_secret: too short: use at least 16 characters"},
      {kNode + WithSecret(absl::StrCat(
                   "key_generation = 2\nprevious_secret = ", kSecret, "\n")),
       "[cluster] previous_secret: same as [cluster] secret: a rotation needs "
       "a new secret"},
      {kNode + WithSecret("nodes =\n"),
       "[cluster] nodes: empty: list the cluster's node names, this one "
       "included"},
      {kNode + WithSecret("nodes = n1 ../etc\n"),
       "[cluster] nodes: invalid node name \"../etc\": use 1-63 letters, "
       "digits, '.', '_' or '-', starting with a letter or digit"},
      {kNode + WithSecret("nodes = n1,n2\n"),
       "[cluster] nodes: invalid node name \"n1,n2\": use 1-63 letters, "
       "digits, '.', '_' or '-', starting with a letter or digit"},
      {kNode + WithSecret("nodes = n1 n2 n1\n"),
       "[cluster] nodes: \"n1\" is listed twice"},
      {kNode + WithSecret("[listener]\naddr = localhost\n"),
       "[listener] addr: \"localhost\" is not an IPv4 or IPv6 address"},
      {kNode + WithSecret("[listener]\naddr = 1.2.3\n"),
       "[listener] addr: \"1.2.3\" is not an IPv4 or IPv6 address"},
      {kNode + WithSecret("[listener]\naddr = [::1]\n"),
       "[listener] addr: \"[::1]\" is not an IPv4 or IPv6 address"},
      {kNode + WithSecret("[listener]\naddr =\n"),
       "[listener] addr: \"\" is not an IPv4 or IPv6 address"},
      {kNode + WithSecret("[listener]\nport = abc\n"),
       "[listener] port: \"abc\" is not a port number (0 to 65535)"},
      {kNode + WithSecret("[listener]\nport = 65536\n"),
       "[listener] port: \"65536\" is not a port number (0 to 65535)"},
      {kNode + WithSecret("[listener]\nport = -1\n"),
       "[listener] port: \"-1\" is not a port number (0 to 65535)"},
      {kNode + WithSecret("[listener]\nport = 80x\n"),
       "[listener] port: \"80x\" is not a port number (0 to 65535)"},
      {kNode + WithSecret("[listener]\nport =\n"),
       "[listener] port: \"\" is not a port number (0 to 65535)"},
      {kNode + WithSecret("[listener]\nclock_skew = 0\n"),
       "[listener] clock_skew: \"0\" is not a whole number of seconds from 1 "
       "to 3600"},
      {kNode + WithSecret("[listener]\nclock_skew = 3601\n"),
       "[listener] clock_skew: \"3601\" is not a whole number of seconds from "
       "1 to 3600"},
      {kNode + WithSecret("[listener]\nclock_skew = 1.5\n"),
       "[listener] clock_skew: \"1.5\" is not a whole number of seconds from "
       "1 to 3600"},
      {kNode + WithSecret("[listener]\nclock_skew = 60s\n"),
       "[listener] clock_skew: \"60s\" is not a whole number of seconds from "
       "1 to 3600"},
      {kNode + WithSecret("nodes = n2 n3\n"),
       "[cluster] nodes: this node, \"n1\" ([node] name), is not listed"},
      {kNode + WithSecret("[listener]\nmemory_budget = 63\n"),
       "[listener] memory_budget: \"63\" is not a whole number of MiB from 64 "
       "to 1048576"},
      {kNode + WithSecret("[listener]\nmemory_budget = 1048577\n"),
       "[listener] memory_budget: \"1048577\" is not a whole number of MiB from "
       "64 to 1048576"},
      {kNode + WithSecret("[listener]\nmemory_budget = 256M\n"),
       "[listener] memory_budget: \"256M\" is not a whole number of MiB from 64 "
       "to 1048576"},
      {kNode + WithSecret("[listener]\naddr@n2 = 10.0.0.2\n"),
       "[listener] addr@n2: no longer read: a member's address is [cluster] "
       "addr@n2 = host[:port], and [listener] addr is where this node listens"},
      {kNode + WithSecret("addr@a/b = 10.0.0.2\n"),
       "[cluster] addr@a/b: invalid node name \"a/b\": use 1-63 letters, "
       "digits, '.', '_' or '-', starting with a letter or digit"},
      {kNode + WithSecret("addr@ = 10.0.0.2\n"),
       "[cluster] addr@: invalid node name \"\": use 1-63 letters, digits, "
       "'.', '_' or '-', starting with a letter or digit"},
      {kNode + WithSecret("addr@n2 = 10.0.0.2:70000\n"),
       absl::StrCat("[cluster] addr@n2: \"10.0.0.2:70000\" ", kAddressRule,
                    ": the port is not a number from 1 to 65535")},
      {kNode + WithSecret("addr@n2 = 10.0.0.2:0\n"),
       absl::StrCat("[cluster] addr@n2: \"10.0.0.2:0\" ", kAddressRule,
                    ": the port is not a number from 1 to 65535")},
      {kNode + WithSecret("addr@n2 = n2.example.com:\n"),
       absl::StrCat("[cluster] addr@n2: \"n2.example.com:\" ", kAddressRule,
                    ": the port is not a number from 1 to 65535")},
      {kNode + WithSecret("addr@n2 =\n"),
       absl::StrCat("[cluster] addr@n2: \"\" ", kAddressRule, ": empty host")},
      {kNode + WithSecret("addr@n2 = :1214\n"),
       absl::StrCat("[cluster] addr@n2: \":1214\" ", kAddressRule, ": empty host")},
      {kNode + WithSecret("addr@n2 = [fe80::1\n"),
       absl::StrCat("[cluster] addr@n2: \"[fe80::1\" ", kAddressRule,
                    ": '[' without ']'")},
      {kNode + WithSecret("addr@n2 = [fe80::1]1214\n"),
       absl::StrCat("[cluster] addr@n2: \"[fe80::1]1214\" ", kAddressRule,
                    ": only \":port\" may follow ']'")},
      {kNode + WithSecret("addr@n2 = [10.0.0.2]:1214\n"),
       absl::StrCat("[cluster] addr@n2: \"[10.0.0.2]:1214\" ", kAddressRule,
                    ": only an IPv6 address goes in brackets")},
      {kNode + WithSecret("addr@n2 = [n2]:1214\n"),
       absl::StrCat("[cluster] addr@n2: \"[n2]:1214\" ", kAddressRule,
                    ": only an IPv6 address goes in brackets")},
      {kNode + WithSecret("addr@n2 = 10.0.0.256\n"),
       absl::StrCat("[cluster] addr@n2: \"10.0.0.256\" ", kAddressRule,
                    ": \"10.0.0.256\" is neither an IP address nor a DNS name")},
      {kNode + WithSecret("addr@n2 = n_2.example.com\n"),
       absl::StrCat("[cluster] addr@n2: \"n_2.example.com\" ", kAddressRule,
                    ": \"n_2.example.com\" is neither an IP address nor a DNS name")},
      {kNode + WithSecret("addr@n2 = 10.0.0.2 10.0.0.3\n"),
       absl::StrCat("[cluster] addr@n2: \"10.0.0.2 10.0.0.3\" ", kAddressRule,
                    ": \"10.0.0.2 10.0.0.3\" is neither an IP address nor a DNS name")},
      {kNode + WithSecret("addr@n2 = fe80::1::2\n"),
       absl::StrCat("[cluster] addr@n2: \"fe80::1::2\" ", kAddressRule,
                    ": \"fe80::1::2\" is neither an IP address nor a DNS name")},
      {kNode + WithSecret("oops\n"),
       "line 5: expected \"key = value\", \"[section]\" or a comment"},
      {kNode + WithSecret(absl::StrCat("secret = ", kSecret, "\n")),
       "line 5: duplicate key \"secret\" in [cluster] (first on line 4)"},
  };
  for (const BadConfig& test : cases) {
    absl::StatusOr<NodeConfig> config = ParseNodeConfig(test.text);
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument)
        << test.text;
    EXPECT_EQ(config.status().message(), test.message) << test.text;
    EXPECT_THAT(config.status().message(), Not(HasSubstr(kSecret)));
    EXPECT_THAT(config.status().message(), Not(HasSubstr(kPreviousSecret)));
  }
}

TEST(NodeConfigPathTest, IsEtcNodeConfUnderTheRoot) {
  EXPECT_EQ(NodeConfigPath("/srv/omd"), "/srv/omd/etc/node.conf");
  EXPECT_EQ(NodeConfigPath("/srv/omd//"), "/srv/omd/etc/node.conf");
  EXPECT_EQ(NodeConfigPath("/"), "/etc/node.conf");
  EXPECT_EQ(NodeConfigPath("relative"), "relative/etc/node.conf");
}

TEST(LoadNodeConfigTest, LoadsTheFile) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, "[node]\nname = n1\n" + WithSecret());
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(root);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_name, "n1");
  EXPECT_EQ(config->secret, kSecret);
}

TEST(LoadNodeConfigTest, ReportsAMissingFileWithItsPath) {
  std::string root = MakeTestDirectory();
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(root);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr(root + "/etc/node.conf"));
}

TEST(LoadNodeConfigTest, PrefixesErrorsWithThePath) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root,
                "[node]\nname = n1\n" + WithSecret("[listener]\nport = abc\n"));
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(root);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            root +
                "/etc/node.conf: [listener] port: \"abc\" is not a port "
                "number (0 to 65535)");
}

TEST(LoadNodeConfigTest, RefusesAnOversizedFile) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, WithSecret("# " + std::string(2 << 20, 'x') + "\n"));
  EXPECT_EQ(LoadNodeConfig(root).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(LoadNodeConfigTest, RejectsAnEmptyRoot) {
  EXPECT_EQ(LoadNodeConfig("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadOrCreateNodeConfig("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SaveNodeConfig("", NodeConfig()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LoadNodeConfigTest, WarnsWithoutTheSecretWhenOthersCanReadTheFile) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, "[node]\nname = n1\n" + WithSecret(), 0644);
  ::testing::internal::CaptureStderr();
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(root);
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(log, HasSubstr(" W " + root +
                             "/etc/node.conf is accessible by group or others "
                             "(mode 0644)"));
  EXPECT_THAT(log, HasSubstr("chmod 600"));
  EXPECT_THAT(log, Not(HasSubstr(kSecret)));
}

TEST(LoadNodeConfigTest, DoesNotWarnAboutAPrivateFile) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, "[node]\nname = n1\n" + WithSecret(), 0600);
  ::testing::internal::CaptureStderr();
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(root);
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(log, "");
}

bool IsLowercaseHex(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

TEST(LoadOrCreateNodeConfigTest, CreatesDirectoriesAndAPrivateDefaultFile) {
  SKIP_UNLESS_HOST_NAME_IS_VALID();
  std::string root = MakeTestDirectory() + "/new/root";
  ScopedUmask umask(022);
  ::testing::internal::CaptureStderr();
  absl::StatusOr<NodeConfig> config = LoadOrCreateNodeConfig(root);
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(config.ok()) << config.status();

  EXPECT_EQ(ModeOf(root), 0755u);
  EXPECT_EQ(ModeOf(root + "/etc"), 0700u);
  EXPECT_EQ(ModeOf(root + "/var"), 0755u);
  EXPECT_EQ(ModeOf(root + "/var/log"), 0755u);
  EXPECT_EQ(ModeOf(root + "/etc/node.conf"), 0600u);

  EXPECT_EQ(config->node_name, HostName());
  EXPECT_EQ(config->cluster_name, "default");
  EXPECT_EQ(config->secret.size(), 64u);
  EXPECT_TRUE(IsLowercaseHex(config->secret));
  EXPECT_EQ(config->key_generation, 1u);
  EXPECT_THAT(config->cluster_nodes, ElementsAre(HostName()));
  EXPECT_EQ(config->listener_addr, "127.0.0.1");
  EXPECT_EQ(config->listener_port, 1214);

  // Every default is spelled out, so the file documents itself.
  std::string text = ReadAll(root + "/etc/node.conf");
  EXPECT_THAT(text, HasSubstr("[node]\nname = " + HostName() + "\n"));
  EXPECT_THAT(
      text, HasSubstr("[cluster]\nname = default\nsecret = " + config->secret +
                      "\nnodes = " + HostName() + "\n"));
  EXPECT_THAT(text, HasSubstr("[listener]\naddr = 127.0.0.1\nport = 1214\n"));

  EXPECT_THAT(log, HasSubstr("created " + root + "/etc/node.conf"));
  EXPECT_THAT(log, Not(HasSubstr(config->secret)));
}

TEST(LoadOrCreateNodeConfigTest, NeverOverwritesAnExistingFile) {
  SKIP_UNLESS_HOST_NAME_IS_VALID();
  std::string root = MakeTestDirectory();
  absl::StatusOr<NodeConfig> first = LoadOrCreateNodeConfig(root);
  ASSERT_TRUE(first.ok()) << first.status();
  std::string edited = ReadAll(root + "/etc/node.conf") + "[extra]\nkey = v\n";
  WriteNodeConf(root, edited);

  absl::StatusOr<NodeConfig> second = LoadOrCreateNodeConfig(root);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->secret, first->secret);
  EXPECT_EQ(ReadAll(root + "/etc/node.conf"), edited);
}

TEST(LoadOrCreateNodeConfigTest, GivesEachNewRootItsOwnSecret) {
  SKIP_UNLESS_HOST_NAME_IS_VALID();
  absl::StatusOr<NodeConfig> first =
      LoadOrCreateNodeConfig(MakeTestDirectory());
  absl::StatusOr<NodeConfig> second =
      LoadOrCreateNodeConfig(MakeTestDirectory());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(first->secret, second->secret);
}

TEST(LoadOrCreateNodeConfigTest, ReportsAnInvalidExistingFile) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, "[node]\nname = n1\n[cluster]\nsecret = short\n");
  absl::StatusOr<NodeConfig> config = LoadOrCreateNodeConfig(root);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              HasSubstr("[cluster] secret: too short"));
  EXPECT_THAT(ReadAll(root + "/etc/node.conf"), HasSubstr("secret = short"));
}

TEST(LoadOrCreateNodeConfigTest, FailsWhenTheRootIsAFile) {
  std::string root = MakeTestDirectory() + "/file";
  ASSERT_TRUE(WriteFileAtomically(root, "x", 0600).ok());
  absl::StatusOr<NodeConfig> config = LoadOrCreateNodeConfig(root);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(config.status().message(),
              HasSubstr(root + " exists and is not a directory"));
}

TEST(SaveNodeConfigTest, WritesChangesAndKeepsTheRestOfTheFile) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root,
                "# keep this comment\n"
                "[node]\n"
                "name = n1\n"
                "zone = eu\n" +
                    WithSecret("nodes = n1\n"),
                0644);
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(root);
  ASSERT_TRUE(config.ok()) << config.status();
  config->cluster_nodes.push_back("n2");
  ASSERT_TRUE(SaveNodeConfig(root, *config).ok());

  EXPECT_EQ(ModeOf(root + "/etc/node.conf"), 0600u);
  EXPECT_EQ(ReadAll(root + "/etc/node.conf"),
            absl::StrCat("# keep this comment\n"
                         "[node]\n"
                         "name = n1\n"
                         "zone = eu\n"
                         "[cluster]\n"
                         "secret = ",
                         kSecret,
                         "\n"
                         "nodes = n1 n2\n"
                         "name = default\n"));
}

TEST(SaveNodeConfigTest, WritesTunablesOnlyWhenNotAtTheirDefault) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, "[node]\nname = n1\n" +
                          WithSecret("nodes = n1\n[listener]\nport = 1214\n"));
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(root);
  ASSERT_TRUE(config.ok()) << config.status();
  config->clock_skew = absl::Seconds(30);
  ASSERT_TRUE(SaveNodeConfig(root, *config).ok());

  absl::StatusOr<NodeConfig> reloaded = LoadNodeConfig(root);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(reloaded->clock_skew, absl::Seconds(30));
  // port was in the file, so it stays; addr and key_generation were not.
  EXPECT_EQ(reloaded->ini.Get("listener", "port"), "1214");
  EXPECT_EQ(reloaded->ini.Get("listener", "clock_skew"), "30");
  EXPECT_EQ(reloaded->ini.Get("listener", "addr"), std::nullopt);
  EXPECT_EQ(reloaded->ini.Get("cluster", "key_generation"), std::nullopt);
}

TEST(SaveNodeConfigTest, RecordsAndFinishesASecretRotation) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, "[node]\nname = n1\n" + WithSecret());
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(root);
  ASSERT_TRUE(config.ok()) << config.status();

  config->previous_secret = config->secret;
  config->secret = "a-brand-new-secret-value";
  config->key_generation = 2;
  ASSERT_TRUE(SaveNodeConfig(root, *config).ok());
  absl::StatusOr<NodeConfig> rotating = LoadNodeConfig(root);
  ASSERT_TRUE(rotating.ok()) << rotating.status();
  EXPECT_EQ(rotating->secret, "a-brand-new-secret-value");
  EXPECT_EQ(rotating->previous_secret, kSecret);
  EXPECT_EQ(rotating->key_generation, 2u);

  rotating->previous_secret.clear();
  ASSERT_TRUE(SaveNodeConfig(root, *rotating).ok());
  absl::StatusOr<NodeConfig> rotated = LoadNodeConfig(root);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->previous_secret, "");
  EXPECT_EQ(rotated->ini.Get("cluster", "previous_secret"), std::nullopt);
}

TEST(SaveNodeConfigTest, WritesAConfigBuiltFromScratch) {
  std::string root = MakeTestDirectory() + "/fresh";
  NodeConfig config;
  config.node_name = "n1";
  config.secret = kSecret;
  config.cluster_nodes = {"n1"};
  config.listener_port = 7000;
  ASSERT_TRUE(SaveNodeConfig(root, config).ok());
  EXPECT_EQ(ReadAll(root + "/etc/node.conf"),
            absl::StrCat("[node]\nname = n1\n\n[cluster]\nname = default\n"
                         "secret = ",
                         kSecret, "\nnodes = n1\n\n[listener]\nport = 7000\n"));
  EXPECT_EQ(ModeOf(root + "/etc"), 0700u);
}


// A node.conf with a bit of everything nobody but a person knows about.
const std::string& RichFile() {
  static const std::string* const text = new std::string(absl::StrCat(
      "# Written by hand; keep this comment.\n"
      "[node]\n"
      "name = n1\n"
      "; the rack, for people\n"
      "rack = r12\n"
      "\n"
      "[cluster]\n"
      "name = prod\n"
      "secret = ", kSecret, "\n"
      "nodes = n1 n2\n"
      "addr@n2 = 10.0.0.2\n"
      "\n"
      "[hb#1]\n"
      "type = unicast\n"
      "\n"
      "[listener]\n"
      "port = 1214\n"
      "# trailing words\n"));
  return *text;
}

std::vector<std::string> ListEtc(const std::string& root) {
  std::vector<std::string> names;
  DIR* directory = opendir((root + "/etc").c_str());
  if (directory == nullptr) return names;
  while (dirent* entry = readdir(directory)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(directory);
  std::sort(names.begin(), names.end());
  return names;
}

ino_t InodeOf(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) < 0) return 0;
  return info.st_ino;
}

absl::StatusOr<NodeConfig> SetKey(const std::string& root, absl::string_view section,
                                  absl::string_view key, absl::string_view value) {
  return UpdateNodeConfig(root, [&](IniFile& ini) { return ini.Set(section, key, value); });
}

TEST(UpdateNodeConfigTest, ChangesOneKeyAndKeepsEverythingElse) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, RichFile(), 0644);
  absl::StatusOr<NodeConfig> config = SetKey(root, "listener", "port", "1300");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listener_port, 1300);
  EXPECT_EQ(config->node_addresses.at("n2"), "10.0.0.2:1214");
  std::string expected = RichFile();
  expected.replace(expected.find("port = 1214"), 11, "port = 1300");
  EXPECT_EQ(ReadAll(root + "/etc/node.conf"), expected);
  EXPECT_EQ(ModeOf(root + "/etc/node.conf"), 0600u);
  EXPECT_EQ(ModeOf(root + "/etc/node.conf.lock"), 0600u);
  EXPECT_THAT(ListEtc(root), ElementsAre("node.conf", "node.conf.lock"));
}

TEST(UpdateNodeConfigTest, AddsRemovesAndKeepsUnknownKeysAndSections) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, RichFile());
  ASSERT_TRUE(SetKey(root, "cluster", "addr@n3", "[fe80::3]:1301").ok());
  ASSERT_TRUE(SetKey(root, "hb#2", "type", "multicast").ok());
  absl::StatusOr<NodeConfig> config = UpdateNodeConfig(root, [](IniFile& ini) {
    return ini.Remove("node", "rack") ? absl::OkStatus() : absl::NotFoundError("no rack");
  });
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_addresses.at("n3"), "[fe80::3]:1301");
  std::string expected = RichFile();
  expected.erase(expected.find("; the rack"), std::string("; the rack, for people\nrack = r12\n").size());
  expected.insert(expected.find("\n\n[hb#1]"), "\naddr@n3 = [fe80::3]:1301");
  expected.append("\n[hb#2]\ntype = multicast\n");
  // The trailing comment stays at the end of the file.
  expected.erase(expected.find("# trailing words\n"), std::string("# trailing words\n").size());
  expected.append("# trailing words\n");
  EXPECT_EQ(ReadAll(root + "/etc/node.conf"), expected);
}

TEST(UpdateNodeConfigTest, RefusesEveryInvalidResultAndWritesNothing) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, RichFile());
  const ino_t inode = InodeOf(root + "/etc/node.conf");
  struct Case {
    std::string section, key, value;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"listener", "port", "70000", "[listener] port: \"70000\" is not a port number (0 to 65535)"},
      {"listener", "addr", "my-host", "[listener] addr: \"my-host\" is not an IPv4 or IPv6 address"},
      {"listener", "clock_skew", "0",
       "[listener] clock_skew: \"0\" is not a whole number of seconds from 1 to 3600"},
      {"listener", "memory_budget", "1",
       "[listener] memory_budget: \"1\" is not a whole number of MiB from 64 to 1048576"},
      {"listener", "addr@n2", "10.0.0.2",
       "[listener] addr@n2: no longer read: a member's address is [cluster] addr@n2 = "
       "host[:port], and [listener] addr is where this node listens"},
      {"cluster", "secret", "short", "[cluster] secret: too short: use at least 16 characters"},
      {"cluster", "key_generation", "0",
       "[cluster] key_generation: \"0\" is not a whole number from 1 to 4294967295"},
      {"cluster", "name", "a b",
       "[cluster] name: invalid cluster name \"a b\": use 1-63 letters, digits, '.', '_' or "
       "'-', starting with a letter or digit"},
      {"cluster", "nodes", "n2", "[cluster] nodes: this node, \"n1\" ([node] name), is not listed"},
      {"cluster", "addr@n2", "10.0.0.2:0",
       absl::StrCat("[cluster] addr@n2: \"10.0.0.2:0\" ", kAddressRule,
                    ": the port is not a number from 1 to 65535")},
      {"node", "name", "a/b",
       "[node] name: invalid node name \"a/b\": use 1-63 letters, digits, '.', '_' or '-', "
       "starting with a letter or digit"},
      // Refused by IniFile::Set, before anything is validated.
      {"cluster", "nodes", "n1\n[evil]", "value of [cluster] nodes contains a line break or NUL"},
      {"cluster", "nodes", " n1", "value of [cluster] nodes starts or ends with whitespace"},
      {"a]b", "key", "v", "section name \"a]b\" contains '[' or ']'"},
      {"node", "a=b", "v", "[node] key \"a=b\" contains '='"},
  };
  for (const Case& test : cases) {
    absl::StatusOr<NodeConfig> config = SetKey(root, test.section, test.key, test.value);
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << test.key;
    EXPECT_EQ(config.status().message(), test.message) << test.key;
    EXPECT_THAT(config.status().message(), Not(HasSubstr(kSecret)));
    EXPECT_EQ(ReadAll(root + "/etc/node.conf"), RichFile()) << test.key;
  }
  // Not even rewritten with the same contents.
  EXPECT_EQ(InodeOf(root + "/etc/node.conf"), inode);
  EXPECT_THAT(ListEtc(root), ElementsAre("node.conf", "node.conf.lock"));
}

TEST(UpdateNodeConfigTest, ReturnsTheEditsOwnErrorAndWritesNothing) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, RichFile());
  absl::StatusOr<NodeConfig> config = UpdateNodeConfig(root, [](IniFile& ini) {
    // Half an edit, then a failure: the half is not written either.
    EXPECT_TRUE(ini.Set("listener", "port", "1300").ok());
    return absl::FailedPreconditionError("node n3 is not known");
  });
  EXPECT_EQ(config.status(), absl::FailedPreconditionError("node n3 is not known"));
  EXPECT_EQ(ReadAll(root + "/etc/node.conf"), RichFile());
}

TEST(UpdateNodeConfigTest, DoesNotRewriteAnUnchangedFile) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, RichFile());
  const ino_t inode = InodeOf(root + "/etc/node.conf");
  absl::StatusOr<NodeConfig> config = SetKey(root, "listener", "port", "1214");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cluster_name, "prod");
  EXPECT_EQ(InodeOf(root + "/etc/node.conf"), inode);
}

TEST(UpdateNodeConfigTest, MendsAnInvalidConfiguration) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, "[node]\nname = n1\n" + WithSecret("[listener]\nport = abc\n"));
  ASSERT_FALSE(LoadNodeConfig(root).ok());
  // Another change is refused with what is wrong...
  absl::StatusOr<NodeConfig> config = SetKey(root, "listener", "clock_skew", "30");
  EXPECT_EQ(config.status().message(),
            "[listener] port: \"abc\" is not a port number (0 to 65535)");
  // ...and mending it is accepted.
  config = SetKey(root, "listener", "port", "1300");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(LoadNodeConfig(root)->listener_port, 1300);
}

TEST(UpdateNodeConfigTest, ReportsAMissingOrUnreadableFile) {
  std::string root = MakeTestDirectory();
  auto nothing = [](IniFile&) { return absl::OkStatus(); };
  absl::StatusOr<NodeConfig> config = UpdateNodeConfig(root, nothing);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(config.status().message(), root + "/etc/node.conf does not exist");
  EXPECT_THAT(ListEtc(root), ElementsAre());  // No ROOT/etc made for a lock.

  ASSERT_TRUE(MakeDirectories(root + "/etc", 0700).ok());
  config = UpdateNodeConfig(root, nothing);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr(root + "/etc/node.conf"));

  WriteNodeConf(root, WithSecret("[node]\nname = n1\nname = n2\n"));
  config = UpdateNodeConfig(root, nothing);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(),
            root + "/etc/node.conf: line 5: duplicate key \"name\" in [node] (first on line 4)");

  EXPECT_EQ(UpdateNodeConfig("", nothing).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(UpdateNodeConfigTest, RemovesTemporaryFilesOfInterruptedWritesWhenItWrites) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, RichFile());
  // What a writer killed between creating its temporary file and the rename
  // leaves (atomic_file.cc names them so).
  ASSERT_TRUE(WriteFileAtomically(root + "/etc/.node.conf.tmp-00000000deadbeef", "[node]\n", 0600).ok());
  ASSERT_TRUE(SetKey(root, "listener", "port", "1214").ok());  // unchanged: no write
  EXPECT_THAT(ListEtc(root), ElementsAre(".node.conf.tmp-00000000deadbeef", "node.conf",
                                         "node.conf.lock"));
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(SetKey(root, "listener", "port", "1300").ok());
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(ListEtc(root), ElementsAre("node.conf", "node.conf.lock"));
  EXPECT_THAT(log, HasSubstr("removed 1 temporary file(s) of " + root + "/etc/node.conf"));
}

TEST(ReplaceNodeConfigIfUnchangedTest, InstallsAnEditOfTheCurrentFile) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, RichFile(), 0644);
  std::string edited = RichFile();
  // Written as a person would, kept as written.
  edited.replace(edited.find("port = 1214"), 11, "port=1300\nclock_skew = 30");
  absl::StatusOr<NodeConfig> config = ReplaceNodeConfigIfUnchanged(root, RichFile(), edited);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listener_port, 1300);
  EXPECT_EQ(config->clock_skew, absl::Seconds(30));
  EXPECT_EQ(ReadAll(root + "/etc/node.conf"), edited);
  EXPECT_EQ(ModeOf(root + "/etc/node.conf"), 0600u);
}

TEST(ReplaceNodeConfigIfUnchangedTest, RefusesIfAnotherWriterChangedTheFile) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, RichFile());
  ASSERT_TRUE(SetKey(root, "test", "meanwhile", "1").ok());
  const std::string changed = ReadAll(root + "/etc/node.conf");
  absl::StatusOr<NodeConfig> config =
      ReplaceNodeConfigIfUnchanged(root, RichFile(), "[node]\nname = n1\n" + WithSecret());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(config.status().message(),
            root + "/etc/node.conf was changed by another writer meanwhile");
  EXPECT_EQ(ReadAll(root + "/etc/node.conf"), changed);
}

TEST(ReplaceNodeConfigIfUnchangedTest, RefusesAnInvalidTextAndMendsABrokenFile) {
  std::string root = MakeTestDirectory();
  const std::string broken = "[node]\nname = n1\nname = n2\n" + WithSecret();
  WriteNodeConf(root, broken);
  absl::StatusOr<NodeConfig> config =
      ReplaceNodeConfigIfUnchanged(root, broken, "[node]\nname = n1\n" + WithSecret("port = x\n[listener]\nport = x\n"));
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(config.status().message(), "[listener] port: \"x\" is not a port number (0 to 65535)");
  EXPECT_EQ(ReadAll(root + "/etc/node.conf"), broken);
  config = ReplaceNodeConfigIfUnchanged(root, broken, "[node]\nname = n1\n" + WithSecret());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_name, "n1");
  EXPECT_EQ(ReadAll(root + "/etc/node.conf"), "[node]\nname = n1\n" + WithSecret());
}

// Holds the lock the way another writer would, from another open of the file.
class HeldLock {
 public:
  explicit HeldLock(const std::string& root)
      : fd_(open(NodeConfigLockPath(root).c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600)) {
    EXPECT_GE(fd_, 0) << strerror(errno);
    EXPECT_EQ(flock(fd_, LOCK_EX), 0) << strerror(errno);
  }
  ~HeldLock() { close(fd_); }

 private:
  int fd_;
};

// Every writer waits for the lock: with it held, none gets anywhere; released,
// all complete.
TEST(NodeConfigLockTest, EveryWriterWaitsForTheLock) {
  SKIP_UNLESS_HOST_NAME_IS_VALID();
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, RichFile());
  absl::StatusOr<NodeConfig> loaded = LoadNodeConfig(root);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  std::string fresh_root = MakeTestDirectory();
  ASSERT_TRUE(MakeDirectories(fresh_root + "/etc", 0700).ok());

  std::atomic<int> done{0};
  std::vector<std::thread> writers;
  {
    HeldLock held(root);
    HeldLock held_fresh(fresh_root);
    writers.emplace_back([&] {
      EXPECT_TRUE(SetKey(root, "test", "update", "1").ok());
      ++done;
    });
    writers.emplace_back([&] {
      NodeConfig config = *loaded;
      config.clock_skew = absl::Seconds(30);
      EXPECT_TRUE(SaveNodeConfig(root, config).ok());
      ++done;
    });
    writers.emplace_back([&] {
      absl::StatusOr<NodeConfig> created = LoadOrCreateNodeConfig(fresh_root);
      EXPECT_TRUE(created.ok()) << created.status();
      ++done;
    });
    absl::SleepFor(absl::Milliseconds(300));
    EXPECT_EQ(done.load(), 0);
    EXPECT_EQ(ReadAll(root + "/etc/node.conf"), RichFile());
    EXPECT_THAT(ListEtc(fresh_root), ElementsAre("node.conf.lock"));
  }
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(done.load(), 3);
  EXPECT_THAT(ListEtc(fresh_root), ::testing::Contains("node.conf"));
}

// Read, change, write back: without the lock, two writers interleaving would
// lose updates, and the counts would come out short.
TEST(NodeConfigLockTest, ConcurrentUpdatesFromThreadsAreNeverLost) {
  std::string root = MakeTestDirectory();
  WriteNodeConf(root, RichFile());
  constexpr int kThreads = 4;
  constexpr int kUpdates = 50;
  auto increment = [&root](const std::string& key) {
    return UpdateNodeConfig(root, [&key](IniFile& ini) {
      int count = 0;
      if (std::optional<std::string> value = ini.Get("test", key)) {
        if (!absl::SimpleAtoi(*value, &count)) return absl::DataLossError("not a count");
      }
      return ini.Set("test", key, absl::StrCat(count + 1));
    });
  };
  std::vector<std::thread> threads;
  for (int thread = 0; thread < kThreads; ++thread) {
    threads.emplace_back([&, thread] {
      for (int i = 0; i < kUpdates; ++i) {
        absl::StatusOr<NodeConfig> own = increment(absl::StrCat("thread", thread));
        ASSERT_TRUE(own.ok()) << own.status();
        absl::StatusOr<NodeConfig> shared = increment("shared");
        ASSERT_TRUE(shared.ok()) << shared.status();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(root);
  ASSERT_TRUE(config.ok()) << config.status();
  for (int thread = 0; thread < kThreads; ++thread) {
    EXPECT_EQ(config->ini.Get("test", absl::StrCat("thread", thread)), absl::StrCat(kUpdates));
  }
  EXPECT_EQ(config->ini.Get("test", "shared"), absl::StrCat(kThreads * kUpdates));
  EXPECT_EQ(config->ini.Get("node", "rack"), "r12");
  EXPECT_THAT(ListEtc(root), ElementsAre("node.conf", "node.conf.lock"));
}

TEST(SaveNodeConfigTest, RefusesToWriteAConfigThatWouldNotLoad) {
  std::string root = MakeTestDirectory();
  const std::string original = "[node]\nname = n1\n" + WithSecret();
  WriteNodeConf(root, original);
  absl::StatusOr<NodeConfig> loaded = LoadNodeConfig(root);
  ASSERT_TRUE(loaded.ok()) << loaded.status();

  struct Case {
    void (*change)(NodeConfig&);
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](NodeConfig& c) { c.listener_port = 70000; },
       "not saving the node configuration: [listener] port: \"70000\" is not "
       "a port number (0 to 65535)"},
      {[](NodeConfig& c) {
         c.cluster_nodes = {"n1", "a/b"};
       },
       "not saving the node configuration: [cluster] nodes: invalid node name "
       "\"a/b\": use 1-63 letters, digits, '.', '_' or '-', starting with a "
       "letter or digit"},
      {[](NodeConfig& c) { c.node_name = "n1\n[evil]"; },
       "not saving the node configuration: value of [node] name contains a "
       "line break or NUL"},
      {[](NodeConfig& c) { c.secret = "short"; },
       "not saving the node configuration: [cluster] secret: too short: use "
       "at least 16 characters"},
      {[](NodeConfig& c) { c.secret = std::string(kSecret) + "\n"; },
       "not saving the node configuration: value of [cluster] secret contains "
       "a line break or NUL"},
      {[](NodeConfig& c) { c.previous_secret = kPreviousSecret; },
       "not saving the node configuration: [cluster] previous_secret: set, "
       "but key_generation is 1: a previous secret is accepted under "
       "key_generation - 1, so key_generation must be 2 or more"},
  };
  for (const Case& test : cases) {
    NodeConfig config = *loaded;
    test.change(config);
    absl::Status status = SaveNodeConfig(root, config);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(status.message(), test.message);
    EXPECT_THAT(status.message(), Not(HasSubstr(kSecret)));
    EXPECT_THAT(status.message(), Not(HasSubstr(kPreviousSecret)));
    EXPECT_EQ(ReadAll(root + "/etc/node.conf"), original);
  }
}

// The check [cluster] addr@<node> values get, for addresses from elsewhere (a
// join request, om daemon join --address).
TEST(ParsePeerAddressTest, NormalizesOrSaysWhatIsWrong) {
  EXPECT_EQ(ParsePeerAddress("--address", "10.0.0.1").value(), "10.0.0.1:1214");
  EXPECT_EQ(ParsePeerAddress("--address", "n2.example.com:1215").value(),
            "n2.example.com:1215");
  EXPECT_EQ(ParsePeerAddress("--address", "[::1]:1216").value(), "[::1]:1216");
  absl::StatusOr<std::string> bad = ParsePeerAddress("--address", "10.0.0.1:0");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::StartsWith("--address: \"10.0.0.1:0\" is not host[:port]"));
  EXPECT_FALSE(ParsePeerAddress("--address", "[10.0.0.1]:1214").ok());
  EXPECT_FALSE(ParsePeerAddress("--address", "a b").ok());
}

}  // namespace
}  // namespace omd::config

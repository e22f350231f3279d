// om node get|set|unset|edit config, end to end: the real om binary on a real
// node.conf, as a person or a script would run it; and a set queued for the real
// omd's empty packet.
#include <dirent.h>
#include <sys/stat.h>

#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "config/node_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "process/subprocess.h"
#include "testing/daemon_harness.h"

namespace omd::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadConf(const std::string& root) {
  return config::ReadFileToString(config::NodeConfigPath(root), 1 << 20).value_or("(unreadable)");
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

// An executable script in a fresh directory: the tests' editors.
std::string WriteScript(const std::string& name, const std::string& body) {
  const std::string path = NewTempDir("editor") + "/" + name;
  EXPECT_TRUE(config::WriteFileAtomically(path, "#!/bin/sh\n" + body, 0700).ok());
  return path;
}

class OmNodeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = NewTempDir("node1");
    NodeConfSpec spec;
    spec.node_name = "node1";
    spec.cluster_nodes = {"node1", "node2"};
    spec.node_addresses = {{"node2", "127.0.0.2"}};
    spec.port = 1300;
    spec.extra = "# the heartbeats, by hand\n[hb#1]\ntype = unicast\n";
    ASSERT_TRUE(WriteNodeConf(root_, spec).ok());
    original_ = ReadConf(root_);
  }

  OmResult Om(const std::vector<std::string>& args) { return RunOm(root_, args); }

  std::string root_;
  std::string original_;
};

TEST_F(OmNodeConfigTest, GetSetAndUnsetRoundTrip) {
  OmResult get = Om({"node", "get", "--param", "listener.port"});
  EXPECT_EQ(get.exit_code, 0) << get.stderr_text;
  EXPECT_EQ(get.stdout_text, "1300\n");
  get = Om({"node", "get", "--param=cluster.addr@node2", "--output", "json"});
  EXPECT_EQ(get.stdout_text, "{\"data\": \"127.0.0.2\", \"status\": 0}\n");
  get = Om({"node", "get", "--param", "hb#1.type"});
  EXPECT_EQ(get.stdout_text, "unicast\n");

  OmResult set = Om({"node", "set", "--param", "listener.clock_skew", "--value", "30"});
  EXPECT_EQ(set.exit_code, 0) << set.stderr_text;
  EXPECT_EQ(set.stdout_text, "listener.clock_skew set\n");
  set = Om({"node", "set", "--param", "listener.clock_skew", "--value", "30", "--output", "json"});
  EXPECT_EQ(set.stdout_text,
            "{\"data\": {\"changed\": false, \"param\": \"listener.clock_skew\"}, \"status\": 0}\n");
  EXPECT_EQ(Om({"node", "get", "--param", "listener.clock_skew"}).stdout_text, "30\n");

  // A member reached by name, with a port; a section and a key nobody knows.
  set = Om({"node", "set", "--param", "cluster.addr@node3", "--value", "node3.example.com:1301",
            "--output", "json"});
  EXPECT_EQ(set.stdout_text,
            "{\"data\": {\"changed\": true, \"param\": \"cluster.addr@node3\"}, \"status\": 0}\n");
  EXPECT_EQ(Om({"node", "set", "--param", "hb#2.type", "--value", "multicast"}).exit_code, 0);
  EXPECT_EQ(Om({"node", "set", "--param", "node.rack", "--value", "r12"}).exit_code, 0);

  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(root_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->clock_skew, absl::Seconds(30));
  EXPECT_EQ(config::PeerTarget(*config, "node2"), "127.0.0.2:1214");
  EXPECT_EQ(config::PeerTarget(*config, "node3"), "node3.example.com:1301");
  EXPECT_EQ(config->ini.Get("hb#2", "type"), "multicast");
  // What nobody but a person knows is still there, comment included.
  EXPECT_THAT(ReadConf(root_), HasSubstr("# the heartbeats, by hand\n[hb#1]\ntype = unicast\n"));

  OmResult unset = Om({"node", "unset", "--param", "listener.clock_skew"});
  EXPECT_EQ(unset.exit_code, 0) << unset.stderr_text;
  EXPECT_EQ(unset.stdout_text, "listener.clock_skew unset\n");
  unset = Om({"node", "unset", "--param", "listener.clock_skew"});
  EXPECT_EQ(unset.stdout_text, "listener.clock_skew was not set\n");
  for (const char* param : {"cluster.addr@node3", "hb#2.type", "node.rack"}) {
    EXPECT_EQ(Om({"node", "unset", "--param", param}).exit_code, 0) << param;
  }
  // Back to the file written at the start, but for the empty [hb#2] it leaves.
  EXPECT_EQ(ReadConf(root_), original_ + "\n[hb#2]\n");
  EXPECT_EQ(config::LoadNodeConfig(root_)->clock_skew, absl::Seconds(60));
}

TEST_F(OmNodeConfigTest, RefusalsNameTheKeyAndLeaveTheFileUnchanged) {
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::string path = config::NodeConfigPath(root_);
  const std::vector<Case> cases = {
      {{"node", "set", "--param", "listener.port", "--value", "70000"}, 3,
       "INVALID_ARGUMENT: [listener] port: \"70000\" is not a port number (0 to 65535)"},
      {{"node", "set", "--param", "listener.addr", "--value", "localhost"}, 3,
       "INVALID_ARGUMENT: [listener] addr: \"localhost\" is not an IPv4 or IPv6 address"},
      {{"node", "set", "--param", "cluster.secret", "--value", "too-short"}, 3,
       "INVALID_ARGUMENT: [cluster] secret: too short: use at least 16 characters"},
      {{"node", "unset", "--param", "cluster.secret"}, 3,
       "INVALID_ARGUMENT: [cluster] secret: missing: set the cluster's shared secret, at least "
       "16 characters"},
      {{"node", "set", "--param", "node.name", "--value", "a/b"}, 3,
       "INVALID_ARGUMENT: [node] name: invalid node name \"a/b\": use 1-63 letters, digits, "
       "'.', '_' or '-', starting with a letter or digit"},
      {{"node", "set", "--param", "cluster.nodes", "--value", "node2"}, 3,
       "INVALID_ARGUMENT: [cluster] nodes: this node, \"node1\" ([node] name), is not listed"},
      {{"node", "set", "--param", "cluster.addr@node2", "--value", "127.0.0.2:0"}, 3,
       "INVALID_ARGUMENT: [cluster] addr@node2: \"127.0.0.2:0\" is not host[:port] (an IP "
       "address, an IPv6 one in brackets with a port, or a DNS name; port 1 to 65535, default "
       "1214): the port is not a number from 1 to 65535"},
      {{"node", "set", "--param", "cluster.addr@node2", "--value", "fe80::2:1300:"}, 3,
       "INVALID_ARGUMENT: [cluster] addr@node2: \"fe80::2:1300:\" is not host[:port]"},
      {{"node", "set", "--param", "listener.addr@node2", "--value", "127.0.0.2"}, 3,
       "INVALID_ARGUMENT: [listener] addr@node2: no longer read: a member's address is "
       "[cluster] addr@node2 = host[:port], and [listener] addr is where this node listens"},
      {{"node", "set", "--param", "listener.port", "--value", " 1214"}, 3,
       "INVALID_ARGUMENT: value of [listener] port starts or ends with whitespace"},
      {{"node", "set", "--param", "listener.port"}, 3,
       "INVALID_ARGUMENT: om node set needs --value (--value= to set an empty value)"},
      {{"node", "set", "--value", "1"}, 3,
       "INVALID_ARGUMENT: om node set needs --param section.key, e.g. --param listener.port"},
      {{"node", "unset"}, 3,
       "INVALID_ARGUMENT: om node unset needs --param section.key, e.g. --param listener.port"},
      {{"node", "get", "--param", "port"}, 3,
       "INVALID_ARGUMENT: --param \"port\" is not section.key, e.g. --param listener.port"},
      {{"node", "get", "--param", "listener."}, 3,
       "INVALID_ARGUMENT: --param \"listener.\" is not section.key"},
      {{"node", "get", "--param", "listener.port", "--value", "1"}, 3,
       "INVALID_ARGUMENT: --value is not an option of om node get"},
      {{"node", "edit", "config", "--param", "listener.port"}, 3,
       "INVALID_ARGUMENT: --param is not an option of om node edit config"},
      {{"node", "set", "--param", "listener.port", "--value", "1", "now"}, 3,
       "INVALID_ARGUMENT: unexpected argument \"now\""},
      {{"node", "get", "--param", "listener.clock_skew"}, 5,
       absl::StrCat("NOT_FOUND: \"listener.clock_skew\" is not set in ", path,
                    " (no key \"clock_skew\" in [listener])")},
      {{"node", "get", "--param", "hb#9.type"}, 5, "NOT_FOUND: \"hb#9.type\" is not set in "},
  };
  for (const Case& test : cases) {
    const std::string command = absl::StrJoin(test.args, " ");
    OmResult result = Om(test.args);
    EXPECT_EQ(result.exit_code, test.exit_code) << command << ": " << result.stderr_text;
    EXPECT_THAT(result.stderr_text, HasSubstr("om: " + test.message)) << command;
    EXPECT_EQ(result.stdout_text, "") << command;
    EXPECT_THAT(result.stderr_text, Not(HasSubstr(kTestSecret))) << command;
    EXPECT_EQ(ReadConf(root_), original_) << command;
  }
  // The same, as a document for scripts.
  OmResult json = Om({"node", "set", "--param", "listener.port", "--value", "70000", "--output",
                      "json"});
  EXPECT_EQ(json.exit_code, 3);
  EXPECT_EQ(json.stdout_text,
            "{\"error\": [\"INVALID_ARGUMENT: [listener] port: \\\"70000\\\" is not a port "
            "number (0 to 65535)\"], \"status\": 3}\n");
  EXPECT_THAT(ListEtc(root_), ElementsAre("node.conf", "node.conf.lock"));

  OmResult no_root = RunOm("/nonexistent/omd", {"node", "set", "--param", "a.b", "--value", "c"});
  EXPECT_EQ(no_root.exit_code, 5);
  EXPECT_THAT(no_root.stderr_text, HasSubstr("/nonexistent/omd/etc/node.conf does not exist"));
  no_root = RunOm("/nonexistent/omd", {"node", "get", "--param", "a.b"});
  EXPECT_EQ(no_root.exit_code, 5);
  EXPECT_THAT(no_root.stderr_text, HasSubstr("/nonexistent/omd/etc/node.conf"));
}

TEST_F(OmNodeConfigTest, AValueThatDoesNotLoadCanBeMended) {
  std::string broken = original_;
  broken.replace(broken.find("port = 1300"), 11, "port = many");
  ASSERT_TRUE(config::WriteFileAtomically(config::NodeConfigPath(root_), broken, 0600).ok());
  OmResult other = Om({"node", "set", "--param", "listener.clock_skew", "--value", "30"});
  EXPECT_EQ(other.exit_code, 3);
  EXPECT_THAT(other.stderr_text, HasSubstr("[listener] port: \"many\" is not a port number"));
  EXPECT_EQ(Om({"node", "get", "--param", "listener.port"}).stdout_text, "many\n");
  OmResult mend = Om({"node", "set", "--param", "listener.port", "--value", "1301"});
  EXPECT_EQ(mend.exit_code, 0) << mend.stderr_text;
  EXPECT_EQ(config::LoadNodeConfig(root_)->listener_port, 1301);
}

TEST_F(OmNodeConfigTest, EditConfigInstallsAValidEdit) {
  // $EDITOR is split into words, with no shell: sed gets its script as one
  // argument and the copy's path last.
  OmResult edit = RunOmWithEnvironment(
      root_, {"EDITOR=/bin/sed -i -e s/^port.*/port=1301/"}, {"node", "edit", "config"});
  EXPECT_EQ(edit.exit_code, 0) << edit.stderr_text;
  const std::string path = config::NodeConfigPath(root_);
  EXPECT_EQ(edit.stdout_text, path + " installed\n");
  std::string expected = original_;
  expected.replace(expected.find("port = 1300"), 11, "port=1301");  // as written
  EXPECT_EQ(ReadConf(root_), expected);
  EXPECT_EQ(config::LoadNodeConfig(root_)->listener_port, 1301);
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  EXPECT_THAT(ListEtc(root_), ElementsAre("node.conf", "node.conf.lock"));

  // What the editor sees: a private copy beside node.conf, never node.conf itself.
  const std::string seen = NewTempDir("seen") + "/editor";
  const std::string record = WriteScript(
      "record", absl::StrCat("stat -c '%a %n' \"$1\" > ", seen, "\necho '# edited' >> \"$1\"\n"));
  edit = RunOmWithEnvironment(root_, {"EDITOR=" + record}, {"node", "edit", "config",
                                                             "--output", "json"});
  EXPECT_EQ(edit.stdout_text, "{\"data\": {\"changed\": true}, \"status\": 0}\n")
      << edit.stderr_text;
  absl::StatusOr<std::string> seen_text = config::ReadFileToString(seen, 4096);
  ASSERT_TRUE(seen_text.ok()) << seen_text.status();
  EXPECT_THAT(*seen_text, ::testing::StartsWith("600 " + root_ + "/etc/.node.conf.edit-"));
  EXPECT_THAT(ReadConf(root_), ::testing::EndsWith("type = unicast\n# edited\n"));
  EXPECT_THAT(ListEtc(root_), ElementsAre("node.conf", "node.conf.lock"));
}

TEST_F(OmNodeConfigTest, EditConfigRefusesAnInvalidEditAndKeepsTheFile) {
  OmResult edit = RunOmWithEnvironment(
      root_, {"EDITOR=/bin/sed -i -e s/^port.*/port=99999/"}, {"node", "edit", "config"});
  EXPECT_EQ(edit.exit_code, 3);
  EXPECT_THAT(edit.stderr_text,
              HasSubstr(absl::StrCat("om: INVALID_ARGUMENT: the edited copy is not installed, ",
                                     config::NodeConfigPath(root_),
                                     " is unchanged: [listener] port: \"99999\" is not a port "
                                     "number (0 to 65535)")));
  EXPECT_EQ(ReadConf(root_), original_);

  // Broken INI, the same.
  edit = RunOmWithEnvironment(root_, {"EDITOR=/bin/sed -i -e s/^\\[hb#1\\]/[hb#1/"},
                              {"node", "edit", "config"});
  EXPECT_EQ(edit.exit_code, 3);
  EXPECT_THAT(edit.stderr_text, HasSubstr("a section header must end with ']'"));
  EXPECT_EQ(ReadConf(root_), original_);
  EXPECT_THAT(ListEtc(root_), ElementsAre("node.conf", "node.conf.lock"));
}

TEST_F(OmNodeConfigTest, EditConfigSaysWhenNothingChangedOrTheEditorFailed) {
  const std::string path = config::NodeConfigPath(root_);
  OmResult edit = RunOmWithEnvironment(root_, {"EDITOR=/bin/true"}, {"node", "edit", "config"});
  EXPECT_EQ(edit.exit_code, 0) << edit.stderr_text;
  EXPECT_EQ(edit.stdout_text, path + " unchanged\n");

  // An editor that fails: whatever it wrote is not installed.
  const std::string failing = WriteScript("failing", "echo 'port = 1' >> \"$1\"\nexit 2\n");
  edit = RunOmWithEnvironment(root_, {"EDITOR=" + failing}, {"node", "edit", "config"});
  EXPECT_EQ(edit.exit_code, 10);  // ABORTED
  EXPECT_THAT(edit.stderr_text, HasSubstr("om: ABORTED: the editor ("));
  EXPECT_THAT(edit.stderr_text,
              HasSubstr(absl::StrCat(") exited with status 2: ", path, " is unchanged")));

  edit = RunOmWithEnvironment(root_, {"EDITOR=no-such-editor-7f3a"}, {"node", "edit", "config"});
  EXPECT_EQ(edit.exit_code, 5);
  EXPECT_THAT(edit.stderr_text,
              HasSubstr("cannot run the editor ($EDITOR, default vi): program not found: "
                        "no-such-editor-7f3a"));
  EXPECT_EQ(ReadConf(root_), original_);
  EXPECT_THAT(ListEtc(root_), ElementsAre("node.conf"));  // no copy left, no write tried
}

TEST_F(OmNodeConfigTest, EditConfigRunsViWithoutEditor) {
  const std::string vi = WriteScript("vi", "/bin/sed -i -e s/^port.*/port=1302/ \"$1\"\n");
  const std::string bin = vi.substr(0, vi.rfind('/'));
  OmResult edit = RunOmWithEnvironment(root_, {"-u", "EDITOR", "PATH=" + bin},
                                       {"node", "edit", "config"});
  EXPECT_EQ(edit.exit_code, 0) << edit.stderr_text;
  EXPECT_EQ(config::LoadNodeConfig(root_)->listener_port, 1302);
}

// Another writer changes node.conf while the editor runs (here, the editor itself
// runs om node set): the edit is refused, and the other writer's change stays.
TEST_F(OmNodeConfigTest, EditConfigRefusesToOverwriteAChangeMadeMeanwhile) {
  const std::string editor = WriteScript(
      "racing", absl::StrCat(OmPath(), " --root ", root_,
                             " node set --param test.meanwhile --value 1 || exit 9\n",
                             "/bin/sed -i -e s/^port.*/port=1303/ \"$1\"\n"));
  OmResult edit = RunOmWithEnvironment(root_, {"EDITOR=" + editor}, {"node", "edit", "config"});
  EXPECT_EQ(edit.exit_code, 10) << edit.stderr_text;  // ABORTED
  EXPECT_THAT(edit.stderr_text,
              HasSubstr(absl::StrCat("om: ABORTED: the edited copy is not installed: ",
                                     config::NodeConfigPath(root_),
                                     " was changed by another writer meanwhile; run om node "
                                     "edit config again")));
  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(root_);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ini.Get("test", "meanwhile"), "1");
  EXPECT_EQ(config->listener_port, 1300);
  EXPECT_THAT(ListEtc(root_), ElementsAre("node.conf", "node.conf.lock"));
}

// Two scripts each running om node set in a loop, on keys of their own: every
// om process reads, changes and writes the file, and none loses another's key.
TEST_F(OmNodeConfigTest, ConcurrentSetsInTwoProcessLoopsLoseNothing) {
  constexpr int kSets = 25;
  std::vector<std::thread> loops;
  std::vector<int> failures(2, 0);
  for (int loop = 0; loop < 2; ++loop) {
    loops.emplace_back([&, loop] {
      for (int i = 0; i < kSets; ++i) {
        OmResult set = Om({"node", "set", "--param", absl::StrCat("loop", loop, ".key", i),
                           "--value", absl::StrCat(i)});
        if (set.exit_code != 0) ++failures[loop];
      }
    });
  }
  for (std::thread& loop : loops) loop.join();
  EXPECT_THAT(failures, ElementsAre(0, 0));
  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(root_);
  ASSERT_TRUE(config.ok()) << config.status();
  for (int loop = 0; loop < 2; ++loop) {
    const std::string section = absl::StrCat("loop", loop);
    EXPECT_EQ(config->ini.Entries(section).size(), static_cast<size_t>(kSets)) << section;
    for (int i = 0; i < kSets; ++i) {
      EXPECT_EQ(config->ini.Get(section, absl::StrCat("key", i)), absl::StrCat(i))
          << section << ".key" << i;
    }
  }
  EXPECT_THAT(ReadConf(root_), ::testing::StartsWith(original_));
}

TEST(OmNodeHelpTest, ListsTheNodeCommands) {
  OmResult help = RunOm(NewTempDir("help"), {"--help"});
  const std::string text = help.stdout_text + help.stderr_text;
  for (const char* command :
       {"om node get ", "om node set ", "om node unset ", "om node edit config "}) {
    EXPECT_THAT(text, HasSubstr(command));
  }
  EXPECT_THAT(text, HasSubstr("--param"));
  EXPECT_THAT(text, HasSubstr("--value"));
}

// A set queued for the daemon, run by its empty packet: the command's options
// are allowed in a queued action, and om's global flags still are not.
TEST(OmNodeQueuedTest, TheDaemonRunsAQueuedSet) {
  DaemonProcess::Options options;
  options.node.node_name = "node1";
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string root = (*daemon)->root();
  const std::string actions = root + "/var/actions";
  ASSERT_TRUE(config::MakeDirectories(actions + "/queue", 0750).ok());
  ASSERT_TRUE(config::WriteFileAtomically(
                  actions + "/queue/001-set.json",
                  "[\"node\", \"set\", \"--param\", \"listener.clock_skew\", \"--value=45\"]", 0600)
                  .ok());
  ASSERT_TRUE(config::WriteFileAtomically(
                  actions + "/queue/002-root.json",
                  "[\"node\", \"set\", \"--param\", \"test.x\", \"--value\", \"1\", \"--root=/\"]",
                  0600)
                  .ok());
  OmResult sent = RunOm(root, {"daemon", "empty-packet"});
  ASSERT_EQ(sent.exit_code, 0) << sent.stderr_text;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  struct stat info;
  while ((stat((actions + "/done/001-set.json").c_str(), &info) != 0 ||
          stat((actions + "/failed/002-root.json").c_str(), &info) != 0) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(RunOm(root, {"node", "get", "--param", "listener.clock_skew"}).stdout_text, "45\n");
  absl::StatusOr<std::string> refused =
      config::ReadFileToString(actions + "/failed/002-root.json.out", 1 << 20);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_THAT(*refused, HasSubstr("the options of om node set: --param, --value"));
  EXPECT_EQ(RunOm(root, {"node", "get", "--param", "test.x"}).exit_code, 5);
  EXPECT_EQ((*daemon)->Stop(), absl::OkStatus());
}

}  // namespace
}  // namespace omd::testing

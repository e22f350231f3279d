#include "service/service_config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::service {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string NewRoot() {
  static int count = 0;
  const std::string root =
      absl::StrCat(std::getenv("TEST_TMPDIR"), "/root", ++count, "-", getpid());
  EXPECT_TRUE(config::MakeDirectories(root + "/etc", 0755).ok());
  return root;
}

absl::Status ParseError(const std::string& text) {
  return ParseServiceConfig("web", text, "node1").status();
}

TEST(ServiceNameTest, ValidNames) {
  for (const std::string& name :
       std::vector<std::string>{"web", "a", "web-1", "db.prod", "0x", std::string(63, 'a')}) {
    EXPECT_TRUE(ValidateServiceName(name).ok()) << name;
  }
}

TEST(ServiceNameTest, InvalidNames) {
  for (const std::string& name : std::vector<std::string>
       {"", "node", "daemon", "svc", "../x", "a/b", "A", "Web", "-a", ".a", "a..b", "a_b",
        "a b", std::string(64, 'a'), std::string("a\0b", 3), "a\n"}) {
    absl::Status status = ValidateServiceName(name);
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << name << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr("service name")) << name;
  }
}

TEST(ArgumentsTest, Splits) {
  EXPECT_THAT(*SplitArguments("/bin/x  --a\tb "), ElementsAre("/bin/x", "--a", "b"));
  EXPECT_THAT(*SplitArguments("x \"a b\" \"\" c\"d e\"f"),
              ElementsAre("x", "a b", "", "cd ef"));
  EXPECT_THAT(*SplitArguments(R"(x "q\"q" "b\\s" "\n" a\b)"),
              ElementsAre("x", "q\"q", "b\\s", "\\n", "a\\b"));
  EXPECT_TRUE(SplitArguments("")->empty());
  EXPECT_TRUE(SplitArguments("  \t ")->empty());
}

TEST(ArgumentsTest, UnterminatedQuote) {
  for (const char* text : {"x \"a b", "\"", R"(x "a\")"}) {
    absl::StatusOr<std::vector<std::string>> words = SplitArguments(text);
    EXPECT_TRUE(absl::IsInvalidArgument(words.status())) << text;
    EXPECT_THAT(words.status().message(), HasSubstr("unterminated")) << text;
  }
}

TEST(ArgumentsTest, JoinReadsBack) {
  const std::vector<std::vector<std::string>> lists = {
      {"/bin/x", "plain"}, {"a b", "", "q\"q", "b\\s", "tab\there"}, {}};
  for (const std::vector<std::string>& words : lists) {
    EXPECT_EQ(*SplitArguments(JoinArguments(words)), words) << JoinArguments(words);
  }
  EXPECT_EQ(JoinArguments({"/bin/x", "a b"}), "/bin/x \"a b\"");
}

TEST(ParseServiceConfigTest, Full) {
  absl::StatusOr<ServiceConfig> config = ParseServiceConfig("web", R"(# a comment
[DEFAULT]
nodes = n1  n2
topology = flex

[app#10]
start = /bin/ten

[app#2]
start = /usr/bin/myapp --daemon "a b"
stop = /usr/bin/stop
check = /usr/bin/check -x
restart = 3
timeout = 5m
)",
                                                            "node1");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name, "web");
  EXPECT_THAT(config->nodes, ElementsAre("n1", "n2"));
  EXPECT_EQ(config->topology, Topology::kFlex);
  ASSERT_EQ(config->resources.size(), 2u);
  const Resource& two = config->resources[0];
  EXPECT_EQ(two.id, "app#2");
  EXPECT_THAT(two.start, ElementsAre("/usr/bin/myapp", "--daemon", "a b"));
  EXPECT_THAT(two.stop, ElementsAre("/usr/bin/stop"));
  EXPECT_THAT(two.check, ElementsAre("/usr/bin/check", "-x"));
  EXPECT_EQ(two.restart, 3);
  EXPECT_EQ(two.timeout, absl::Minutes(5));
  const Resource& ten = config->resources[1];
  EXPECT_EQ(ten.id, "app#10");
  EXPECT_TRUE(ten.stop.empty());
  EXPECT_TRUE(ten.check.empty());
  EXPECT_EQ(ten.restart, 0);
  EXPECT_EQ(ten.timeout, absl::Seconds(60));
}

TEST(ParseServiceConfigTest, Defaults) {
  absl::StatusOr<ServiceConfig> config = ParseServiceConfig("web", "", "node1");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->nodes, ElementsAre("node1"));
  EXPECT_EQ(config->topology, Topology::kFailover);
  EXPECT_TRUE(config->resources.empty());
  EXPECT_EQ(TopologyName(Topology::kFailover), "failover");
  EXPECT_EQ(TopologyName(Topology::kFlex), "flex");
}

TEST(ParseServiceConfigTest, EachBadValueNamesItsKey) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"[DEFAULT]\nnodes = n1 n1\n", "[DEFAULT] nodes: \"n1\" is listed twice"},
      {"[DEFAULT]\nnodes =\n", "[DEFAULT] nodes is empty"},
      {"[DEFAULT]\nnodes = n1 a/b\n", "[DEFAULT] nodes: invalid node name"},
      {"[DEFAULT]\nnodes = ../x\n", "[DEFAULT] nodes: invalid node name"},
      {"[DEFAULT]\ntopology = active\n", "[DEFAULT] topology: \"active\" is not failover or flex"},
      {"[DEFAULT]\ncolor = red\n", "[DEFAULT] unknown key \"color\""},
      {"[app#1]\ncolor = red\n", "[app#1] unknown key \"color\""},
      {"[app#1]\nrestart = x\n", "[app#1] restart: \"x\" is not a number of restarts from 0 to 100"},
      {"[app#1]\nrestart = -1\n", "[app#1] restart: \"-1\""},
      {"[app#1]\nrestart = 101\n", "[app#1] restart: \"101\""},
      {"[app#1]\ntimeout = 0.5s\n", "[app#1] timeout: \"0.5s\" is not a duration from 1s to 1h"},
      {"[app#1]\ntimeout = 2h\n", "[app#1] timeout: \"2h\""},
      {"[app#1]\ntimeout = 30\n", "[app#1] timeout: \"30\""},
      {"[app#1]\ntimeout = inf\n", "[app#1] timeout: \"inf\""},
      {"[app#1]\nstart = /bin/x \"a\n", "[app#1] start: unterminated double quote"},
      {"[app#1]\nstop = \"\n", "[app#1] stop: unterminated"},
      {"[app#1]\ncheck = \"\n", "[app#1] check: unterminated"},
      {"[fs#1]\n", "[fs#1]: unknown resource type"},
      {"[app#0]\n", "[app#0]: unknown resource type"},
      {"[app#01]\n", "[app#01]: unknown resource type"},
      {"[app#x]\n", "[app#x]: unknown resource type"},
      {"[app#]\n", "[app#]: unknown resource type"},
      {"[app]\n", "[app]: unknown section"},
      {"[app#1]\n[app#1]\n", "duplicate"},
      {"nodes = n1\n", "line 1"},
  };
  for (const Case& c : cases) {
    absl::Status status = ParseError(c.text);
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << c.text << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr(c.expected)) << c.text;
  }
  EXPECT_TRUE(ParseServiceConfig("web", "", "").status().code() ==
              absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::IsInvalidArgument(ParseServiceConfig("node", "", "node1").status()));
}

TEST(ParseServiceConfigTest, Bounds) {
  EXPECT_TRUE(ParseError("[app#1]\nrestart = 0\ntimeout = 1s\n").ok());
  EXPECT_TRUE(ParseError("[app#1]\nrestart = 100\ntimeout = 1h\n").ok());
  EXPECT_TRUE(ParseError("[app#999999999]\n").ok());
}

TEST(ServiceFilesTest, CreateReadListDelete) {
  const std::string root = NewRoot();
  ASSERT_TRUE(config::WriteFileAtomically(root + "/etc/node.conf", "[node]\n", 0600).ok());
  const std::string text = "[DEFAULT]\nnodes = node1\n\n[app#1]\nstart = /bin/true\n";
  ASSERT_TRUE(CreateService(root, "web", text, "node1").ok());
  ASSERT_TRUE(CreateService(root, "db", "", "node1").ok());
  EXPECT_EQ(ServiceConfigPath(root, "web"), root + "/etc/web.conf");

  struct stat info;
  ASSERT_EQ(stat((root + "/etc/web.conf").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644u);

  absl::StatusOr<ServiceConfigFile> file = ReadServiceConfigFile(root, "web");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->text, text);
  EXPECT_EQ(absl::ToUnixSeconds(file->mtime), info.st_mtim.tv_sec);

  absl::StatusOr<ServiceConfig> config = LoadServiceConfig(root, "web", "other");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->resources[0].start, ElementsAre("/bin/true"));

  // node.conf, temporaries, bad names and directories are no services.
  ASSERT_TRUE(config::WriteFileAtomically(root + "/etc/.web.conf.tmp-x", "", 0600).ok());
  ASSERT_TRUE(config::WriteFileAtomically(root + "/etc/Upper.conf", "", 0600).ok());
  ASSERT_TRUE(config::WriteFileAtomically(root + "/etc/notes.txt", "", 0600).ok());
  ASSERT_EQ(mkdir((root + "/etc/dir.conf").c_str(), 0755), 0);
  EXPECT_THAT(*ListServices(root), ElementsAre("db", "web"));

  absl::Status twice = CreateService(root, "web", "", "node1");
  EXPECT_TRUE(absl::IsAlreadyExists(twice)) << twice;
  EXPECT_THAT(twice.message(), HasSubstr("service \"web\" already exists"));
  EXPECT_EQ(ReadServiceConfigFile(root, "web")->text, text);  // unchanged

  ASSERT_TRUE(DeleteService(root, "web").ok());
  EXPECT_THAT(*ListServices(root), ElementsAre("db"));
  absl::Status gone = DeleteService(root, "web");
  EXPECT_TRUE(absl::IsNotFound(gone)) << gone;
  absl::Status read = ReadServiceConfigFile(root, "web").status();
  EXPECT_TRUE(absl::IsNotFound(read)) << read;
  EXPECT_THAT(read.message(), HasSubstr("service \"web\" does not exist"));
  EXPECT_TRUE(absl::IsNotFound(LoadServiceConfig(root, "web", "node1").status()));
}

TEST(ServiceFilesTest, BadInputChangesNothing) {
  const std::string root = NewRoot();
  absl::Status bad = CreateService(root, "web", "[app#1]\nrestart = x\n", "node1");
  EXPECT_TRUE(absl::IsInvalidArgument(bad)) << bad;
  for (const char* name : {"node", "../x", "A", "a..b", "-a"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(CreateService(root, name, "", "node1"))) << name;
    EXPECT_TRUE(absl::IsInvalidArgument(DeleteService(root, name))) << name;
    EXPECT_TRUE(absl::IsInvalidArgument(ReadServiceConfigFile(root, name).status())) << name;
  }
  EXPECT_TRUE(ListServices(root)->empty());
  EXPECT_TRUE(ListServices(root + "/none")->empty());
}

TEST(ServiceFilesTest, LoadNamesTheFile) {
  const std::string root = NewRoot();
  ASSERT_TRUE(config::WriteFileAtomically(root + "/etc/web.conf", "[app#1]\nrestart = x\n",
                                          0644)
                  .ok());
  absl::Status status = LoadServiceConfig(root, "web", "node1").status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("web.conf: [app#1] restart"));
}

}  // namespace
}  // namespace omd::service

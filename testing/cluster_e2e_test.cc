// Join and leave end to end: real omd processes on 127.0.0.1, .2 and .3, made a
// cluster with the real `om daemon join`, taken apart with `om daemon leave`.
// Waits are polls with generous deadlines: a daemon takes its new node.conf
// within its reloader's poll, or at once after a write of its own.
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/agent_client.h"
#include "config/atomic_file.h"
#include "config/envelope_options.h"
#include "config/node_config.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/omd.pb.h"
#include "testing/daemon_harness.h"

namespace omd::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kDeadline = absl::Seconds(60);
// The cluster's: node1 starts with it; every joiner is given it.
constexpr char kClusterSecret[] = "the-cluster-secret-0123456789abcdef";

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout = kDeadline) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return true;
}

std::string ReadText(const std::string& path) {
  return config::ReadFileToString(path, 1 << 20).value_or("(unreadable)");
}

struct Node {
  std::string name;
  std::unique_ptr<DaemonProcess> daemon;
  const std::string& root() const { return daemon->root(); }
  std::string conf_path() const { return config::NodeConfigPath(root()); }
  std::string conf_text() const { return ReadText(conf_path()); }
  config::NodeConfig conf() const {
    return config::LoadNodeConfig(root()).value_or(config::NodeConfig());
  }
};

class ClusterTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto& [name, node] : nodes_) {
      if (node.daemon == nullptr) continue;
      absl::Status stopped = node.daemon->Stop();
      EXPECT_TRUE(stopped.ok()) << name << ": " << stopped;
      if (HasFailure()) std::cerr << "--- " << name << "'s log:\n" << node.daemon->Log();
    }
  }

  // A standalone node: node1 is the cluster's first member (cluster "test",
  // kClusterSecret); any other is alone in a cluster of its own, with its own
  // secret.
  Node& StartNode(const std::string& name, const std::string& ip) {
    DaemonProcess::Options options;
    options.node.node_name = name;
    options.node.listen_address = ip;
    if (name != "node1") {
      options.node.cluster_name = "default";
      options.node.secret = absl::StrCat("own-secret-of-", name, "-0123456789");
    } else {
      options.node.secret = kClusterSecret;
    }
    absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
    EXPECT_TRUE(daemon.ok()) << daemon.status();
    Node& node = nodes_[name];
    node.name = name;
    node.daemon = daemon.ok() ? *std::move(daemon) : nullptr;
    return node;
  }

  std::string SecretFile(const std::string& secret) {
    const std::string path = NewTempDir("secret") + "/cluster.secret";
    EXPECT_TRUE(config::WriteFileAtomically(path, secret + "\n", 0600).ok());
    return path;
  }

  OmResult Join(const Node& joiner, const Node& through,
                const std::string& secret = kClusterSecret) {
    return RunOm(joiner.root(), {"daemon", "join", "--node", through.daemon->address(),
                                 "--secret_file", SecretFile(secret)});
  }

  // The nodes `node`'s daemon has in use (om daemon status, over its local
  // control channel): what its gate admits.
  std::vector<std::string> DaemonSees(const Node& node) {
    OmResult status = RunOm(node.root(), {"daemon", "status", "--output", "json"});
    google::protobuf::Struct document;
    if (status.exit_code != 0 ||
        !google::protobuf::util::JsonStringToMessage(status.stdout_text, &document).ok()) {
      return {"(om daemon status failed: " + status.stderr_text + status.stdout_text + ")"};
    }
    std::vector<std::string> names;
    for (const auto& [name, value] :
         document.fields().at("data").struct_value().fields().at("nodes").struct_value().fields()) {
      names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  // Waits until every node of `members` lists exactly `members` in its node.conf
  // and in its daemon; then each calls each other's daemon once, as a member.
  void ExpectCluster(const std::vector<std::string>& members) {
    for (const std::string& name : members) {
      const Node& node = nodes_.at(name);
      EXPECT_TRUE(WaitUntil([&] { return node.conf().cluster_nodes == members; }))
          << name << "'s node.conf:\n" << node.conf_text();
      EXPECT_TRUE(WaitUntil([&] { return DaemonSees(node) == members; }))
          << name << "'s daemon sees " << absl::StrJoin(DaemonSees(node), " ");
      const config::NodeConfig conf = node.conf();
      EXPECT_EQ(conf.cluster_name, "test") << name;
      EXPECT_EQ(conf.secret, kClusterSecret) << name;
      for (const std::string& other : members) {
        if (other == name) continue;
        // Every member reaches every other at its own address.
        EXPECT_EQ(config::PeerTarget(conf, other), nodes_.at(other).daemon->address())
            << name << " -> " << other;
      }
    }
    for (const std::string& from : members) {
      for (const std::string& to : members) {
        if (from == to) continue;
        OmResult call = RunOm(nodes_.at(from).root(),
                              {"--server", nodes_.at(to).daemon->address(), "--node", to,
                               "daemon", "blacklist", "status"});
        EXPECT_EQ(call.exit_code, 0) << from << " -> " << to << ": " << call.stderr_text;
      }
    }
  }

  std::map<std::string, Node> nodes_;
};

// The README's three-node cluster: node2 joins through node1, node3 through node2.
TEST_F(ClusterTest, ThreeNodesJoinOneAfterTheOther) {
  Node& node1 = StartNode("node1", "127.0.0.1");
  Node& node2 = StartNode("node2", "127.0.0.2");
  Node& node3 = StartNode("node3", "127.0.0.3");
  OmResult joined = Join(node2, node1);
  ASSERT_EQ(joined.exit_code, 0) << joined.stderr_text;
  EXPECT_EQ(joined.stdout_text, "node1: Joined cluster test: nodes node1 node2.\n");
  ExpectCluster({"node1", "node2"});

  joined = RunOm(node3.root(), {"daemon", "join", "--node", node2.daemon->address(),
                                "--secret_file", SecretFile(kClusterSecret), "--output",
                                "json"});
  ASSERT_EQ(joined.exit_code, 0) << joined.stderr_text;
  EXPECT_EQ(joined.stdout_text,
            "{\"data\": {\"cluster\": \"test\", \"nodes\": [\"node1\", \"node2\", \"node3\"]}, "
            "\"node\": \"node2\", \"status\": 0}\n");
  ExpectCluster({"node1", "node2", "node3"});
  // Two changes made the membership; every member holds that version.
  for (const Node* node : {&node1, &node2, &node3}) {
    EXPECT_EQ(node->conf().ini.Get("cluster", "nodes_version"), "2") << node->name;
  }
  EXPECT_THAT(node1.daemon->Log(), HasSubstr("membership: join of node2 done"));
  EXPECT_THAT(node2.daemon->Log(), HasSubstr("membership: join of node3 done"));
  for (const Node* node : {&node1, &node2, &node3}) {
    EXPECT_THAT(node->daemon->Log(), Not(HasSubstr(kClusterSecret))) << node->name;
  }
}

// node3 joins through node1 while node4 joins through node2: the lock orders the
// two changes, and both joiners end up in every member's node.conf and gate.
TEST_F(ClusterTest, TwoJoinsAtOnceThroughTwoMembers) {
  Node& node1 = StartNode("node1", "127.0.0.1");
  Node& node2 = StartNode("node2", "127.0.0.2");
  Node& node3 = StartNode("node3", "127.0.0.3");
  Node& node4 = StartNode("node4", "127.0.0.2");
  ASSERT_EQ(Join(node2, node1).exit_code, 0);
  ExpectCluster({"node1", "node2"});

  OmResult via1, via2;
  std::thread first([&] { via1 = Join(node3, node1); });
  std::thread second([&] { via2 = Join(node4, node2); });
  first.join();
  second.join();
  ASSERT_EQ(via1.exit_code, 0) << via1.stderr_text;
  ASSERT_EQ(via2.exit_code, 0) << via2.stderr_text;
  ExpectCluster({"node1", "node2", "node3", "node4"});
  for (const Node* node : {&node1, &node2, &node3, &node4}) {
    EXPECT_EQ(node->conf().ini.Get("cluster", "nodes_version"), "3") << node->name;
  }
}

// Joining the cluster this node is in already changes nothing.
TEST_F(ClusterTest, JoiningTwiceIsHarmless) {
  Node& node1 = StartNode("node1", "127.0.0.1");
  Node& node2 = StartNode("node2", "127.0.0.2");
  ASSERT_EQ(Join(node2, node1).exit_code, 0);
  ExpectCluster({"node1", "node2"});
  const std::string node1_before = node1.conf_text();
  const std::string node2_before = node2.conf_text();
  // This time with the secret on the command line.
  OmResult again = RunOm(node2.root(), {"daemon", "join", "--node", node1.daemon->address(),
                                        "--secret", kClusterSecret});
  EXPECT_EQ(again.exit_code, 0) << again.stderr_text;
  EXPECT_EQ(again.stdout_text, "node1: Joined cluster test: nodes node1 node2.\n");
  EXPECT_EQ(node1.conf_text(), node1_before);
  EXPECT_EQ(node2.conf_text(), node2_before);
  ExpectCluster({"node1", "node2"});
}

// A wrong secret: UNAUTHENTICATED at once, counted at node1 against the joiner's
// source, and neither node.conf changes.
TEST_F(ClusterTest, AWrongSecretIsRefusedCountedAndChangesNothing) {
  Node& node1 = StartNode("node1", "127.0.0.1");
  Node& node2 = StartNode("node2", "127.0.0.2");
  const std::string node1_before = node1.conf_text();
  const std::string node2_before = node2.conf_text();
  const std::string wrong = "not-the-cluster-secret-0123456789";
  OmResult refused = Join(node2, node1, wrong);
  EXPECT_EQ(refused.exit_code, 16);  // UNAUTHENTICATED
  EXPECT_THAT(refused.stderr_text,
              HasSubstr(absl::StrCat("UNAUTHENTICATED: cannot join through ",
                                     node1.daemon->address(), ": message authentication failed")));
  EXPECT_THAT(refused.stderr_text + refused.stdout_text, Not(HasSubstr(wrong)));
  EXPECT_EQ(node1.conf_text(), node1_before);
  EXPECT_EQ(node2.conf_text(), node2_before);

  OmResult counted = RunOm(node1.root(), {"daemon", "blacklist", "status", "--output", "json"});
  EXPECT_EQ(counted.stdout_text,
            "{\"data\": {\"(non-member)@127.0.0.1\": 1}, \"node\": \"node1\", \"status\": 0}\n");
  counted = RunOm(node1.root(), {"daemon", "blacklist", "status"});
  EXPECT_THAT(counted.stdout_text, HasSubstr("(non-member)"));
  EXPECT_THAT(counted.stdout_text, HasSubstr("counting"));
  EXPECT_THAT(node1.daemon->Log(), Not(HasSubstr(wrong)));
  // The right secret still gets in (and resets the count).
  OmResult joined = Join(node2, node1);
  EXPECT_EQ(joined.exit_code, 0) << joined.stderr_text;
  ExpectCluster({"node1", "node2"});
}

// node3 leaves: the others drop it, it stands alone with a new secret, and the
// members refuse it from then on.
TEST_F(ClusterTest, ALeaverIsRefusedAfterwards) {
  Node& node1 = StartNode("node1", "127.0.0.1");
  Node& node2 = StartNode("node2", "127.0.0.2");
  Node& node3 = StartNode("node3", "127.0.0.3");
  ASSERT_EQ(Join(node2, node1).exit_code, 0);
  ASSERT_EQ(Join(node3, node1).exit_code, 0);
  ExpectCluster({"node1", "node2", "node3"});

  OmResult left = RunOm(node3.root(), {"daemon", "leave"});
  ASSERT_EQ(left.exit_code, 0) << left.stderr_text;
  EXPECT_EQ(left.stdout_text,
            "node1: Left cluster test: this node stands alone now, with a new secret.\n");
  ExpectCluster({"node1", "node2"});
  const config::NodeConfig alone = node3.conf();
  EXPECT_THAT(alone.cluster_nodes, ElementsAre("node3"));
  EXPECT_NE(alone.secret, kClusterSecret);
  EXPECT_EQ(alone.secret.size(), 64u);
  // Its own address stays; the others' went.
  EXPECT_EQ(alone.node_addresses,
            (std::map<std::string, std::string>{{"node3", node3.daemon->address()}}));
  EXPECT_EQ(alone.ini.Get("cluster", "nodes_version"), std::nullopt);
  EXPECT_TRUE(WaitUntil([&] { return DaemonSees(node3) == std::vector<std::string>{"node3"}; }));

  OmResult refused = RunOm(node3.root(), {"--server", node1.daemon->address(), "--node",
                                          "node1", "daemon", "blacklist", "status"});
  EXPECT_EQ(refused.exit_code, 7);  // PERMISSION_DENIED
  EXPECT_THAT(refused.stderr_text, HasSubstr("node node3 is not a member of the cluster"));
  // And node3's daemon no longer takes the cluster's messages.
  OmResult from_node1 = RunOm(node1.root(), {"--server", node3.daemon->address(), "--node",
                                             "node3", "daemon", "blacklist", "status"});
  EXPECT_EQ(from_node1.exit_code, 7);
  EXPECT_THAT(from_node1.stderr_text, HasSubstr("node node1 is not a member of the cluster"));

  OmResult again = RunOm(node3.root(), {"daemon", "leave"});
  EXPECT_EQ(again.exit_code, 9);  // FAILED_PRECONDITION
  EXPECT_THAT(again.stderr_text,
              HasSubstr("this node, node3, is in no cluster with other members"));
  // It may join again, with the cluster's secret.
  OmResult rejoined = Join(node3, node2);
  EXPECT_EQ(rejoined.exit_code, 0) << rejoined.stderr_text;
  ExpectCluster({"node1", "node2", "node3"});
}

// A member that is down is skipped, so the join goes through, and the info says
// so; back within the catch-up time, it gets the change.
TEST_F(ClusterTest, AnUnreachableMemberIsSkippedThenCaughtUp) {
  Node& node1 = StartNode("node1", "127.0.0.1");
  Node& node2 = StartNode("node2", "127.0.0.2");
  Node& node3 = StartNode("node3", "127.0.0.3");
  ASSERT_EQ(Join(node2, node1).exit_code, 0);
  ExpectCluster({"node1", "node2"});
  const std::string node2_address = node2.daemon->address();
  ASSERT_EQ(node2.daemon->Stop(), absl::OkStatus());

  OmResult joined = Join(node3, node1);
  ASSERT_EQ(joined.exit_code, 0) << joined.stderr_text;
  EXPECT_THAT(joined.stdout_text, HasSubstr("Joined cluster test: nodes node1 node2 node3."));
  EXPECT_THAT(joined.stdout_text, HasSubstr("node2: skipped ("));
  EXPECT_THAT(node2.conf().cluster_nodes, ElementsAre("node1", "node2"));  // it was down

  // node2 back on its port, on the node.conf it had.
  ASSERT_TRUE(config::UpdateNodeConfig(node2.root(), [&](config::IniFile& ini) {
                return ini.Set("listener", "port",
                               node2_address.substr(node2_address.rfind(':') + 1));
              }).ok());
  DaemonProcess::Options restart;
  restart.root = node2.root();
  restart.keep_node_conf = true;
  absl::StatusOr<std::unique_ptr<DaemonProcess>> back = DaemonProcess::Start(restart);
  ASSERT_TRUE(back.ok()) << back.status();
  node2.daemon = *std::move(back);
  ASSERT_EQ(node2.daemon->address(), node2_address);
  ExpectCluster({"node1", "node2", "node3"});
  EXPECT_THAT(node1.daemon->Log(), HasSubstr("membership: node2 caught up"));
}

TEST_F(ClusterTest, JoinRefusesBadInvocationsClearly) {
  Node& node1 = StartNode("node1", "127.0.0.1");
  Node& node2 = StartNode("node2", "127.0.0.2");
  const std::string node2_before = node2.conf_text();
  const std::string file = SecretFile(kClusterSecret);
  const std::string peer = node1.daemon->address();
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"daemon", "join", "--secret_file", file}, 3, "om daemon join needs --node"},
      {{"daemon", "join", "--node", peer}, 3, "om daemon join needs the cluster's secret"},
      {{"daemon", "join", "--node", peer, "--secret_file", file, "--secret", kClusterSecret},
       3, "give the secret once"},
      {{"daemon", "join", "--node", peer, "--secret", "short"}, 3,
       "the cluster's secret is shorter than 16 characters"},
      {{"daemon", "join", "--node", peer, "--secret_file", "/nonexistent/secret"}, 5,
       "--secret_file: cannot open /nonexistent/secret"},
      {{"daemon", "join", "--node", "no such host", "--secret_file", file}, 3,
       "--node: \"no such host\" is not host[:port]"},
      {{"daemon", "join", "--node", "127.0.0.1:0", "--secret_file", file}, 3,
       "--node: \"127.0.0.1:0\" is not host[:port]"},
      {{"daemon", "join", "--node", peer, "--secret_file", file, "--address", "10.0.0.1:x"}, 3,
       "--address: \"10.0.0.1:x\" is not host[:port]"},
      {{"--server", peer, "daemon", "join", "--node", peer, "--secret_file", file}, 3,
       "not with --server"},
      {{"daemon", "join", "extra", "--node", peer, "--secret_file", file}, 3,
       "unexpected argument \"extra\""},
      // Nobody there: UNAVAILABLE, nothing changed.
      {{"--timeout", "3s", "daemon", "join", "--node", "127.0.0.1:1", "--secret_file", file},
       14, "cannot join through 127.0.0.1:1"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    OmResult result = RunOm(node2.root(), c.args);
    EXPECT_EQ(result.exit_code, c.exit_code) << result.stderr_text;
    EXPECT_THAT(result.stderr_text, HasSubstr(c.message));
    EXPECT_THAT(result.stderr_text + result.stdout_text, Not(HasSubstr(kClusterSecret)));
  }
  OmResult no_root = RunOm("/nonexistent/omd", {"daemon", "join", "--node", peer,
                                                "--secret_file", file});
  EXPECT_EQ(no_root.exit_code, 5);  // NOT_FOUND
  EXPECT_THAT(no_root.stderr_text, HasSubstr("/nonexistent/omd/etc/node.conf"));
  EXPECT_EQ(node2.conf_text(), node2_before);
  EXPECT_THAT(node1.conf().cluster_nodes, ElementsAre("node1"));
  // Nothing of it reached node1's gate.
  EXPECT_EQ(RunOm(node1.root(), {"daemon", "blacklist", "status", "--output", "json"}).stdout_text,
            "{\"data\": {}, \"node\": \"node1\", \"status\": 0}\n");
}

// --help says how to join and warns of the process list; the secret given on
// the command line is never shown.
TEST(ClusterHelpTest, HelpTellsHowToJoinAndLeave) {
  const std::string root = NewTempDir("help");
  OmResult help = RunOm(root, {"--help"});
  const std::string text = help.stdout_text + help.stderr_text;
  EXPECT_THAT(text, HasSubstr("om daemon join"));
  EXPECT_THAT(text, HasSubstr("--secret SECRET (visible in the process list)"));
  EXPECT_THAT(text, HasSubstr("om daemon leave"));
  EXPECT_THAT(text, HasSubstr("the member to join through"));
  OmResult full = RunOm(root, {"--secret", kClusterSecret, "--helpfull"});
  EXPECT_THAT(full.stdout_text + full.stderr_text, HasSubstr("prefer --secret_file"));
  EXPECT_THAT(full.stdout_text + full.stderr_text, Not(HasSubstr(kClusterSecret)));
}

// A member of one cluster must leave it before joining another; the refusal
// sends nothing when the secret differs, and changes nothing either way.
TEST_F(ClusterTest, AMemberOfAnotherClusterMustLeaveFirst) {
  Node& node1 = StartNode("node1", "127.0.0.1");
  Node& node2 = StartNode("node2", "127.0.0.2");
  Node& node3 = StartNode("node3", "127.0.0.3");
  ASSERT_EQ(Join(node2, node1).exit_code, 0);
  ExpectCluster({"node1", "node2"});
  // node3's own cluster ("default", its own secret): node2 may not join it.
  const std::string node2_before = node2.conf_text();
  OmResult other = Join(node2, node3, "own-secret-of-node3-0123456789");
  EXPECT_EQ(other.exit_code, 9);  // FAILED_PRECONDITION
  EXPECT_THAT(other.stderr_text,
              HasSubstr("this node is a member of cluster test with node1: leave it first "
                        "(om daemon leave)"));
  EXPECT_EQ(node2.conf_text(), node2_before);
  EXPECT_THAT(node3.conf().cluster_nodes, ElementsAre("node3"));
  EXPECT_EQ(RunOm(node3.root(), {"daemon", "blacklist", "status", "--output", "json"}).stdout_text,
            "{\"data\": {}, \"node\": \"node3\", \"status\": 0}\n");
}

TEST_F(ClusterTest, LeaveRefusesClearly) {
  Node& node1 = StartNode("node1", "127.0.0.1");
  Node& node2 = StartNode("node2", "127.0.0.2");
  OmResult alone = RunOm(node1.root(), {"daemon", "leave"});
  EXPECT_EQ(alone.exit_code, 9);
  EXPECT_THAT(alone.stderr_text, HasSubstr("this node, node1, is in no cluster with other members"));
  ASSERT_EQ(Join(node2, node1).exit_code, 0);
  ExpectCluster({"node1", "node2"});
  OmResult flags = RunOm(node2.root(), {"daemon", "leave", "--node", "node1"});
  EXPECT_EQ(flags.exit_code, 3);
  EXPECT_THAT(flags.stderr_text, HasSubstr("it takes no --server or --node"));
  // With node1 down there is nobody to remove node2: nothing changes.
  const std::string node2_before = node2.conf_text();
  ASSERT_EQ(node1.daemon->Stop(), absl::OkStatus());
  node1.daemon = nullptr;
  OmResult nobody = RunOm(node2.root(), {"--timeout", "3s", "daemon", "leave"});
  EXPECT_EQ(nobody.exit_code, 14);  // UNAVAILABLE
  EXPECT_THAT(nobody.stderr_text,
              HasSubstr("no member removed this node, whose node.conf is unchanged: node1: "
                        "UNAVAILABLE"));
  EXPECT_EQ(node2.conf_text(), node2_before);
}

// What the cluster's methods refuse, and why, asked directly as a member.
TEST_F(ClusterTest, TheClusterMethodsRefuseWhatTheyMust) {
  Node& node1 = StartNode("node1", "127.0.0.1");
  Node& node2 = StartNode("node2", "127.0.0.2");
  ASSERT_EQ(Join(node2, node1).exit_code, 0);
  ExpectCluster({"node1", "node2"});
  auto client_as = [&](const Node& as, const Node& to) {
    client::AgentClient::Options options;
    options.target = to.daemon->address();
    options.envelope = config::EnvelopeOptionsFor(as.conf());
    options.recipient = to.name;
    options.reply_senders = {to.name};
    return client::AgentClient::Create(std::move(options)).value();
  };
  auto node2_to_node1 = client_as(node2, node1);
  auto lock = [&](client::AgentClient& client, const std::string& token, bool release = false) {
    v1::ClusterLockRequest request;
    request.set_token(token);
    request.set_release(release);
    return client.Call<v1::ClusterLockReply>("ClusterLock", request);
  };
  absl::StatusOr<v1::ClusterLockReply> bad = lock(*node2_to_node1, "short");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "a cluster lock token must be 16 bytes");

  const std::string token(16, 'x');
  absl::StatusOr<v1::ClusterLockReply> granted = lock(*node2_to_node1, token);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_TRUE(granted->granted());
  EXPECT_THAT(granted->nodes(), ElementsAre("node1", "node2"));
  EXPECT_EQ(granted->nodes_version(), 1u);
  EXPECT_EQ(granted->addresses().at("node2"), node2.daemon->address());

  // While node2 holds node1's lock, a change through node1 waits; a push from
  // anyone else, or under another token, is refused.
  auto node1_to_node1 = client_as(node1, node1);
  v1::SetClusterMembersRequest push;
  push.set_lock_token(std::string(16, 'y'));
  push.add_nodes("node1");
  push.add_nodes("node2");
  push.set_nodes_version(5);
  absl::Status not_holder =
      node2_to_node1->Call<v1::SetClusterMembersReply>("SetClusterMembers", push).status();
  EXPECT_EQ(not_holder.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(not_holder.message(),
            "this node's cluster lock is not held by node2 under that token");
  push.set_lock_token(token);
  absl::Status other =
      node1_to_node1->Call<v1::SetClusterMembersReply>("SetClusterMembers", push).status();
  EXPECT_EQ(other.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(other.message(), "this node's cluster lock is not held by node1 under that token");
  EXPECT_EQ(lock(*node1_to_node1, std::string(16, 'z'))->held_by(), "node2");
  absl::Status wrong_release = lock(*node1_to_node1, token, /*release=*/true).status();
  EXPECT_EQ(wrong_release.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(wrong_release.message(), "the cluster lock is held by node2, not by node1");

  // The holder's bad pushes.
  v1::SetClusterMembersRequest without = push;
  without.clear_nodes();
  without.add_nodes("node2");
  absl::Status left_out =
      node2_to_node1->Call<v1::SetClusterMembersReply>("SetClusterMembers", without).status();
  EXPECT_EQ(left_out.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(left_out.message(), "the members sent leave this node, node1, out");
  v1::SetClusterMembersRequest invalid = push;
  invalid.add_nodes("../etc");
  EXPECT_EQ(node2_to_node1->Call<v1::SetClusterMembersReply>("SetClusterMembers", invalid)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  v1::SetClusterMembersRequest stale = push;
  stale.set_nodes_version(0);
  absl::Status older =
      node2_to_node1->Call<v1::SetClusterMembersReply>("SetClusterMembers", stale).status();
  EXPECT_EQ(older.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(older.message(), "this node's members are newer (version 1, not 0)");
  const std::string node1_before = node1.conf_text();
  // A good one is written.
  (*push.mutable_addresses())["node2"] = node2.daemon->address();
  ASSERT_TRUE(
      node2_to_node1->Call<v1::SetClusterMembersReply>("SetClusterMembers", push).ok());
  EXPECT_EQ(node1.conf().ini.Get("cluster", "nodes_version"), "5");
  EXPECT_NE(node1.conf_text(), node1_before);
  ASSERT_TRUE(lock(*node2_to_node1, token, /*release=*/true).ok());

  // A node may not remove itself; a join's address must be one.
  absl::Status self =
      node1_to_node1->Call<v1::LeaveReply>("Leave", v1::LeaveRequest()).status();
  EXPECT_EQ(self.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(self.message(),
            "node node1 cannot remove itself from the cluster: ask another member");
  v1::JoinRequest join;
  join.set_address("10.0.0.9:99999");
  absl::Status address = node2_to_node1->Call<v1::JoinReply>("Join", join).status();
  EXPECT_EQ(address.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(address.message()), HasSubstr("JoinRequest.address: \"10.0.0.9:99999\" is not host[:port]"));
}

}  // namespace
}  // namespace omd::testing

#include "config/cluster_sections.h"

#include <string>

#include "config/ini.h"
#include "config/node_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

IniFile Parse(const std::string& text) {
  absl::StatusOr<IniFile> ini = IniFile::Parse(text);
  EXPECT_TRUE(ini.ok()) << ini.status();
  return ini.value_or(IniFile());
}

constexpr char kMember[] =
    "[node]\nname = node1\n"
    "[cluster]\nname = prod\nsecret = member-secret-0123456789\nkey_generation = 2\n"
    "previous_secret = older-secret-0123456789\nnodes = node1 node2\nnodes_version = 4\n"
    "addr@node1 = 10.0.0.1\naddr@node2 = 10.0.0.2:1215\nquorum = true\n"
    "[listener]\naddr = 10.0.0.1\n"
    "[hb#1]\ntype = unicast\n"
    "[stonith#node2]\ncmd = /bin/true\n"
    "[hb#]\nnot = a heartbeat\n"
    "[custom]\nkept = yes\n";

constexpr char kJoiner[] =
    "# the joiner's own\n[node]\nname = node3\n"
    "[cluster]\n# its name before\nname = default\nsecret = joiner-secret-0123456789\n"
    "nodes = node3\naddr@node3 = 10.0.0.3\n"
    "[listener]\naddr = 10.0.0.3\nport = 1214\n"
    "[hb#old]\ntype = multicast\n"
    "[custom]\nmine = yes\n";

std::vector<std::string> Keys(const google::protobuf::Map<std::string, std::string>& map) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : map) keys.push_back(key);
  return keys;
}

TEST(ClusterSectionsTest, WhichSectionsAreClusterWide) {
  for (const char* name : {"hb#1", "stonith#node2", "pool#tank", "network#default",
                           "arbitrator#a"}) {
    EXPECT_TRUE(IsClusterWideSection(name)) << name;
  }
  for (const char* name : {"cluster", "node", "listener", "hb", "hb#", "custom", "xhb#1"}) {
    EXPECT_FALSE(IsClusterWideSection(name)) << name;
  }
}

TEST(ClusterSectionsTest, AMemberGivesItsClusterSectionAndTheClusterWideOnes) {
  v1::JoinReply reply = ClusterConfigOf(Parse(kMember));
  EXPECT_THAT(Keys(reply.cluster().values()),
              UnorderedElementsAre("name", "secret", "key_generation", "previous_secret",
                                   "nodes", "nodes_version", "addr@node1", "addr@node2",
                                   "quorum"));
  EXPECT_EQ(reply.cluster().values().at("nodes"), "node1 node2");
  std::vector<std::string> sections;
  for (const auto& [name, section] : reply.sections()) sections.push_back(name);
  EXPECT_THAT(sections, UnorderedElementsAre("hb#1", "stonith#node2"));
  EXPECT_EQ(reply.sections().at("hb#1").values().at("type"), "unicast");
}

TEST(ClusterSectionsTest, AJoinerTakesTheClusterAndKeepsItsOwnSections) {
  v1::JoinReply reply = ClusterConfigOf(Parse(kMember));
  (*reply.mutable_cluster()->mutable_values())["nodes"] = "node1 node2 node3";
  (*reply.mutable_cluster()->mutable_values())["addr@node3"] = "10.0.0.3:1214";
  IniFile ini = Parse(kJoiner);
  ASSERT_TRUE(TakeClusterConfig(reply, "member-secret-0123456789", "node3", ini).ok());
  EXPECT_EQ(ini.Get("cluster", "name"), "prod");
  EXPECT_EQ(ini.Get("cluster", "secret"), "member-secret-0123456789");
  EXPECT_EQ(ini.Get("cluster", "key_generation"), "2");
  EXPECT_EQ(ini.Get("cluster", "nodes"), "node1 node2 node3");
  EXPECT_EQ(ini.Get("cluster", "nodes_version"), "4");
  EXPECT_EQ(ini.Get("cluster", "addr@node3"), "10.0.0.3:1214");
  EXPECT_EQ(ini.Get("hb#1", "type"), "unicast");
  EXPECT_EQ(ini.Get("hb#old", "type"), std::nullopt);
  EXPECT_THAT(ini.SectionNames(),
              ElementsAre("node", "cluster", "listener", "custom", "hb#1", "stonith#node2"));
  EXPECT_EQ(ini.Get("listener", "addr"), "10.0.0.3");  // its own, kept
  EXPECT_EQ(ini.Get("custom", "mine"), "yes");
  EXPECT_EQ(ini.Get("custom", "kept"), std::nullopt);  // not the member's
  EXPECT_THAT(ini.Serialize(), HasSubstr("# the joiner's own"));

  absl::StatusOr<NodeConfig> config = ParseNodeConfig(ini.Serialize());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->node_name, "node3");
  EXPECT_EQ(config->cluster_name, "prod");
  EXPECT_EQ(config->key_generation, 2u);
  EXPECT_THAT(config->cluster_nodes, ElementsAre("node1", "node2", "node3"));
  EXPECT_EQ(config->node_addresses.at("node2"), "10.0.0.2:1215");
}

TEST(ClusterSectionsTest, ABadReplyChangesNothing) {
  const IniFile before = Parse(kJoiner);
  auto refused = [&](const v1::JoinReply& reply, const std::string& message) {
    IniFile ini = before;
    absl::Status status = TakeClusterConfig(reply, "member-secret-0123456789", "node3", ini);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(std::string(status.message()), HasSubstr(message));
    EXPECT_THAT(std::string(status.message()), Not(HasSubstr("member-secret")));
    EXPECT_EQ(ini.Serialize(), before.Serialize());
  };
  v1::JoinReply reply = ClusterConfigOf(Parse(kMember));
  refused(reply, "do not list this node, node3");
  (*reply.mutable_cluster()->mutable_values())["nodes"] = "node1 node3";
  v1::JoinReply no_nodes = reply;
  no_nodes.mutable_cluster()->mutable_values()->erase("nodes");
  refused(no_nodes, "has no nodes");
  v1::JoinReply listener = reply;
  (*(*listener.mutable_sections())["listener"].mutable_values())["port"] = "1";
  refused(listener, "section \"listener\", which is not a cluster-wide one");
  v1::JoinReply injected = reply;
  (*injected.mutable_cluster()->mutable_values())["quorum"] = "true\n[node]\nname = evil";
  refused(injected, "[cluster] \"quorum\" cannot be written");
  v1::JoinReply bad_key = reply;
  (*(*bad_key.mutable_sections())["hb#2"].mutable_values())["a = b"] = "c";
  refused(bad_key, "[hb#2] \"a = b\" cannot be written");
}

TEST(ClusterSectionsTest, ALeaverKeepsNothingOfTheCluster) {
  IniFile ini = Parse(kMember);
  ASSERT_TRUE(MakeStandalone("node1", "fresh-secret-0123456789abcdef", ini).ok());
  EXPECT_EQ(ini.Get("cluster", "nodes"), "node1");
  EXPECT_EQ(ini.Get("cluster", "secret"), "fresh-secret-0123456789abcdef");
  EXPECT_EQ(ini.Get("cluster", "name"), "prod");
  EXPECT_EQ(ini.Get("cluster", "addr@node1"), "10.0.0.1");
  for (const char* gone : {"key_generation", "previous_secret", "nodes_version", "addr@node2"}) {
    EXPECT_EQ(ini.Get("cluster", gone), std::nullopt) << gone;
  }
  EXPECT_EQ(ini.Get("cluster", "quorum"), "true");
  EXPECT_THAT(ini.SectionNames(), ElementsAre("node", "cluster", "listener", "hb#", "custom"));
  absl::StatusOr<NodeConfig> config = ParseNodeConfig(ini.Serialize());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->cluster_nodes, ElementsAre("node1"));
  EXPECT_EQ(config->key_generation, 1u);
}

TEST(ClusterSectionsTest, FreshSecretsAreRandomHex) {
  const std::string a = NewClusterSecret();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, NewClusterSecret());
}

}  // namespace
}  // namespace omd::config

#include "cluster/membership_view.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "config/ini.h"
#include "config/node_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::cluster {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

MembershipView View(std::vector<std::string> nodes, uint64_t version,
                    std::map<std::string, std::string> addresses = {}) {
  MembershipView view;
  view.nodes = std::move(nodes);
  view.addresses = std::move(addresses);
  view.version = version;
  return view;
}

MembershipChange Join(std::string node, std::string address = "") {
  return {MembershipChange::kJoin, std::move(node), std::move(address)};
}
MembershipChange Leave(std::string node) { return {MembershipChange::kLeave, std::move(node), ""}; }

config::NodeConfig Config(const std::string& cluster) {
  absl::StatusOr<config::NodeConfig> config = config::ParseNodeConfig(
      absl::StrCat("[node]\nname = b\n[cluster]\nsecret = some-secret-0123456789\n", cluster));
  EXPECT_TRUE(config.ok()) << config.status();
  return config.value_or(config::NodeConfig());
}

TEST(MembershipViewTest, ViewOfNodeConf) {
  absl::StatusOr<MembershipView> view = ViewOf(Config(
      "nodes = c b a\nnodes_version = 7\naddr@a = 10.0.0.1\naddr@x = 10.0.0.9\n"));
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_THAT(view->nodes, ElementsAre("a", "b", "c"));
  EXPECT_EQ(view->version, 7u);
  // x is no member (a join may record an address first): not in the view.
  EXPECT_EQ(view->addresses, (std::map<std::string, std::string>{{"a", "10.0.0.1:1214"}}));

  EXPECT_EQ(ViewOf(Config("nodes = b\n"))->version, 0u);
  absl::StatusOr<MembershipView> bad = ViewOf(Config("nodes = b\nnodes_version = -1\n"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "[cluster] nodes_version: \"-1\" is not a whole number");
}

TEST(MembershipViewTest, TheNewestViewWins) {
  // c joined (version 3) while b was down; b's version-2 view lacks c.
  MembershipView merged = MergeViews({View({"a", "b"}, 2), View({"a", "b", "c"}, 3),
                                      View({"a", "b", "c"}, 3)});
  EXPECT_EQ(merged, View({"a", "b", "c"}, 3));
  // c left (version 4) while b was down: b's view still has c, and cannot bring
  // it back.
  merged = MergeViews({View({"a", "b", "c"}, 3, {{"c", "10.0.0.3:1214"}}), View({"a", "b"}, 4)});
  EXPECT_EQ(merged, View({"a", "b"}, 4));
  EXPECT_EQ(MergeViews({}), MembershipView());
}

TEST(MembershipViewTest, ViewsOfOneVersionAreUnited) {
  MembershipView merged = MergeViews({View({"a", "b", "c"}, 5, {{"c", "10.0.0.3:1214"}}),
                                      View({"a", "b", "d"}, 5, {{"d", "10.0.0.4:1214"}}),
                                      View({"a"}, 1, {{"a", "10.0.0.1:1214"}})});
  EXPECT_EQ(merged, View({"a", "b", "c", "d"}, 5,
                         {{"c", "10.0.0.3:1214"}, {"d", "10.0.0.4:1214"}}));
}

// Two joins through two members, serialized by the lock: the second change
// merges the first one's view, so both joiners end up members.
TEST(MembershipViewTest, TwoJoinsOneAfterTheOther) {
  const MembershipView start = View({"a", "b"}, 1);
  const MembershipView first = ApplyChange(MergeViews({start, start}), Join("c", "10.0.0.3:1214"));
  EXPECT_EQ(first, View({"a", "b", "c"}, 2, {{"c", "10.0.0.3:1214"}}));
  // b takes the lock next; a's and b's views are the first change's, c's too.
  const MembershipView second =
      ApplyChange(MergeViews({first, first, first}), Join("d", "10.0.0.4:1214"));
  EXPECT_EQ(second, View({"a", "b", "c", "d"}, 3,
                         {{"c", "10.0.0.3:1214"}, {"d", "10.0.0.4:1214"}}));
  // Had b missed the first push, a's view still carries c.
  EXPECT_EQ(ApplyChange(MergeViews({first, start}), Join("d")), View({"a", "b", "c", "d"}, 3,
                                                                     {{"c", "10.0.0.3:1214"}}));
}

TEST(MembershipViewTest, ChangesAlreadyDoneChangeNothing) {
  const MembershipView view = View({"a", "b"}, 4, {{"b", "10.0.0.2:1214"}});
  EXPECT_EQ(ApplyChange(view, Join("b", "10.0.0.2:1214")), view);  // joining twice
  EXPECT_EQ(ApplyChange(view, Leave("c")), view);                  // not a member
  // A new address is a change; so is an address forgotten.
  EXPECT_EQ(ApplyChange(view, Join("b", "10.0.0.20:1214")),
            View({"a", "b"}, 5, {{"b", "10.0.0.20:1214"}}));
  EXPECT_EQ(ApplyChange(view, Join("b")), View({"a", "b"}, 5));
  EXPECT_EQ(ApplyChange(view, Leave("b")), View({"a"}, 5));
  EXPECT_EQ(ApplyChange(ApplyChange(view, Leave("b")), Leave("b")), View({"a"}, 5));
}

TEST(MembershipViewTest, ViewsFromTheNetworkAreChecked) {
  EXPECT_TRUE(ValidateView(View({"a", "b"}, 1, {{"a", "node-a.example:1214"}})).ok());
  auto refused = [](const MembershipView& view, const std::string& message) {
    absl::Status status = ValidateView(view);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(std::string(status.message()), HasSubstr(message));
  };
  refused(View({}, 1), "a membership with no node");
  refused(View({"a", "../etc"}, 1), "invalid node name");
  refused(View({"a", "a"}, 1), "node a is listed twice");
  refused(View({"a"}, 1, {{"b", "10.0.0.2"}}), "an address for \"b\", not a member");
  refused(View({"a"}, 1, {{"a", "10.0.0.1:99999"}}), "a's address:");
  refused(View({"a"}, 1, {{"a", "bad host name!"}}), "is neither an IP address nor a DNS name");
  refused(View({"a"}, 1, {{"a", "[10.0.0.1]:1214"}}), "only an IPv6 address goes in brackets");
  std::vector<std::string> many;
  for (size_t i = 0; i <= kMaxMembers; ++i) many.push_back(absl::StrCat("n", i));
  refused(View(many, 1), "more than 1024 nodes");

  std::string normalized;
  ASSERT_TRUE(ValidatePeerAddress("an address", "10.0.0.1", &normalized).ok());
  EXPECT_EQ(normalized, "10.0.0.1:1214");
  ASSERT_TRUE(ValidatePeerAddress("an address", "[::1]:1215", &normalized).ok());
  EXPECT_EQ(normalized, "[::1]:1215");
  absl::Status long_one = ValidatePeerAddress("an address", std::string(300, 'a'), nullptr);
  EXPECT_EQ(long_one.message(), "an address: longer than any host:port");
}

TEST(MembershipViewTest, MessagesCarryViews) {
  v1::ClusterLockReply reply;
  PutView(View({"a", "b"}, 9, {{"b", "10.0.0.2:1214"}}), &reply);
  EXPECT_THAT(reply.nodes(), ElementsAre("a", "b"));
  EXPECT_EQ(reply.nodes_version(), 9u);
  EXPECT_EQ(ViewFromLockReply(reply), View({"a", "b"}, 9, {{"b", "10.0.0.2:1214"}}));
  v1::SetClusterMembersRequest request;
  request.add_nodes("b");
  request.add_nodes("a");
  request.add_nodes("b");
  EXPECT_THAT(ViewFromMembersRequest(request).nodes, ElementsAre("a", "b"));
}

TEST(MembershipViewTest, WrittenToNodeConf) {
  absl::StatusOr<config::IniFile> ini = config::IniFile::Parse(
      "[node]\nname = b\n[cluster]\nsecret = some-secret-0123456789\nnodes = a b c\n"
      "# a's address, by hand\naddr@a = 10.0.0.1\naddr@c = 10.0.0.3\nquorum = yes\n");
  ASSERT_TRUE(ini.ok());
  ASSERT_TRUE(WriteView(View({"a", "b", "d"}, 6, {{"a", "10.0.0.1:1214"}, {"d", "[::4]:1215"}}),
                        *ini)
                  .ok());
  EXPECT_EQ(ini->Serialize(),
            "[node]\nname = b\n[cluster]\nsecret = some-secret-0123456789\nnodes = a b d\n"
            "# a's address, by hand\naddr@a = 10.0.0.1\nquorum = yes\nnodes_version = 6\n"
            "addr@d = [::4]:1215\n");
  absl::StatusOr<config::NodeConfig> config = config::ParseNodeConfig(ini->Serialize());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*ViewOf(*config), View({"a", "b", "d"}, 6, {{"a", "10.0.0.1:1214"}, {"d", "[::4]:1215"}}));
}

}  // namespace
}  // namespace omd::cluster

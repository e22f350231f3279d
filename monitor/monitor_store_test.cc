#include "monitor/monitor_store.h"

#include <stdlib.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace omd::monitor {
namespace {

std::string NewRoot() {
  std::string root = absl::StrCat(testing::TempDir(), "/monitor_store_XXXXXX");
  EXPECT_NE(mkdtemp(root.data()), nullptr);
  return root;
}

v1::InstanceMonitor Instance(const std::string& svcname) {
  v1::InstanceMonitor instance;
  instance.set_svcname(svcname);
  instance.set_status("start failed");
  instance.set_local_expect("started");
  instance.set_global_expect_version(7);
  v1::ResourceMonitor* resource = instance.add_resources();
  resource->set_id("app#1");
  resource->set_restarts(2);
  return instance;
}

TEST(MonitorStoreTest, NodeRoundTrip) {
  const MonitorStore store(NewRoot());
  EXPECT_TRUE(absl::IsNotFound(store.LoadNode().status()));
  v1::NodeMonitor node;
  node.set_frozen(true);
  node.set_local_expect("frozen");
  ASSERT_TRUE(store.SaveNode(node).ok());
  absl::StatusOr<v1::NodeMonitor> loaded = store.LoadNode();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->frozen());
  EXPECT_EQ(loaded->local_expect(), "frozen");
}

TEST(MonitorStoreTest, InstancesRoundTripAndRemove) {
  const MonitorStore store(NewRoot());
  EXPECT_TRUE(store.LoadInstances().empty());
  ASSERT_TRUE(store.SaveInstance(Instance("web")).ok());
  ASSERT_TRUE(store.SaveInstance(Instance("db-1.x")).ok());
  std::map<std::string, v1::InstanceMonitor> loaded = store.LoadInstances();
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_EQ(loaded["web"].status(), "start failed");
  EXPECT_EQ(loaded["web"].resources(0).restarts(), 2u);
  EXPECT_EQ(loaded["web"].global_expect_version(), 7u);
  ASSERT_TRUE(store.RemoveInstance("web").ok());
  ASSERT_TRUE(store.RemoveInstance("web").ok());  // nothing left: still fine
  loaded = store.LoadInstances();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded.begin()->first, "db-1.x");
}

TEST(MonitorStoreTest, BadNamesAreRefused) {
  const MonitorStore store(NewRoot());
  for (const char* name : {"", "../x", "Web", "node", "a/b"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(store.SaveInstance(Instance(name)))) << name;
    EXPECT_TRUE(absl::IsInvalidArgument(store.RemoveInstance(name))) << name;
  }
}

TEST(MonitorStoreTest, ACorruptFileIsSkippedNotFatal) {
  const std::string root = NewRoot();
  const MonitorStore store(root);
  ASSERT_TRUE(store.SaveInstance(Instance("web")).ok());
  ASSERT_TRUE(store.SaveInstance(Instance("db")).ok());
  std::ofstream(absl::StrCat(root, "/var/monitor/services/db.json")) << "{not json";
  std::ofstream(absl::StrCat(root, "/var/monitor/services/Bad.json")) << "{}";
  const std::map<std::string, v1::InstanceMonitor> loaded = store.LoadInstances();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded.begin()->first, "web");
  std::ofstream(absl::StrCat(root, "/var/monitor/node.json")) << "[]";
  EXPECT_TRUE(absl::IsDataLoss(store.LoadNode().status()));
}

}  // namespace
}  // namespace omd::monitor

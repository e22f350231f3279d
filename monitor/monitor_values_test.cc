#include "monitor/monitor_values.h"

#include <string>

#include "gtest/gtest.h"

namespace omd::monitor {
namespace {

TEST(MonitorValuesTest, ServiceStatus) {
  for (const char* ok : {"idle", "start failed", "stop failed"}) {
    EXPECT_TRUE(CheckServiceStatus(ok).ok()) << ok;
  }
  for (const char* transient : {"starting", "stopping", "restarting"}) {
    const absl::Status status = CheckServiceStatus(transient);
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << transient;
    EXPECT_NE(status.message().find("monitor itself"), absl::string_view::npos);
  }
  const absl::Status bad = CheckServiceStatus("running");
  EXPECT_TRUE(absl::IsInvalidArgument(bad));
  EXPECT_NE(bad.message().find("idle, start failed, stop failed"), absl::string_view::npos)
      << bad.message();
}

TEST(MonitorValuesTest, LocalExpect) {
  for (const char* ok : {"started", "stopped", "unset"}) {
    EXPECT_TRUE(CheckServiceLocalExpect(ok).ok()) << ok;
  }
  const absl::Status bad = CheckServiceLocalExpect("frozen");
  EXPECT_TRUE(absl::IsInvalidArgument(bad));
  EXPECT_NE(bad.message().find("started, stopped, unset"), absl::string_view::npos);
}

TEST(MonitorValuesTest, GlobalExpectSupportedKnownAndUnknown) {
  for (const char* ok : {"started", "stopped", "frozen", "thawed", "unset"}) {
    EXPECT_TRUE(CheckGlobalExpect(ok).ok()) << ok;
  }
  for (const char* known : {"deleted", "purged", "provisioned", "unprovisioned", "aborted",
                            "placed", "placed@n2", "shutdown", "scaled"}) {
    const absl::Status status = CheckGlobalExpect(known);
    EXPECT_TRUE(absl::IsFailedPrecondition(status)) << known << ": " << status;
    EXPECT_NE(status.message().find("not supported"), absl::string_view::npos);
  }
  for (const char* bad : {"", "start", "Started", "placed@", "placed@a/b", "frozen\n"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(CheckGlobalExpect(bad))) << bad;
  }
}

TEST(MonitorValuesTest, NodeValues) {
  for (const char* ok : {"idle", "freezing", "thawing"}) EXPECT_TRUE(CheckNodeStatus(ok).ok());
  for (const char* ok : {"thawed", "frozen"}) EXPECT_TRUE(CheckNodeLocalExpect(ok).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(CheckNodeStatus("frozen")));
  const absl::Status bad = CheckNodeLocalExpect("started");
  EXPECT_TRUE(absl::IsInvalidArgument(bad));
  EXPECT_NE(bad.message().find("thawed, frozen"), absl::string_view::npos);
}

TEST(MonitorValuesTest, Transient) {
  EXPECT_TRUE(IsTransientStatus("starting"));
  EXPECT_TRUE(IsTransientStatus("restarting"));
  EXPECT_FALSE(IsTransientStatus("start failed"));
  EXPECT_FALSE(IsTransientStatus("idle"));
}

}  // namespace
}  // namespace omd::monitor

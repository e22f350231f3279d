// Service logs across three real daemons (node1..3 on 127.0.0.1..3): backlogs
// merged by time, follows that see every node, rotation, a node going down and
// coming back, cancellation, and om <svcname> logs itself.
#include <signal.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "config/atomic_file.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "process/subprocess.h"
#include "service/service_log.h"
#include "sync/mutex.h"
#include "testing/daemon_harness.h"
#include "testing/eventually.h"

namespace omd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kNodes = 3;

// What a follow has received so far.
class Received {
 public:
  void Add(const v1::ServiceLogsReply& reply) {
    sync::MutexLock lock(&mutex_);
    for (const v1::LogRecord& record : reply.records()) records_.push_back(record);
  }
  void Done(absl::Status status) {
    sync::MutexLock lock(&mutex_);
    done_ = std::move(status);
  }
  std::vector<v1::LogRecord> records() const {
    sync::MutexLock lock(&mutex_);
    return records_;
  }
  bool Has(absl::string_view message) const {
    sync::MutexLock lock(&mutex_);
    for (const v1::LogRecord& record : records_) {
      if (record.message() == message) return true;
    }
    return false;
  }
  int Count(absl::string_view prefix) const {
    sync::MutexLock lock(&mutex_);
    int count = 0;
    for (const v1::LogRecord& record : records_) count += absl::StartsWith(record.message(), prefix);
    return count;
  }
  std::optional<absl::Status> done() const {
    sync::MutexLock lock(&mutex_);
    return done_;
  }

 private:
  mutable sync::Mutex mutex_;
  std::vector<v1::LogRecord> records_ ABSL_GUARDED_BY(mutex_);
  std::optional<absl::Status> done_ ABSL_GUARDED_BY(mutex_);
};

class LogsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < kNodes; ++i) {
      addresses_[i] = absl::StrCat("127.0.0.", i + 1);
      absl::StatusOr<int> port = FreePort(addresses_[i]);
      ASSERT_TRUE(port.ok()) << port.status();
      ports_[i] = *port;
    }
    for (int i = 0; i < kNodes; ++i) ASSERT_NO_FATAL_FAILURE(StartNode(i, ""));
    for (int i = 0; i < kNodes; ++i) {
      ASSERT_TRUE(config::WriteFileAtomically(
                      absl::StrCat(Root(i), "/etc/web.conf"),
                      "[DEFAULT]\nnodes = node1 node2 node3\ntopology = flex\n", 0644)
                      .ok());
    }
  }

  void StartNode(int i, const std::string& root) {
    DaemonProcess::Options options;
    options.root = root;
    options.node.node_name = Name(i);
    options.node.cluster_nodes = {"node1", "node2", "node3"};
    options.node.listen_address = addresses_[i];
    options.node.port = ports_[i];
    for (int j = 0; j < kNodes; ++j) {
      if (j != i) options.node.node_addresses[Name(j)] = absl::StrCat(addresses_[j], ":", ports_[j]);
    }
    absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    nodes_[i] = *std::move(daemon);
    roots_[i] = nodes_[i]->root();
  }

  void TearDown() override {
    calls_.clear();  // cancelled, before the daemons go
    for (auto& node : nodes_) {
      if (node != nullptr) {
        absl::Status stopped = node->Stop();
        EXPECT_TRUE(stopped.ok()) << stopped << "\n" << node->Log();
      }
    }
  }

  static std::string Name(int i) { return absl::StrCat("node", i + 1); }
  const std::string& Root(int i) const { return roots_[i]; }

  void Append(int i, absl::Time time, const std::string& message,
              service::ServiceLog::Options options = service::ServiceLog::Options()) {
    service::ServiceLog log(Root(i), "web", options);
    ASSERT_TRUE(log.AppendAt(time, service::LogLevel::kInfo, message).ok());
  }

  // A follow (or a backlog) of node i's daemon, as om asks it.
  std::shared_ptr<Received> Follow(int i, v1::ServiceLogsRequest request) {
    auto received = std::make_shared<Received>();
    absl::StatusOr<std::unique_ptr<client::AgentClient>> agent = ControlClient(Root(i));
    EXPECT_TRUE(agent.ok()) << agent.status();
    client::AgentClient::StreamOptions options;
    options.timeout = request.follow() ? absl::InfiniteDuration() : absl::Seconds(30);
    absl::StatusOr<std::unique_ptr<client::StreamCall>> call =
        (*agent)->Stream<v1::ServiceLogsReply>(
            "ServiceLogs", request,
            [received](const v1::ServiceLogsReply& reply) { received->Add(reply); },
            [received](absl::Status status) { received->Done(std::move(status)); },
            std::move(options));
    EXPECT_TRUE(call.ok()) << call.status();
    if (call.ok()) calls_.push_back(*std::move(call));
    agents_.push_back(*std::move(agent));
    return received;
  }

  static v1::ServiceLogsRequest Request(bool follow, uint32_t backlog = 0) {
    v1::ServiceLogsRequest request;
    request.set_svcname("web");
    request.set_follow(follow);
    request.set_backlog(backlog);
    return request;
  }

  v1::LogsStatus LogsStatusOf(int i) {
    absl::StatusOr<std::unique_ptr<client::AgentClient>> agent = ControlClient(Root(i));
    EXPECT_TRUE(agent.ok());
    absl::StatusOr<v1::DaemonStatusReply> status =
        (*agent)->Call<v1::DaemonStatusReply>("DaemonStatus", v1::DaemonStatusRequest());
    EXPECT_TRUE(status.ok()) << status.status();
    return status.ok() ? status->logs() : v1::LogsStatus();
  }

  std::string addresses_[kNodes];
  int ports_[kNodes] = {};
  std::string roots_[kNodes];
  std::unique_ptr<DaemonProcess> nodes_[kNodes];
  std::vector<std::unique_ptr<client::AgentClient>> agents_;
  std::vector<std::unique_ptr<client::StreamCall>> calls_;
};

TEST_F(LogsE2eTest, BacklogsOfThreeNodesComeMergedByTimeEachOnce) {
  const absl::Time t0 = absl::Now() - absl::Minutes(1);
  std::vector<std::string> expected;
  for (int k = 0; k < 60; ++k) {
    const int node = (k * 7) % kNodes;  // interleaved, not round robin
    const std::string message = absl::StrCat("record ", k, " of ", Name(node));
    ASSERT_NO_FATAL_FAILURE(Append(node, t0 + absl::Milliseconds(10 * k), message));
    expected.push_back(message);
  }
  OmResult json = RunOm(Root(1), {"--output", "json", "web", "logs", "--backlog", "100"});
  ASSERT_EQ(json.exit_code, 0) << json.stderr_text;
  std::vector<std::string> messages;
  int64_t last = 0;
  for (absl::string_view line : absl::StrSplit(json.stdout_text, '\n', absl::SkipEmpty())) {
    v1::LogRecord record;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(line), &record).ok())
        << line;
    EXPECT_GE(record.time_unix_ms(), last) << line;
    last = record.time_unix_ms();
    EXPECT_TRUE(absl::EndsWith(record.message(), record.nodename())) << line;
    messages.push_back(record.message());
  }
  EXPECT_EQ(messages, expected);

  // One node's records alone, with --node; and human lines.
  OmResult one = RunOm(Root(0), {"--node", "node3", "web", "logs", "--backlog", "100", "--color", "no"});
  ASSERT_EQ(one.exit_code, 0) << one.stderr_text;
  EXPECT_THAT(one.stdout_text, HasSubstr("node3"));
  EXPECT_THAT(one.stdout_text, Not(HasSubstr("of node1")));
  EXPECT_THAT(one.stdout_text, HasSubstr("INFO    | record 2 of node3"));
}

TEST_F(LogsE2eTest, AFollowSeesWhatEveryNodeLogsAndACancelFreesTheUpstreams) {
  std::shared_ptr<Received> follow = Follow(0, Request(/*follow=*/true));
  ASSERT_TRUE(Eventually([&] { return LogsStatusOf(0).upstreams() == 2; }));
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_NO_FATAL_FAILURE(Append(i, absl::Now(), absl::StrCat("live from ", Name(i))));
  }
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(Eventually([&] { return follow->Has(absl::StrCat("live from ", Name(i))); }))
        << Name(i);
  }
  EXPECT_EQ(LogsStatusOf(0).streams(), 1);
  EXPECT_EQ(LogsStatusOf(1).streams(), 1);  // node1's, for it
  EXPECT_EQ(LogsStatusOf(2).streams(), 1);
  EXPECT_EQ(LogsStatusOf(0).subscriptions(), 1u);
  calls_.back()->Cancel();
  ASSERT_TRUE(Eventually([&] { return follow->done().has_value(); }));
  EXPECT_TRUE(absl::IsCancelled(*follow->done())) << *follow->done();
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(Eventually([&] {
      const v1::LogsStatus status = LogsStatusOf(i);
      return status.streams() == 0 && status.upstreams() == 0 && status.subscriptions() == 0;
    })) << Name(i) << " " << LogsStatusOf(i).DebugString();
  }
}

TEST_F(LogsE2eTest, AFollowGoesOnThroughRotationWithoutLossOrRepeat) {
  std::shared_ptr<Received> follow = Follow(0, Request(/*follow=*/true));
  ASSERT_TRUE(Eventually([&] { return LogsStatusOf(1).subscriptions() == 1; }));
  service::ServiceLog::Options small;
  small.max_bytes = 4 << 10;  // a rotation every few dozen records
  // Files a slow follower (a sanitizer's build) may still have to read: a file
  // rotated out of existence before it is read is lost to everyone.
  small.keep = 50;
  constexpr int kRecords = 1500;
  for (int k = 0; k < kRecords; ++k) {
    ASSERT_NO_FATAL_FAILURE(Append(1, absl::Now(), absl::StrCat("rotating ", k), small));
  }
  ASSERT_TRUE(Eventually([&] { return follow->Count("rotating ") >= kRecords; }))
      << follow->Count("rotating ");
  absl::SleepFor(absl::Milliseconds(300));
  std::vector<std::string> seen;
  for (const v1::LogRecord& record : follow->records()) {
    if (absl::StartsWith(record.message(), "rotating ")) seen.push_back(record.message());
  }
  ASSERT_EQ(seen.size(), static_cast<size_t>(kRecords));
  for (int k = 0; k < kRecords; ++k) EXPECT_EQ(seen[k], absl::StrCat("rotating ", k));
  absl::StatusOr<std::string> rotated =
      config::ReadFileToString(absl::StrCat(Root(1), "/var/log/web.log.1"), 1 << 20);
  EXPECT_TRUE(rotated.ok()) << "the log did rotate";
}

TEST_F(LogsE2eTest, ANodeGoingDownIsSaidAndPickedUpWhenBack) {
  std::shared_ptr<Received> follow = Follow(0, Request(/*follow=*/true));
  ASSERT_TRUE(Eventually([&] { return LogsStatusOf(0).upstreams() == 2; }));
  const std::string root3 = Root(2);
  ASSERT_EQ(nodes_[2]->Stop(), absl::OkStatus());
  nodes_[2].reset();
  ASSERT_TRUE(Eventually([&] {
    for (const v1::LogRecord& record : follow->records()) {
      if (record.nodename() == "node3" && record.extra().count("node_error") > 0) return true;
    }
    return false;
  }));
  ASSERT_NO_FATAL_FAILURE(Append(1, absl::Now(), "node2 goes on"));
  EXPECT_TRUE(Eventually([&] { return follow->Has("node2 goes on"); }));
  ASSERT_NO_FATAL_FAILURE(StartNode(2, root3));
  ASSERT_NO_FATAL_FAILURE(Append(2, absl::Now(), "node3 is back"));
  EXPECT_TRUE(Eventually([&] { return follow->Has("node3 is back"); }, absl::Seconds(30)))
      << "node1:\n" << nodes_[0]->Log() << "\nnode3:\n" << nodes_[2]->Log() << "\nom:\n"
      << RunOm(Root(0), {"--node", "node3", "daemon", "status"}).stderr_text
      << RunOm(Root(2), {"daemon", "status"}).stderr_text;
  EXPECT_FALSE(follow->done().has_value());
}

TEST_F(LogsE2eTest, OmFollowsUntilInterruptedAndExitsCleanly) {
  ASSERT_NO_FATAL_FAILURE(Append(2, absl::Now(), "before om"));
  process::ProcessOptions om;
  om.argv = {OmPath(), "--root", Root(0), "web", "logs", "--follow", "--color", "no"};
  om.timeout = absl::Seconds(3);  // then SIGTERM, as a Ctrl-C would
  absl::StatusOr<process::ProcessResult> ran = process::RunProcess(om);
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(ran->exit_code, 0) << ran->stderr_text;
  EXPECT_THAT(ran->stdout_text, HasSubstr("node3"));
  EXPECT_THAT(ran->stdout_text, HasSubstr("INFO    | before om"));
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(Eventually([&] { return LogsStatusOf(i).streams() == 0; })) << Name(i);
  }
}

TEST_F(LogsE2eTest, ASlowReaderGetsABoundedQueueThenACountOfWhatItMissed) {
  std::atomic<bool> released{false};
  auto received = std::make_shared<Received>();
  absl::StatusOr<std::unique_ptr<client::AgentClient>> agent = ControlClient(Root(0));
  ASSERT_TRUE(agent.ok());
  v1::ServiceLogsRequest request = Request(/*follow=*/true, /*backlog=*/0);
  request.add_nodes("node1");
  absl::StatusOr<std::unique_ptr<client::StreamCall>> call =
      (*agent)->Stream<v1::ServiceLogsReply>(
          "ServiceLogs", request,
          [received, &released](const v1::ServiceLogsReply& reply) {
            // A reader that stops reading: gRPC reads no more meanwhile.
            while (!released.load()) absl::SleepFor(absl::Milliseconds(5));
            received->Add(reply);
          },
          [received](absl::Status status) { received->Done(std::move(status)); });
  ASSERT_TRUE(call.ok()) << call.status();
  ASSERT_TRUE(Eventually([&] { return LogsStatusOf(0).subscriptions() == 1; }));
  // One at a time, each its own message: past gRPC's windows and the daemon's
  // queue of 64 messages.
  constexpr int kRecords = 6000;
  const std::string filler(1000, 'x');
  service::ServiceLog::Options large;
  large.max_bytes = 64 << 20;  // no rotation: this is not about rotation
  for (int k = 0; k < kRecords; ++k) {
    ASSERT_NO_FATAL_FAILURE(
        Append(0, absl::Now(), absl::StrCat("slow ", k, " ", filler), large));
    if (k % 10 == 0) absl::SleepFor(absl::Milliseconds(1));
  }
  absl::SleepFor(absl::Seconds(1));
  released = true;
  // Back to reading: the count of what it missed comes with no other record.
  const auto missed = [&] {
    int64_t count = 0;
    for (const v1::LogRecord& record : received->records()) {
      if (auto it = record.extra().find("missed"); it != record.extra().end()) {
        count += std::stoll(it->second);
        EXPECT_THAT(record.message(), HasSubstr("records missed"));
      }
    }
    return count;
  };
  ASSERT_TRUE(Eventually([&] { return missed() > 0; }));
  EXPECT_TRUE(Eventually([&] { return received->Count("slow ") + missed() == kRecords; }))
      << received->Count("slow ") << " + " << missed();
  // And later records come again.
  ASSERT_NO_FATAL_FAILURE(Append(0, absl::Now(), "after the jam"));
  EXPECT_TRUE(Eventually([&] { return received->Has("after the jam"); }));
  call->reset();
}

TEST_F(LogsE2eTest, BadRequestsAreRefusedClearly) {
  struct Case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"nosuch", "logs"}, 5, "does not exist"},
      {{"web", "logs", "--backlog", "5001"}, 3, "at most 5000"},
      {{"web", "logs", "--backlog", "-1"}, 3, "0 or more"},
      {{"web", "logs", "--since", "yesterday"}, 3, "--since"},
      {{"web", "logs", "--color", "green"}, 3, "--color"},
  };
  for (const Case& c : cases) {
    OmResult result = RunOm(Root(0), c.args);
    EXPECT_EQ(result.exit_code, c.exit_code) << absl::StrJoin(c.args, " ") << result.stderr_text;
    EXPECT_THAT(result.stderr_text, HasSubstr(c.message)) << absl::StrJoin(c.args, " ");
  }
  v1::ServiceLogsRequest bad_node = Request(false);
  bad_node.add_nodes("node9");
  std::shared_ptr<Received> refused = Follow(0, bad_node);
  ASSERT_TRUE(Eventually([&] { return refused->done().has_value(); }));
  EXPECT_TRUE(absl::IsInvalidArgument(*refused->done())) << *refused->done();
  EXPECT_THAT(std::string(refused->done()->message()), HasSubstr("not one of web's nodes"));
  EXPECT_EQ(LogsStatusOf(0).streams(), 0);
}

}  // namespace
}  // namespace omd::testing

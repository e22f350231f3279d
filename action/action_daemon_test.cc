// ServiceAction and ListActions through a real omd: action_test_program stands
// in for om (omd --action_command), then the real om; and `om daemon actions`.
#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/action_commands.h"
#include "client/agent_client.h"
#include "config/envelope_options.h"
#include "config/node_config.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "net/unix_socket.h"
#include "proto/omd.pb.h"
#include "testing/daemon_harness.h"
#include "testing/eventually.h"

namespace omd::action {
namespace {

using ::omd::testing::Eventually;

using ::omd::testing::DaemonProcess;
using ::omd::testing::OmResult;
using ::omd::testing::RunOm;
using ::testing::HasSubstr;

std::string TestProgram() { return ::omd::testing::Runfile("action/action_test_program"); }

bool ProcessGone(int64_t pid) {
  if (kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return true;
  const size_t after_name = line.rfind(')');
  return after_name != std::string::npos && after_name + 2 < line.size() &&
         line[after_name + 2] == 'Z';  // a zombie its reaper has not waited for yet
}

int64_t ReadPid(const std::string& path) {
  std::ifstream file(path);
  std::string text;
  std::getline(file, text);
  int64_t pid = 0;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) ? pid : 0;
}

v1::ServiceActionRequest Action(std::vector<std::string> command, bool sync = true,
                                uint32_t timeout_seconds = 0) {
  v1::ServiceActionRequest request;
  request.set_svcname("svc1");
  for (std::string& argument : command) request.add_command(std::move(argument));
  request.set_sync(sync);
  request.set_timeout_seconds(timeout_seconds);
  return request;
}

class ActionDaemonTest : public ::testing::Test {
 protected:
  void StartDaemon(std::vector<std::string> flags) {
    DaemonProcess::Options options;
    options.node.node_name = "node1";
    options.extra_flags = std::move(flags);
    absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
  }

  void TearDown() override {
    if (daemon_ != nullptr) {
      absl::Status stopped = daemon_->Stop();
      EXPECT_TRUE(stopped.ok()) << stopped;
    }
  }

  // A client of the daemon's control socket, as om is.
  std::unique_ptr<client::AgentClient> Agent(absl::Duration timeout = absl::Seconds(30)) {
    absl::StatusOr<std::unique_ptr<client::AgentClient>> agent =
        ::omd::testing::ControlClient(daemon_->root(), timeout);
    EXPECT_TRUE(agent.ok()) << agent.status();
    return agent.ok() ? *std::move(agent) : nullptr;
  }


  absl::StatusOr<v1::ServiceActionReply> Run(const v1::ServiceActionRequest& request,
                                             absl::Duration timeout = absl::Seconds(30)) {
    return Agent(timeout)->Call<v1::ServiceActionReply>("ServiceAction", request);
  }

  absl::StatusOr<v1::ListActionsReply> List(const std::string& id = "") {
    v1::ListActionsRequest request;
    request.set_session_id(id);
    return Agent()->Call<v1::ListActionsReply>("ListActions", request);
  }

  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(ActionDaemonTest, ASyncActionAnswersWithItsOutputAndExitCode) {
  StartDaemon({"--action_command=" + TestProgram()});
  absl::StatusOr<v1::ServiceActionReply> reply =
      Run(Action({"print", "all good\n", "a warning\n", "3"}));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->exit_code(), 3);
  EXPECT_EQ(reply->stdout(), "all good\n");
  EXPECT_EQ(reply->stderr(), "a warning\n");
  EXPECT_GT(reply->pid(), 0);
  EXPECT_EQ(reply->session_id().size(), 32u);
  EXPECT_FALSE(reply->timed_out());
  absl::StatusOr<v1::ListActionsReply> listed = List(reply->session_id());
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->actions_size(), 1);
  EXPECT_EQ(listed->actions(0).state(), "failed");
  EXPECT_EQ(listed->actions(0).requested_by(), "node1");
  EXPECT_TRUE(listed->actions(0).sync());
}

TEST_F(ActionDaemonTest, AnAsyncActionIsFollowedWithListActionsAndOm) {
  StartDaemon({"--action_command=" + TestProgram()});
  const absl::Time before = absl::Now();
  absl::StatusOr<v1::ServiceActionReply> reply =
      Run(Action({"sleep", "2"}, /*sync=*/false));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_LT(absl::Now() - before, absl::Seconds(2)) << "an async action answers at once";
  const std::string id = reply->session_id();
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(reply->pid(), 0);
  absl::StatusOr<v1::ListActionsReply> listed = List(id);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->actions_size(), 1);
  EXPECT_EQ(listed->actions(0).state(), "running");
  OmResult running = RunOm(daemon_->root(), {"daemon", "actions"});
  EXPECT_EQ(running.exit_code, 0) << running.stderr_text;
  EXPECT_THAT(running.stdout_text, HasSubstr(id));
  EXPECT_THAT(running.stdout_text, HasSubstr("running"));
  ASSERT_TRUE(Eventually([&] {
    absl::StatusOr<v1::ListActionsReply> now = List(id);
    return now.ok() && now->actions_size() == 1 && now->actions(0).state() == "succeeded";
  }));
  ASSERT_TRUE(Run(Action({"print", "second\n", "", "0"})).ok());
  listed = List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->actions_size(), 2);
  EXPECT_EQ(listed->actions(0).session_id(), id);  // by start time
  EXPECT_EQ(listed->actions(1).stdout(), "") << "the list of every action has no output";
  absl::StatusOr<v1::ListActionsReply> second = List(listed->actions(1).session_id());
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->actions(0).stdout(), "second\n");

  OmResult table = RunOm(daemon_->root(), {"daemon", "actions"});
  EXPECT_EQ(table.exit_code, 0) << table.stderr_text;
  EXPECT_THAT(table.stdout_text, HasSubstr("succeeded"));
  EXPECT_THAT(table.stdout_text, HasSubstr("sleep 2"));
  OmResult one = RunOm(daemon_->root(), {"daemon", "actions", "--id", listed->actions(1).session_id()});
  EXPECT_EQ(one.exit_code, 0) << one.stderr_text;
  EXPECT_THAT(one.stdout_text, HasSubstr("second\n"));
  EXPECT_THAT(one.stdout_text, HasSubstr("exit code 0"));
  EXPECT_THAT(one.stdout_text, ::testing::Not(HasSubstr(id)));
  OmResult json = RunOm(daemon_->root(), {"daemon", "actions", "--id", id, "--output", "json"});
  EXPECT_EQ(json.exit_code, 0) << json.stderr_text;
  google::protobuf::Struct document;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.stdout_text, &document).ok())
      << json.stdout_text;
  const auto& actions = document.fields().at("data").struct_value().fields().at("actions");
  ASSERT_EQ(actions.list_value().values_size(), 1);
  const auto& action = actions.list_value().values(0).struct_value().fields();
  EXPECT_EQ(action.at("session_id").string_value(), id);
  EXPECT_EQ(action.at("state").string_value(), "succeeded");
  EXPECT_EQ(action.at("exit_code").number_value(), 0);
  OmResult unknown = RunOm(daemon_->root(), {"daemon", "actions", "--id", "feedface"});
  EXPECT_EQ(unknown.exit_code, 5) << unknown.stderr_text;  // NOT_FOUND
  EXPECT_THAT(unknown.stderr_text, HasSubstr("feedface"));
}

TEST_F(ActionDaemonTest, ASyncActionPastItsTimeoutIsKilledWithItsChildren) {
  StartDaemon({"--action_command=" + TestProgram()});
  const std::string pid_file = daemon_->root() + "/hang.pid";
  const absl::Time before = absl::Now();
  absl::StatusOr<v1::ServiceActionReply> reply =
      Run(Action({"hang", pid_file}, true, /*timeout_seconds=*/1));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_GE(absl::Now() - before, absl::Seconds(1));
  EXPECT_TRUE(reply->timed_out());
  EXPECT_EQ(reply->exit_code(), -1);
  EXPECT_EQ(reply->stdout(), "hanging\n");
  const int64_t child = ReadPid(pid_file);
  ASSERT_GT(child, 0);
  EXPECT_TRUE(Eventually([&] { return ProcessGone(reply->pid()); }));
  EXPECT_TRUE(Eventually([&] { return ProcessGone(child); })) << "child " << child;
  absl::StatusOr<v1::ListActionsReply> listed = List(reply->session_id());
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->actions(0).state(), "timed out");
}

// With no timeout of its own, a sync action ends with the call's deadline, and
// its reply still gets back in time.
TEST_F(ActionDaemonTest, ASyncActionEndsBeforeItsCallersDeadline) {
  StartDaemon({"--action_command=" + TestProgram()});
  absl::StatusOr<v1::ServiceActionReply> reply =
      Run(Action({"sleep", "60"}), /*timeout=*/absl::Seconds(3));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->timed_out());
}

TEST_F(ActionDaemonTest, PastTheCapAndWithBadCommandsNothingRuns) {
  StartDaemon({"--action_command=" + TestProgram(), "--max_actions=1"});
  absl::StatusOr<v1::ServiceActionReply> first = Run(Action({"sleep", "60"}, false));
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<v1::ServiceActionReply> second = Run(Action({"print", "x", "", "0"}));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted) << second.status();
  for (const v1::ServiceActionRequest& bad :
       {Action({}), Action({"start", "--root=/"}), Action({"--flagfile=/tmp/x"})}) {
    absl::StatusOr<v1::ServiceActionReply> refused = Run(bad);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  }
  v1::ServiceActionRequest daemon_command = Action({"stop"});
  daemon_command.set_svcname("daemon");
  EXPECT_EQ(Run(daemon_command).status().code(), absl::StatusCode::kInvalidArgument);
  absl::StatusOr<v1::ListActionsReply> listed = List();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->actions_size(), 1);
  EXPECT_EQ(listed->actions(0).session_id(), first->session_id());
  EXPECT_EQ(List("0123").status().code(), absl::StatusCode::kNotFound);
}

// A daemon stop ends the running actions; a sync caller gets its reply.
TEST_F(ActionDaemonTest, StoppingTheDaemonEndsItsActions) {
  StartDaemon({"--action_command=" + TestProgram()});
  const std::string pid_file = daemon_->root() + "/hang.pid";
  absl::StatusOr<v1::ServiceActionReply> reply;
  // Made here: the caller's thread must not read daemon_, which this one resets.
  std::unique_ptr<client::AgentClient> agent = Agent();
  std::thread caller([&] {
    reply = agent->Call<v1::ServiceActionReply>("ServiceAction", Action({"hang", pid_file}));
  });
  ASSERT_TRUE(Eventually([&] { return ReadPid(pid_file) > 0; }));
  const int64_t child = ReadPid(pid_file);
  const absl::Time stopping = absl::Now();
  absl::Status stopped = daemon_->Stop();
  daemon_.reset();
  caller.join();
  EXPECT_TRUE(stopped.ok()) << stopped;
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(15));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->exit_code(), -1);
  EXPECT_FALSE(reply->timed_out());
  EXPECT_TRUE(Eventually([&] { return ProcessGone(child); })) << "child " << child;
}

// Each reply fits gRPC's 4 MiB: an action's output is capped, and the list of
// every action has none.
TEST_F(ActionDaemonTest, RepliesFitWhateverTheActionsPrinted) {
  StartDaemon({"--action_command=" + TestProgram()});
  std::string last;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<v1::ServiceActionReply> reply = Run(Action({"flood", "1000000"}));
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->stdout().size(), 256u << 10);
    EXPECT_TRUE(reply->stdout_truncated());
    EXPECT_TRUE(reply->stderr_truncated());
    last = reply->session_id();
  }
  absl::StatusOr<v1::ListActionsReply> listed = List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->actions_size(), 20);
  absl::StatusOr<v1::ListActionsReply> one = List(last);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->actions(0).stderr().size(), 256u << 10);
  OmResult table = RunOm(daemon_->root(), {"daemon", "actions", "--output", "json"});
  EXPECT_EQ(table.exit_code, 0) << table.stderr_text;
}

// om's side (sync): the action's stdout, its stderr, its exit code.
TEST_F(ActionDaemonTest, OmRunsAnActionThroughTheDaemonAndTakesItsExitCode) {
  StartDaemon({"--action_command=" + TestProgram()});
  client::CommandContext context;
  context.root = daemon_->root();
  context.svcname = "svc1";
  context.timeout = absl::Seconds(30);
  client::CommandResult result =
      client::RunServiceActionRemotely(context, {"print", "out\n", "err", "4"});
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.node, "node1");
  EXPECT_EQ(result.text, "out\n");
  EXPECT_EQ(result.error_text, "err\n");
  ASSERT_TRUE(result.exit_code.has_value());
  EXPECT_EQ(*result.exit_code, 4);
  EXPECT_EQ(client::ExitStatus(result), 4);
  EXPECT_EQ(client::RenderText(result), "out\n");  // as it printed it

  // om's --timeout bounds the action, and the reply still comes back.
  context.timeout = absl::Seconds(3);
  result = client::RunServiceActionRemotely(context, {"sleep", "60"});
  ASSERT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(client::ExitStatus(result), 1);
  EXPECT_THAT(result.error_text, HasSubstr("timed out on node1"));

  result = client::RunServiceActionRemotely(context, {"start", "--root=/"});
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument) << result.status;
  EXPECT_FALSE(result.exit_code.has_value());
}

// The real om: its own error, its own exit code.
TEST_F(ActionDaemonTest, TheRealOmAnswersWithItsOwnExitCodeAndError) {
  StartDaemon({});
  absl::StatusOr<v1::ServiceActionReply> reply = Run(Action({"no-such-subcommand"}));
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_NE(reply->exit_code(), 0);
  EXPECT_GT(reply->exit_code(), 0);
  EXPECT_FALSE(reply->stderr().empty());
  EXPECT_THAT(reply->stderr(), HasSubstr("om: "));
  EXPECT_FALSE(reply->timed_out());
}

}  // namespace
}  // namespace omd::action

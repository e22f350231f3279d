// End to end: real omd processes on loopback addresses, driven by the real om
// binary, as a user would.
#include <signal.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "config/atomic_file.h"
#include "config/node_config.h"
#include "process/subprocess.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "crypto/envelope.h"
#include "proto/omd.pb.h"
#include "rpc/agent_methods.h"
#include "testing/daemon_harness.h"
#include "testing/reflection.grpc.pb.h"

namespace omd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DaemonProcess::Options options;
    options.node.node_name = "node1";
    options.node.cluster_nodes = {"node1", "node2"};
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

  // A root for another node of the cluster, talking to daemon_ with --server.
  std::string PeerRoot(const std::string& name, const std::string& secret = kTestSecret) {
    const std::string root = NewTempDir(name);
    NodeConfSpec spec;
    spec.node_name = name;
    spec.secret = secret;
    spec.cluster_nodes = {"node1", "node2"};
    EXPECT_TRUE(WriteNodeConf(root, spec).ok());
    return root;
  }

  OmResult OmAsPeer(const std::string& root, std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", daemon_->address()});
    return RunOm(root, args);
  }

  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(EndToEndTest, BlacklistStatusPrintsTheSpecDocument) {
  OmResult result = RunOm(daemon_->root(), {"daemon", "blacklist", "status", "--output", "json"});
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  EXPECT_EQ(result.stdout_text, "{\"data\": {}, \"node\": \"node1\", \"status\": 0}\n");

  result = RunOm(daemon_->root(), {"daemon", "blacklist", "status"});
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  EXPECT_EQ(result.stdout_text, "node1: No sender has sent invalid messages.\n");
}

TEST_F(EndToEndTest, WrongSecretIsUnauthenticatedFiveTimesThenDropped) {
  const std::string impostor = PeerRoot("node2", "this-is-not-the-cluster-secret");
  for (int i = 1; i <= 5; ++i) {
    OmResult result = OmAsPeer(impostor, {"daemon", "blacklist", "status", "--output", "json"});
    EXPECT_EQ(result.exit_code, 16) << i;
    EXPECT_EQ(result.stdout_text,
              "{\"error\": [\"UNAUTHENTICATED: message authentication failed\"], "
              "\"status\": 16}\n")
        << i;
  }
  OmResult sixth = OmAsPeer(impostor, {"daemon", "blacklist", "status"});
  EXPECT_EQ(sixth.exit_code, 7);
  EXPECT_THAT(sixth.stderr_text, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(sixth.stderr_text, HasSubstr("blacklisted"));

  OmResult status =
      RunOm(daemon_->root(), {"daemon", "blacklist", "status", "--output", "json"});
  EXPECT_EQ(status.stdout_text,
            "{\"data\": {\"node2@127.0.0.1\": 5}, \"node\": \"node1\", \"status\": 0}\n");
  status = RunOm(daemon_->root(), {"daemon", "blacklist", "status"});
  EXPECT_THAT(status.stdout_text, HasSubstr("blacklisted"));

  OmResult cleared = RunOm(daemon_->root(), {"daemon", "blacklist", "clear", "--output", "json"});
  EXPECT_EQ(cleared.stdout_text,
            "{\"data\": {\"cleared\": 1}, \"node\": \"node1\", \"status\": 0}\n");
  // The real node2, from the same address, is served again.
  OmResult real = OmAsPeer(PeerRoot("node2"), {"daemon", "blacklist", "status"});
  EXPECT_EQ(real.exit_code, 0) << real.stderr_text;
}

TEST_F(EndToEndTest, NonMemberWithTheRightSecretIsDenied) {
  const std::string root = NewTempDir("node3");
  NodeConfSpec spec;
  spec.node_name = "node3";
  spec.cluster_nodes = {"node1", "node2", "node3"};  // node3 thinks it is a member
  ASSERT_TRUE(WriteNodeConf(root, spec).ok());
  OmResult result = OmAsPeer(root, {"daemon", "blacklist", "status"});
  EXPECT_EQ(result.exit_code, 7);
  EXPECT_THAT(result.stderr_text, HasSubstr("node node3 is not a member of the cluster"));
}

// The empty packet makes omd run `om node dequeue actions`, which runs the queued
// om commands against the daemon, in name order.
TEST_F(EndToEndTest, EmptyPacketDequeuesActions) {
  const std::string queue = daemon_->root() + "/var/actions/queue";
  ASSERT_TRUE(config::MakeDirectories(queue, 0750).ok());
  ASSERT_TRUE(config::WriteFileAtomically(queue + "/001-status.json",
                                          "[\"daemon\", \"blacklist\", \"status\"]", 0600)
                  .ok());
  ASSERT_TRUE(
      config::WriteFileAtomically(queue + "/002-bad.json", "[\"no-such-command\"]", 0600)
          .ok());
  OmResult sent = RunOm(daemon_->root(), {"daemon", "empty-packet"});
  ASSERT_EQ(sent.exit_code, 0) << sent.stderr_text;

  const std::string done = daemon_->root() + "/var/actions/done/001-status.json";
  const std::string failed = daemon_->root() + "/var/actions/failed/002-bad.json";
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  struct stat unused;
  while ((stat(done.c_str(), &unused) != 0 || stat(failed.c_str(), &unused) != 0) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::StatusOr<std::string> done_output =
      config::ReadFileToString(daemon_->root() + "/var/actions/done/001-status.json.out", 1 << 20);
  ASSERT_TRUE(done_output.ok()) << done_output.status() << "\n" << daemon_->Log();
  EXPECT_THAT(*done_output, HasSubstr("No sender has sent invalid messages."));
  absl::StatusOr<std::string> failed_output =
      config::ReadFileToString(daemon_->root() + "/var/actions/failed/002-bad.json.out", 1 << 20);
  ASSERT_TRUE(failed_output.ok()) << failed_output.status();
  EXPECT_THAT(*failed_output, HasSubstr("unknown command"));
}

// A JSON list of strings, for a queued action; quotes and backslashes escaped.
std::string JsonList(const std::vector<std::string>& arguments) {
  std::string json = "[";
  for (const std::string& argument : arguments) {
    if (json.size() > 1) json += ", ";
    json += '"';
    for (char c : argument) {
      if (c == '"' || c == '\\') json += '\\';
      json += c;
    }
    json += '"';
  }
  return json + "]";
}

// Waits until each of `names` queued under `actions` (ROOT/var/actions) is in
// done/ or failed/ with its .out; false after `timeout`.
bool WaitUntilDequeued(const std::string& actions, const std::vector<std::string>& names,
                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    bool all = true;
    struct stat unused;
    for (const std::string& name : names) {
      all = all && (stat((actions + "/done/" + name + ".out").c_str(), &unused) == 0 ||
                    stat((actions + "/failed/" + name + ".out").c_str(), &unused) == 0);
    }
    if (all) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

// A queued action may name a command and that command's own options, never om's
// global flags: a --flagfile action cannot copy a file into its .out, --server
// and --root actions cannot reach another node, and a plain action still runs.
TEST_F(EndToEndTest, QueuedActionsCannotUseGlobalFlags) {
  // node2, a daemon of the cluster with an action of its own queued, which would
  // run if node2 received an empty packet or if its root were dequeued.
  DaemonProcess::Options node2_options;
  node2_options.node.node_name = "node2";
  node2_options.node.cluster_nodes = {"node1", "node2"};
  absl::StatusOr<std::unique_ptr<DaemonProcess>> node2 = DaemonProcess::Start(node2_options);
  ASSERT_TRUE(node2.ok()) << node2.status();
  const std::string node2_marker = (*node2)->root() + "/var/actions/queue/marker.json";
  ASSERT_TRUE(config::MakeDirectories((*node2)->root() + "/var/actions/queue", 0750).ok());
  ASSERT_TRUE(config::WriteFileAtomically(
                  node2_marker, JsonList({"daemon", "blacklist", "status"}), 0600)
                  .ok());

  const std::string secret_line = "e2e-secret-line-7d41c0";
  const std::string secret_file = NewTempDir("private") + "/flags";
  ASSERT_TRUE(config::WriteFileAtomically(secret_file, secret_line + "\n", 0600).ok());

  const std::string actions = daemon_->root() + "/var/actions";
  ASSERT_TRUE(config::MakeDirectories(actions + "/queue", 0750).ok());
  const std::vector<std::pair<std::string, std::vector<std::string>>> refused = {
      {"001-flagfile.json", {"--flagfile=" + secret_file, "daemon", "blacklist", "status"}},
      {"002-flagfile-after.json",
       {"daemon", "blacklist", "status", "--flagfile=" + secret_file}},
      {"003-server.json", {"daemon", "empty-packet", "--server=" + (*node2)->address()}},
      {"004-root.json", {"--root=" + (*node2)->root(), "node", "dequeue", "actions"}},
  };
  std::vector<std::string> names;
  for (const auto& [name, arguments] : refused) {
    ASSERT_TRUE(
        config::WriteFileAtomically(actions + "/queue/" + name, JsonList(arguments), 0600)
            .ok());
    names.push_back(name);
  }
  ASSERT_TRUE(config::WriteFileAtomically(actions + "/queue/005-plain.json",
                                          JsonList({"daemon", "blacklist", "status"}), 0600)
                  .ok());
  names.push_back("005-plain.json");

  OmResult sent = RunOm(daemon_->root(), {"daemon", "empty-packet"});
  ASSERT_EQ(sent.exit_code, 0) << sent.stderr_text;
  ASSERT_TRUE(WaitUntilDequeued(actions, names, absl::Seconds(30))) << daemon_->Log();

  for (const auto& [name, arguments] : refused) {
    SCOPED_TRACE(name);
    absl::StatusOr<std::string> out =
        config::ReadFileToString(actions + "/failed/" + name + ".out", 1 << 20);
    if (!out.ok()) {
      ADD_FAILURE() << out.status() << " (was it run, into done/?)";
      continue;
    }
    EXPECT_THAT(*out, ::testing::StartsWith(
                          "error: INVALID_ARGUMENT: queued actions may not use om's "
                          "global flags: \""));
    EXPECT_THAT(*out, Not(HasSubstr(secret_line)));
    EXPECT_THAT(*out, Not(HasSubstr("exit_code")));  // om never ran
  }
  absl::StatusOr<std::string> plain =
      config::ReadFileToString(actions + "/done/005-plain.json.out", 1 << 20);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_THAT(*plain, HasSubstr("exit_code: 0"));
  EXPECT_THAT(*plain, HasSubstr("No sender has sent invalid messages."));

  // node2 got no empty packet and its root was not dequeued: its action is still
  // queued a while after node1's run, and it has seen no message from anyone.
  absl::SleepFor(absl::Milliseconds(500));
  struct stat queued;
  EXPECT_EQ(stat(node2_marker.c_str(), &queued), 0) << "node2's queue was run";
  OmResult node2_status =
      RunOm((*node2)->root(), {"daemon", "blacklist", "status", "--output", "json"});
  EXPECT_EQ(node2_status.stdout_text, "{\"data\": {}, \"node\": \"node2\", \"status\": 0}\n");
  EXPECT_EQ((*node2)->Stop(), absl::OkStatus());
}

TEST_F(EndToEndTest, UnauthenticatedEmptyPacketIsJustAnInvalidMessage) {
  const std::string impostor = PeerRoot("node2", "this-is-not-the-cluster-secret");
  const std::string queue = daemon_->root() + "/var/actions/queue";
  ASSERT_TRUE(config::MakeDirectories(queue, 0750).ok());
  ASSERT_TRUE(config::WriteFileAtomically(queue + "/001.json", "[\"daemon\", \"blacklist\", \"status\"]", 0600).ok());
  OmResult sent = OmAsPeer(impostor, {"daemon", "empty-packet"});
  EXPECT_EQ(sent.exit_code, 16);
  OmResult status =
      RunOm(daemon_->root(), {"daemon", "blacklist", "status", "--output", "json"});
  EXPECT_EQ(status.stdout_text,
            "{\"data\": {\"node2@127.0.0.1\": 1}, \"node\": \"node1\", \"status\": 0}\n");
  absl::SleepFor(absl::Milliseconds(500));
  struct stat queued;
  EXPECT_EQ(stat((queue + "/001.json").c_str(), &queued), 0) << "the queue was run";
}

TEST_F(EndToEndTest, BadInvocationsGetClearErrors) {
  OmResult unknown = RunOm(daemon_->root(), {"daemon", "frobnicate", "--output", "json"});
  EXPECT_EQ(unknown.exit_code, 3);
  EXPECT_THAT(unknown.stdout_text, HasSubstr("unknown command \\\"daemon frobnicate\\\""));

  OmResult extra = RunOm(daemon_->root(), {"daemon", "blacklist", "status", "now"});
  EXPECT_EQ(extra.exit_code, 3);
  EXPECT_THAT(extra.stderr_text, HasSubstr("unexpected argument \"now\""));

  OmResult output = RunOm(daemon_->root(), {"daemon", "blacklist", "status", "--output", "xml"});
  EXPECT_EQ(output.exit_code, 3);
  EXPECT_THAT(output.stderr_text, HasSubstr("--output must be human or json"));

  OmResult no_root = RunOm("/nonexistent/omd", {"daemon", "blacklist", "status"});
  EXPECT_EQ(no_root.exit_code, 5);
  EXPECT_THAT(no_root.stderr_text, HasSubstr("/nonexistent/omd/etc/node.conf"));

  OmResult no_daemon = RunOm(daemon_->root(), {"--server", "127.0.0.1:1", "--timeout", "2s",
                                               "daemon", "blacklist", "status"});
  EXPECT_EQ(no_daemon.exit_code, 14);  // UNAVAILABLE
}

TEST_F(EndToEndTest, HelpTellsTheTruth) {
  OmResult om_help = RunOm(daemon_->root(), {"--help"});
  EXPECT_THAT(om_help.stdout_text + om_help.stderr_text, HasSubstr("om daemon blacklist status"));
  EXPECT_THAT(om_help.stdout_text + om_help.stderr_text, HasSubstr("--output"));
}

// Another language can generate typed helpers from what reflection serves: the
// service, and its methods' carries options.
TEST_F(EndToEndTest, ReflectionServesTheAgentDescriptor) {
  using grpc::reflection::v1alpha::ServerReflection;
  using grpc::reflection::v1alpha::ServerReflectionRequest;
  using grpc::reflection::v1alpha::ServerReflectionResponse;
  auto stub = ServerReflection::NewStub(
      grpc::CreateChannel(daemon_->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto stream = stub->ServerReflectionInfo(&context);
  ServerReflectionRequest list;
  list.set_list_services("");
  ServerReflectionRequest file;
  file.set_file_containing_symbol("omd.v1.Agent");
  ASSERT_TRUE(stream->Write(list));
  ASSERT_TRUE(stream->Write(file));
  ASSERT_TRUE(stream->WritesDone());

  ServerReflectionResponse services;
  ASSERT_TRUE(stream->Read(&services));
  std::vector<std::string> names;
  for (const auto& service : services.list_services_response().service()) {
    names.push_back(service.name());
  }
  EXPECT_THAT(names, ::testing::IsSupersetOf({"omd.v1.Agent", "grpc.health.v1.Health"}));

  ServerReflectionResponse files;
  ASSERT_TRUE(stream->Read(&files));
  ASSERT_GE(files.file_descriptor_response().file_descriptor_proto_size(), 1);
  google::protobuf::FileDescriptorProto omd_proto;
  ASSERT_TRUE(omd_proto.ParseFromString(
      files.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(omd_proto.name(), "proto/omd.proto");
  ASSERT_EQ(omd_proto.service_size(), 1);
  const google::protobuf::ServiceDescriptorProto& agent = omd_proto.service(0);
  EXPECT_EQ(agent.method_size(),
            v1::Envelope::descriptor()->file()->FindServiceByName("Agent")->method_count());
  for (const auto& method : agent.method()) {
    const v1::Carries& carries = method.options().GetExtension(v1::carries);
    EXPECT_TRUE(absl::StartsWith(carries.request(), "omd.v1.")) << method.name();
    EXPECT_TRUE(absl::StartsWith(carries.reply(), "omd.v1.")) << method.name();
  }
  EXPECT_TRUE(stream->Finish().ok());
}

// Two daemons of one cluster on their own addresses: each serves the other's node.
TEST(MultiNodeTest, PeersOnTheirOwnAddressesServeEachOther) {
  std::vector<std::unique_ptr<DaemonProcess>> nodes;
  for (const auto& [name, address] :
       std::vector<std::pair<std::string, std::string>>{{"node1", "127.0.0.2"},
                                                        {"node2", "127.0.0.3"}}) {
    DaemonProcess::Options options;
    options.node.node_name = name;
    options.node.cluster_nodes = {"node1", "node2"};
    options.node.listen_address = address;
    absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    EXPECT_TRUE(absl::StartsWith((*daemon)->address(), address + ":"));
    nodes.push_back(*std::move(daemon));
  }
  for (int from = 0; from < 2; ++from) {
    const DaemonProcess& to = *nodes[1 - from];
    const std::string to_name = from == 0 ? "node2" : "node1";
    OmResult result = RunOm(nodes[from]->root(),
                            {"--server", to.address(), "--node", to_name, "daemon",
                             "blacklist", "status", "--output", "json"});
    EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
    EXPECT_EQ(result.stdout_text,
              absl::StrCat("{\"data\": {}, \"node\": \"", to_name, "\", \"status\": 0}\n"));
    // Sealed for the other node: this daemon refuses it.
    OmResult misdirected = RunOm(nodes[from]->root(),
                                 {"--server", to.address(), "--node", "node3", "daemon",
                                  "blacklist", "status"});
    EXPECT_EQ(misdirected.exit_code, 16);
    EXPECT_THAT(misdirected.stderr_text, HasSubstr("envelope for another node"));
  }
  for (auto& node : nodes) EXPECT_EQ(node->Stop(), absl::OkStatus());
}

// om given only a peer's address learns which node it is (Identify), binds its
// request to that node, and says which node answered.
TEST(MultiNodeTest, OmWithServerAloneLearnsAndShowsTheNode) {
  std::vector<std::unique_ptr<DaemonProcess>> nodes;
  for (const char* name : {"node1", "node2"}) {
    DaemonProcess::Options options;
    options.node.node_name = name;
    options.node.cluster_nodes = {"node1", "node2"};
    options.node.listen_address = std::string(name) == "node1" ? "127.0.0.1" : "127.0.0.2";
    absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    nodes.push_back(*std::move(daemon));
  }
  OmResult json = RunOm(nodes[0]->root(), {"--server", nodes[1]->address(), "daemon",
                                           "blacklist", "status", "--output", "json"});
  EXPECT_EQ(json.exit_code, 0) << json.stderr_text;
  EXPECT_EQ(json.stdout_text, "{\"data\": {}, \"node\": \"node2\", \"status\": 0}\n");
  OmResult human =
      RunOm(nodes[0]->root(), {"--server", nodes[1]->address(), "daemon", "blacklist", "clear"});
  EXPECT_EQ(human.exit_code, 0) << human.stderr_text;
  EXPECT_EQ(human.stdout_text, "node2: Blacklist cleared (0 senders).\n");
  for (auto& node : nodes) EXPECT_EQ(node->Stop(), absl::OkStatus());
}

// A request accepted before a restart of omd, clean or not, is still a replay
// after it: the replay guard's journal outlives the process.
TEST(ReplayAcrossRestartsTest, ARestartDoesNotReopenTheWindow) {
  DaemonProcess::Options options;
  options.node.cluster_nodes = {"node1", "node2"};
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  options.root = (*daemon)->root();
  crypto::EnvelopeOptions node2;
  node2.cluster = "test";
  node2.nodename = "node2";
  node2.secrets = {{1, kTestSecret}};
  crypto::EnvelopeCodec codec(node2);
  for (const bool clean : {true, false}) {
    SCOPED_TRACE(clean ? "SIGTERM" : "SIGKILL");
    const std::string request =
        codec
            .Seal(crypto::Direction::kRequest,
                  rpc::MethodPath(*rpc::AgentService().FindMethodByName("BlacklistStatus")),
                  "node1", crypto::EnvelopeCodec::NewSalt(), "")
            .value()
            .SerializeAsString();
    auto send = [&] {
      return CallAgentMethod(ChannelFromSource("127.0.0.2", (*daemon)->address()).value().get(),
                             "BlacklistStatus", request);
    };
    ASSERT_TRUE(send().ok());
    if (clean) {
      ASSERT_EQ((*daemon)->Stop(), absl::OkStatus());
    } else {
      kill((*daemon)->pid(), SIGKILL);
      (*daemon)->Stop().IgnoreError();  // reaps it
    }
    daemon = DaemonProcess::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    grpc::Status replay = send();
    EXPECT_EQ(replay.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(replay.error_message(), "replayed request");
  }
  EXPECT_THAT((*daemon)->Log(), Not(HasSubstr("refusing requests sent before")));
  EXPECT_EQ((*daemon)->Stop(), absl::OkStatus());
}

// A rotation in progress: the daemon seals with generation 2 and still opens
// generation 1, so nodes not yet rotated keep working; a node rotated ahead of it
// is refused until the daemon has the new secret.
TEST(KeyRotationTest, PreviousGenerationIsAcceptedDuringARotation) {
  const std::string new_secret = "the-new-cluster-secret-0123456789";
  DaemonProcess::Options options;
  options.node.cluster_nodes = {"node1", "node2"};
  options.node.secret = new_secret;
  options.node.key_generation = 2;
  options.node.previous_secret = kTestSecret;
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto peer = [&](const std::string& secret, uint32_t generation) {
    const std::string root = NewTempDir("node2");
    NodeConfSpec spec;
    spec.node_name = "node2";
    spec.cluster_nodes = {"node1", "node2"};
    spec.secret = secret;
    spec.key_generation = generation;
    EXPECT_TRUE(WriteNodeConf(root, spec).ok());
    return RunOm(root, {"--server", (*daemon)->address(), "daemon", "blacklist", "status"});
  };
  OmResult old_key = peer(kTestSecret, 1);
  EXPECT_EQ(old_key.exit_code, 0) << old_key.stderr_text;
  OmResult new_key = peer(new_secret, 2);
  EXPECT_EQ(new_key.exit_code, 0) << new_key.stderr_text;
  OmResult unknown = peer("a-generation-three-secret-value", 3);
  EXPECT_EQ(unknown.exit_code, 16);
  EXPECT_THAT(unknown.stderr_text, HasSubstr("unknown key generation 3"));
  EXPECT_EQ((*daemon)->Stop(), absl::OkStatus());
}

TEST(DaemonStartTest, BadConfigurationIsRefusedClearly) {
  DaemonProcess::Options options;
  options.node.extra = "clock_skew = forever\n";  // in [listener], the last section
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
  ASSERT_FALSE(daemon.ok());
  EXPECT_THAT(daemon.status().message(), HasSubstr("clock_skew"));
  EXPECT_THAT(daemon.status().message(), Not(HasSubstr(kTestSecret)));
}

TEST(DaemonStartTest, AnAddressInUseIsRefusedClearly) {
  DaemonProcess::Options first;
  absl::StatusOr<std::unique_ptr<DaemonProcess>> running = DaemonProcess::Start(first);
  ASSERT_TRUE(running.ok()) << running.status();
  DaemonProcess::Options second;
  second.node.port = std::stoi((*running)->address().substr((*running)->address().rfind(':') + 1));
  absl::StatusOr<std::unique_ptr<DaemonProcess>> clash = DaemonProcess::Start(second);
  ASSERT_FALSE(clash.ok());
  EXPECT_THAT(clash.status().message(), HasSubstr("cannot listen on 127.0.0.1:"));
  EXPECT_EQ((*running)->Stop(), absl::OkStatus());
}

// SIGTERM during a long dequeue run: omd terminates the run and exits, promptly.
TEST(DaemonStopTest, StopsPromptlyDuringADequeueRun) {
  DaemonProcess::Options options;
  options.extra_flags = {"--dequeue_command", "/bin/sleep 60"};
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  OmResult sent = RunOm((*daemon)->root(), {"daemon", "empty-packet"});
  ASSERT_EQ(sent.exit_code, 0) << sent.stderr_text;
  absl::SleepFor(absl::Milliseconds(300));  // let the run start
  const absl::Time start = absl::Now();
  absl::Status stopped = (*daemon)->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_THAT((*daemon)->Log(), HasSubstr("dequeue run terminated: the daemon is stopping"));
}

TEST(DaemonStartTest, BadFlagsAreRefusedClearly) {
  process::ProcessOptions process;
  process.argv = {OmdPath(), "--root", NewTempDir("flags"), "--max_request_bytes", "1"};
  absl::StatusOr<process::ProcessResult> run = process::RunProcess(process);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 1);
  EXPECT_THAT(run->stderr_text, HasSubstr("--max_request_bytes must be between"));
}

// With no node.conf, omd writes a working default before it listens: a random
// 32-byte secret, in a file only its owner can read, and the default listener.
// (It serves on 127.0.0.1:1214 if that is free; the test only reads the file.)
TEST(DaemonStartTest, DefaultConfigurationIsCreatedPrivate) {
  const std::string root = NewTempDir("fresh");
  process::ProcessOptions process;
  process.argv = {OmdPath(), "--root", root, "--dequeue_command", "/bin/true"};
  process.timeout = absl::Seconds(2);  // then SIGTERM
  absl::StatusOr<process::ProcessResult> run = process::RunProcess(process);
  ASSERT_TRUE(run.ok()) << run.status();
  const std::string path = root + "/etc/node.conf";
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0) << run->stderr_text;
  EXPECT_EQ(info.st_mode & 0777, 0600);
  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(root);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->secret.size(), 64u);
  EXPECT_EQ(config->secret.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(config->listener_addr, "127.0.0.1");
  EXPECT_EQ(config->listener_port, 1214);
  EXPECT_EQ(config->cluster_nodes, std::vector<std::string>{config->node_name});
  EXPECT_THAT(run->stderr_text, Not(HasSubstr(config->secret)));
}

}  // namespace
}  // namespace omd::testing

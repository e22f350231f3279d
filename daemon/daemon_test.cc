// The daemon's own life, end to end with real omd and om processes: its status,
// its threads stopped, started and restarted, node.conf applied while it runs,
// the local control channel, stop, and actions a dead dequeuer left behind.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/agent_client.h"
#include "config/atomic_file.h"
#include "config/envelope_options.h"
#include "config/ini.h"
#include "config/node_config.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "net/listen_socket.h"
#include "net/unix_socket.h"
#include "proto/omd.pb.h"
#include "testing/daemon_harness.h"
#include "testing/eventually.h"

namespace omd::daemon {
namespace {

using ::omd::testing::Eventually;

using ::omd::testing::DaemonProcess;
using ::omd::testing::OmResult;
using ::omd::testing::RunOm;
using ::testing::HasSubstr;

// Polls `condition` every 50 ms for up to 15 s (a loaded machine is slow; the
// daemon itself reacts within a second).
google::protobuf::Struct Json(const std::string& text) {
  google::protobuf::Struct parsed;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &parsed).ok()) << text;
  return parsed;
}

// `om daemon status --output json`'s data.
google::protobuf::Struct StatusData(const std::string& root) {
  OmResult result = RunOm(root, {"daemon", "status", "--output", "json"});
  EXPECT_EQ(result.exit_code, 0) << result.stderr_text;
  return Json(result.stdout_text).fields().at("data").struct_value();
}

std::string ThreadState(const google::protobuf::Struct& status, const std::string& id) {
  const auto& threads = status.fields().at("threads").struct_value().fields();
  auto it = threads.find(id);
  if (it == threads.end()) return "(absent)";
  return it->second.struct_value().fields().at("state").string_value();
}

std::string ConfigField(const google::protobuf::Struct& status, const std::string& key) {
  return status.fields().at("config").struct_value().fields().at(key).string_value();
}

std::string RecordedAddress(const std::string& root) {
  absl::StatusOr<std::string> text =
      config::ReadFileToString(config::ListenerAddressPath(root), 4096);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "";
}

bool Serving(const std::string& target) {
  absl::StatusOr<bool> serving = testing::IsServing(target);
  return serving.ok() && *serving;
}

// Sets [section] key = value in ROOT/etc/node.conf, as `om node set` does.
void SetConfig(const std::string& root, const std::string& section,
               const std::string& key, const std::string& value) {
  absl::StatusOr<config::NodeConfig> updated = config::UpdateNodeConfig(
      root, [&](config::IniFile& ini) { return ini.Set(section, key, value); });
  ASSERT_TRUE(updated.ok()) << updated.status();
}

// DaemonStatus through the control socket, sealed with `config`'s secret.
v1::DaemonStatusReply ControlStatus(const std::string& root,
                                    const config::NodeConfig& config) {
  client::AgentClient::Options options;
  options.target = *net::UnixTarget(config::ControlSocketPath(root));
  options.envelope = config::EnvelopeOptionsFor(config);
  options.recipient = config.node_name;
  options.reply_senders = {config.node_name};
  absl::StatusOr<std::unique_ptr<client::AgentClient>> agent =
      client::AgentClient::Create(std::move(options));
  EXPECT_TRUE(agent.ok());
  absl::StatusOr<v1::DaemonStatusReply> reply =
      (*agent)->Call<v1::DaemonStatusReply>("DaemonStatus", v1::DaemonStatusRequest());
  EXPECT_TRUE(reply.ok()) << reply.status();
  return reply.ok() ? *reply : v1::DaemonStatusReply();
}

int FreePort() {
  absl::StatusOr<net::ListenSocket> socket = net::Listen("127.0.0.1", 0);
  close(socket->fd);
  return socket->port;
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DaemonProcess::Options options;
    options.node.node_name = "node1";
    options.node.cluster_nodes = {"node1", "node2"};
    options.node.node_addresses = {{"node2", "127.0.0.2:1215"}};
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

  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(DaemonTest, StatusShowsThreadsNodesAndConfiguration) {
  const google::protobuf::Struct status = StatusData(daemon_->root());
  for (const std::string id : {"listener", "reloader", "housekeeper", "heartbeat"}) {
    EXPECT_EQ(ThreadState(status, id), "running") << id;
  }
  const auto& nodes = status.fields().at("nodes").struct_value().fields();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes.at("node1").struct_value().fields().at("state").string_value(), "up");
  EXPECT_EQ(nodes.at("node1").struct_value().fields().at("address").string_value(),
            daemon_->address());
  EXPECT_EQ(nodes.at("node2").struct_value().fields().at("state").string_value(),
            "unknown");
  EXPECT_EQ(nodes.at("node2").struct_value().fields().at("address").string_value(),
            "127.0.0.2:1215");
  EXPECT_EQ(ConfigField(status, "listener_address"), daemon_->address());
  EXPECT_EQ(ConfigField(status, "cluster_name"), "test");
  EXPECT_EQ(ConfigField(status, "reload_error"), "");
  EXPECT_EQ(ConfigField(status, "control_socket"),
            config::ControlSocketPath(daemon_->root()));
  // The listener's counters: this om came in through the control socket, the
  // harness's health checks over TCP.
  const auto& listener = status.fields().at("listener").struct_value().fields();
  EXPECT_GE(listener.at("control_accepted").number_value(), 1);
  EXPECT_GE(listener.at("accepted").number_value(), 1);
  EXPECT_EQ(listener.at("rebuilds").number_value(), 0);
  EXPECT_FALSE(listener.at("shedding_outsiders").bool_value());
  const auto& open = listener.at("open_connections").struct_value().fields();
  for (const char* peer_class : {"local", "member", "other"}) {
    EXPECT_TRUE(open.contains(peer_class)) << peer_class;
  }

  OmResult text = RunOm(daemon_->root(), {"daemon", "status"});
  ASSERT_EQ(text.exit_code, 0) << text.stderr_text;
  EXPECT_THAT(text.stdout_text, HasSubstr("listener       running"));
  EXPECT_THAT(text.stdout_text, HasSubstr("node2"));
  EXPECT_THAT(text.stdout_text, HasSubstr("connections: "));
}

// The listener thread stopped: its port closes, the daemon and its control
// channel go on; started again, it listens where it did.
TEST_F(DaemonTest, TheListenerThreadStopsAndStarts) {
  const std::string address = daemon_->address();
  ASSERT_TRUE(Serving(address));
  OmResult stopped =
      RunOm(daemon_->root(), {"daemon", "stop", "--thread-id", "listener"});
  ASSERT_EQ(stopped.exit_code, 0) << stopped.stderr_text;
  EXPECT_THAT(stopped.stdout_text, HasSubstr("thread listener stopped"));
  EXPECT_FALSE(Serving(address)) << "the TCP port is closed";
  EXPECT_EQ(RecordedAddress(daemon_->root()), "");
  google::protobuf::Struct status = StatusData(daemon_->root());  // the control channel
  EXPECT_EQ(ThreadState(status, "listener"), "stopped");
  EXPECT_EQ(ConfigField(status, "listener_address"), "");
  absl::SleepFor(absl::Seconds(1));  // several supervisor backoffs: it stays stopped
  EXPECT_EQ(ThreadState(StatusData(daemon_->root()), "listener"), "stopped");

  OmResult again = RunOm(daemon_->root(), {"daemon", "stop", "--thread-id=listener"});
  EXPECT_EQ(again.exit_code, 9) << "FAILED_PRECONDITION";
  EXPECT_THAT(again.stderr_text, HasSubstr("already stopped"));

  OmResult started =
      RunOm(daemon_->root(), {"daemon", "start", "--thread-id", "listener"});
  ASSERT_EQ(started.exit_code, 0) << started.stderr_text;
  EXPECT_TRUE(Eventually([&] { return Serving(address); }));
  EXPECT_EQ(ThreadState(StatusData(daemon_->root()), "listener"), "running");
  // Recorded once bound, which a client may see serving a moment before.
  EXPECT_TRUE(Eventually([&] { return RecordedAddress(daemon_->root()) == address; }))
      << RecordedAddress(daemon_->root());
}

TEST_F(DaemonTest, ThreadErrorsAreClear) {
  OmResult unknown = RunOm(daemon_->root(), {"daemon", "stop", "--thread-id", "nosuch"});
  EXPECT_EQ(unknown.exit_code, 5) << "NOT_FOUND";
  EXPECT_THAT(unknown.stderr_text,
              HasSubstr("no thread \"nosuch\"; the threads are: heartbeat, housekeeper, "
                        "listener, monitor, reloader"));
  OmResult unknown_start =
      RunOm(daemon_->root(), {"daemon", "start", "--thread-id", "nosuch"});
  EXPECT_EQ(unknown_start.exit_code, 5);
  OmResult no_id = RunOm(daemon_->root(), {"daemon", "start"});
  EXPECT_EQ(no_id.exit_code, 3) << "INVALID_ARGUMENT";
  EXPECT_THAT(no_id.stderr_text, HasSubstr("needs --thread-id"));
  OmResult running =
      RunOm(daemon_->root(), {"daemon", "start", "--thread-id", "reloader"});
  EXPECT_EQ(running.exit_code, 9);
  EXPECT_THAT(running.stderr_text, HasSubstr("already running"));
  OmResult extra = RunOm(daemon_->root(), {"daemon", "status", "now"});
  EXPECT_EQ(extra.exit_code, 3);
  EXPECT_THAT(extra.stderr_text, HasSubstr("unexpected argument \"now\""));
  // Nothing changed.
  const google::protobuf::Struct status = StatusData(daemon_->root());
  for (const std::string id : {"listener", "reloader", "housekeeper", "heartbeat"}) {
    EXPECT_EQ(ThreadState(status, id), "running") << id;
  }
}

// A listener thread that cannot bind exits uncleanly: it is restarted, with
// backoff, and listens once the port is free.
TEST_F(DaemonTest, AListenerThatCannotBindIsRestartedUntilItCan) {
  // A port of its own (with port 0, a restart would take any free one).
  const int port = FreePort();
  const std::string address = absl::StrCat("127.0.0.1:", port);
  SetConfig(daemon_->root(), "listener", "port", absl::StrCat(port));
  ASSERT_TRUE(Eventually([&] { return RecordedAddress(daemon_->root()) == address; }));
  ASSERT_EQ(
      RunOm(daemon_->root(), {"daemon", "stop", "--thread-id", "listener"}).exit_code, 0);
  absl::StatusOr<net::ListenSocket> squatter = net::Listen("127.0.0.1", port);
  ASSERT_TRUE(squatter.ok()) << squatter.status();
  ASSERT_EQ(
      RunOm(daemon_->root(), {"daemon", "start", "--thread-id", "listener"}).exit_code,
      0);
  google::protobuf::Struct status;
  ASSERT_TRUE(Eventually([&] {
    status = StatusData(daemon_->root());
    const auto& listener = status.fields()
                               .at("threads")
                               .struct_value()
                               .fields()
                               .at("listener")
                               .struct_value();
    return listener.fields().at("restarts").number_value() >= 2;
  }));
  const auto& listener =
      status.fields().at("threads").struct_value().fields().at("listener").struct_value();
  EXPECT_THAT(listener.fields().at("last_error").string_value(),
              HasSubstr("cannot listen on"));
  close(squatter->fd);
  EXPECT_TRUE(Eventually([&] { return Serving(address); }));
  EXPECT_EQ(ThreadState(StatusData(daemon_->root()), "listener"), "running");
}

// node.conf's port changes: the listener moves within the reload interval, the
// old port closes, and om (through the control channel) never notices.
TEST_F(DaemonTest, APortChangeIsAppliedWithoutARestart) {
  const std::string before = daemon_->address();
  const int port = FreePort();
  SetConfig(daemon_->root(), "listener", "port", absl::StrCat(port));
  const std::string after = absl::StrCat("127.0.0.1:", port);
  EXPECT_TRUE(Eventually([&] { return RecordedAddress(daemon_->root()) == after; }));
  EXPECT_TRUE(Serving(after));
  EXPECT_FALSE(Serving(before));
  const google::protobuf::Struct status = StatusData(daemon_->root());
  EXPECT_EQ(ConfigField(status, "listener_address"), after);
  EXPECT_EQ(ConfigField(status, "reload_error"), "");
}

// A file that does not load, and a port that cannot be bound, leave the daemon
// serving as it was, with the error in its status and log.
TEST_F(DaemonTest, ABadReloadKeepsTheLastGoodConfiguration) {
  const std::string address = daemon_->address();
  const std::string path = config::NodeConfigPath(daemon_->root());
  absl::StatusOr<std::string> good = config::ReadFileToString(path, 1 << 20);
  ASSERT_TRUE(good.ok());
  absl::StatusOr<config::IniFile> bad = config::IniFile::Parse(*good);
  ASSERT_TRUE(bad.ok());
  ASSERT_TRUE(bad->Set("listener", "port", "not-a-port").ok());
  ASSERT_TRUE(config::WriteFileAtomically(path, bad->Serialize(), 0600).ok());
  // om reads node.conf too, and refuses to seal with a file that does not load:
  // the daemon is asked with the last good one.
  OmResult om = RunOm(daemon_->root(), {"daemon", "status"});
  EXPECT_EQ(om.exit_code, 3);
  EXPECT_THAT(om.stderr_text, HasSubstr("[listener] port"));
  absl::StatusOr<config::NodeConfig> last_good = config::ParseNodeConfig(*good);
  ASSERT_TRUE(last_good.ok());
  v1::DaemonStatusReply reply;
  ASSERT_TRUE(Eventually([&] {
    reply = ControlStatus(daemon_->root(), *last_good);
    return !reply.config().reload_error().empty();
  }));
  EXPECT_THAT(reply.config().reload_error(), HasSubstr("[listener] port"));
  EXPECT_EQ(reply.config().listener_address(), address);
  EXPECT_TRUE(Serving(address));
  EXPECT_THAT(daemon_->Log(), HasSubstr("the last good version stays in use"));
  google::protobuf::Struct status;

  absl::StatusOr<net::ListenSocket> taken = net::Listen("127.0.0.1", 0);
  ASSERT_TRUE(taken.ok());
  ASSERT_TRUE(config::WriteFileAtomically(path, *good, 0600).ok());
  SetConfig(daemon_->root(), "listener", "port", absl::StrCat(taken->port));
  ASSERT_TRUE(Eventually([&] {
    status = StatusData(daemon_->root());
    return absl::StrContains(ConfigField(status, "reload_error"), "cannot listen on");
  })) << ConfigField(status, "reload_error");
  EXPECT_EQ(ConfigField(status, "listener_address"), address);
  EXPECT_TRUE(Serving(address)) << "never listening nowhere";
  close(taken->fd);

  ASSERT_TRUE(config::WriteFileAtomically(path, *good, 0600).ok());
  ASSERT_TRUE(Eventually(
      [&] { return ConfigField(StatusData(daemon_->root()), "reload_error").empty(); }));
  EXPECT_TRUE(Serving(address));
}

// A new secret and node list take effect at the next request: om (which reads
// the new file) is served, a client still sealing with the old secret is not.
TEST_F(DaemonTest, SecretAndMembersChangeWithoutARestart) {
  absl::StatusOr<config::NodeConfig> old_config = config::LoadNodeConfig(daemon_->root());
  ASSERT_TRUE(old_config.ok());
  SetConfig(daemon_->root(), "cluster", "secret", "a-brand-new-cluster-secret-42");
  SetConfig(daemon_->root(), "cluster", "nodes", "node1 node2 node3");
  ASSERT_TRUE(Eventually([&] {
    OmResult result = RunOm(daemon_->root(), {"daemon", "status", "--output", "json"});
    return result.exit_code == 0 && Json(result.stdout_text)
                                            .fields()
                                            .at("data")
                                            .struct_value()
                                            .fields()
                                            .at("nodes")
                                            .struct_value()
                                            .fields()
                                            .size() == 3;
  }));

  client::AgentClient::Options options;
  options.target = daemon_->address();
  options.envelope = config::EnvelopeOptionsFor(*old_config);
  options.recipient = "node1";
  options.reply_senders = {"node1"};
  absl::StatusOr<std::unique_ptr<client::AgentClient>> stale =
      client::AgentClient::Create(std::move(options));
  ASSERT_TRUE(stale.ok());
  absl::StatusOr<v1::DaemonStatusReply> refused =
      (*stale)->Call<v1::DaemonStatusReply>("DaemonStatus", v1::DaemonStatusRequest());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated)
      << refused.status();
}

// A process forging this node's name from this host's address gets that sender
// blacklisted; the local operator, on the control channel, is never locked out.
TEST_F(DaemonTest, TheLocalOperatorIsNeverBlacklisted) {
  absl::StatusOr<config::NodeConfig> own = config::LoadNodeConfig(daemon_->root());
  ASSERT_TRUE(own.ok());
  crypto::EnvelopeOptions forged = config::EnvelopeOptionsFor(*own);
  forged.secrets = {{1, "not-the-secret-but-long-enough"}};
  crypto::EnvelopeCodec forger(forged);
  const std::string salt = crypto::EnvelopeCodec::NewSalt();
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      testing::ChannelFromSource("127.0.0.1", daemon_->address());
  ASSERT_TRUE(channel.ok());
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<v1::Envelope> envelope = forger.Seal(
        crypto::Direction::kRequest, "/omd.v1.Agent/BlacklistStatus", "node1", salt, "");
    ASSERT_TRUE(envelope.ok());
    EXPECT_FALSE(testing::CallAgentMethod(channel->get(), "BlacklistStatus",
                                          envelope->SerializeAsString())
                     .ok());
  }
  OmResult status = RunOm(daemon_->root(), {"daemon", "blacklist", "status"});
  ASSERT_EQ(status.exit_code, 0) << status.stderr_text;
  EXPECT_THAT(status.stdout_text, HasSubstr("blacklisted"));
  OmResult clear = RunOm(daemon_->root(), {"daemon", "blacklist", "clear"});
  ASSERT_EQ(clear.exit_code, 0) << clear.stderr_text;
  EXPECT_THAT(clear.stdout_text, HasSubstr("Blacklist cleared"));
  OmResult after = RunOm(daemon_->root(), {"daemon", "blacklist", "status"});
  EXPECT_THAT(after.stdout_text, HasSubstr("No sender has sent invalid messages"));
}

// The control socket is the owner's: mode 0600 from the start (the peer's uid
// check is net/connection_guard_test's).
TEST_F(DaemonTest, TheControlSocketIsTheOwnersAlone) {
  const std::string path = config::ControlSocketPath(daemon_->root());
  struct stat info {};
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(info.st_uid, geteuid());
}

TEST_F(DaemonTest, OmDaemonStopStopsTheDaemon) {
  OmResult stop = RunOm(daemon_->root(), {"daemon", "stop"});
  ASSERT_EQ(stop.exit_code, 0) << stop.stderr_text;
  EXPECT_THAT(stop.stdout_text, HasSubstr("the daemon stops"));
  EXPECT_TRUE(
      Eventually([&] { return absl::StrContains(daemon_->Log(), "omd stopped"); }));
  absl::Status stopped = daemon_->Stop();  // exited 0 already
  EXPECT_TRUE(stopped.ok()) << stopped;
  daemon_.reset();
}

TEST_F(DaemonTest, OmDaemonShutdownStopsTheDaemon) {
  OmResult shutdown = RunOm(daemon_->root(), {"daemon", "shutdown"});
  ASSERT_EQ(shutdown.exit_code, 0) << shutdown.stderr_text;
  EXPECT_TRUE(
      Eventually([&] { return absl::StrContains(daemon_->Log(), "omd stopped"); }));
  EXPECT_THAT(daemon_->Log(), HasSubstr("shutdown: no local service instance to stop"));
  absl::Status stopped = daemon_->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped;
  daemon_.reset();
}

// A client sending in a loop while the port moves five times: on a failure it
// looks up the recorded address again and resends (up to 20 times, 50 ms apart).
// Either on one connection kept (it outlives the move) or on a new connection for
// each request (which meets the move). Nothing is lost; the figures are
// docs/BENCHMARKS.md's.
class PortMoveTest : public DaemonTest, public ::testing::WithParamInterface<bool> {};

TEST_P(PortMoveTest, AClientLoopLosesNothingWhileThePortMoves) {
  const bool connection_per_request = GetParam();
  absl::StatusOr<config::NodeConfig> own = config::LoadNodeConfig(daemon_->root());
  ASSERT_TRUE(own.ok());
  std::atomic<bool> done{false};
  std::atomic<int> sent{0}, lost{0}, resent{0};
  std::thread client([&] {
    std::string target = daemon_->address();
    auto connect = [&](const std::string& address) {
      client::AgentClient::Options options;
      options.target = address;
      if (connection_per_request) {
        grpc::ChannelArguments arguments;
        arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
        options.channel = grpc::CreateCustomChannel(
            address, grpc::InsecureChannelCredentials(), arguments);
      }
      options.envelope = config::EnvelopeOptionsFor(*own);
      options.recipient = "node1";
      options.reply_senders = {"node1"};
      options.timeout = absl::Seconds(5);
      options.initial_reconnect_backoff = absl::Milliseconds(20);
      return *client::AgentClient::Create(std::move(options));
    };
    auto call = [](client::AgentClient& agent) {
      return agent
          .Call<v1::BlacklistStatusReply>("BlacklistStatus", v1::BlacklistStatusRequest())
          .status();
    };
    std::unique_ptr<client::AgentClient> agent = connect(target);
    while (!done.load()) {
      ++sent;
      if (connection_per_request) agent = connect(target);
      absl::Status status = call(*agent);
      for (int attempt = 0; !status.ok() && attempt < 20; ++attempt) {
        ++resent;
        absl::SleepFor(absl::Milliseconds(50));
        const std::string now = RecordedAddress(daemon_->root());
        if (!now.empty()) target = now;
        agent = connect(target);
        status = call(*agent);
      }
      if (!status.ok()) ++lost;
    }
  });
  for (int move = 0; move < 5; ++move) {
    absl::SleepFor(absl::Milliseconds(300));
    const int port = FreePort();
    SetConfig(daemon_->root(), "listener", "port", absl::StrCat(port));
    ASSERT_TRUE(Eventually([&] {
      return RecordedAddress(daemon_->root()) == absl::StrCat("127.0.0.1:", port);
    }));
  }
  absl::SleepFor(absl::Milliseconds(300));
  done.store(true);
  client.join();
  std::printf("%s: port moves 5, requests %d, resent after a failure %d, lost %d\n",
              connection_per_request ? "a connection per request" : "one connection",
              sent.load(), resent.load(), lost.load());
  EXPECT_GT(sent.load(), 10);
  EXPECT_EQ(lost.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Connections, PortMoveTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "ConnectionPerRequest" : "OneConnection";
                         });

// Three daemons on 127.0.0.1, .2 and .3, each told where the others listen.
class ThreeNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) {
      addresses_[i] = absl::StrCat("127.0.0.", i + 1);
      absl::StatusOr<int> port = ::omd::testing::FreePort(addresses_[i]);
      ASSERT_TRUE(port.ok()) << port.status();
      ports_[i] = *port;
    }
    for (int i = 0; i < 3; ++i) {
      ASSERT_NO_FATAL_FAILURE(StartNode(i, ""));
    }
  }

  void StartNode(int i, const std::string& root) {
    DaemonProcess::Options options;
    options.root = root;
    options.node.node_name = Name(i);
    options.node.cluster_nodes = {"node1", "node2", "node3"};
    for (const int j : extra_members_) options.node.cluster_nodes.push_back(Name(j));
    options.node.listen_address = addresses_[i];
    options.node.port = ports_[i];
    for (int j = 0; j < 3; ++j) {
      if (j != i)
        options.node.node_addresses[Name(j)] =
            absl::StrCat(addresses_[j], ":", ports_[j]);
    }
    for (const auto& [node, address] : extra_addresses_)
      options.node.node_addresses[node] = address;
    absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    nodes_[i] = *std::move(daemon);
  }

  void TearDown() override {
    for (auto& node : nodes_) {
      if (node != nullptr) {
        EXPECT_TRUE(node->Stop().ok());
      }
    }
  }

  static std::string Name(int i) { return absl::StrCat("node", i + 1); }

  // How node i sees node `name`.
  std::string StateSeenBy(int i, const std::string& name) {
    const google::protobuf::Struct status = StatusData(nodes_[i]->root());
    const auto& nodes = status.fields().at("nodes").struct_value().fields();
    auto it = nodes.find(name);
    if (it == nodes.end()) return "(absent)";
    return it->second.struct_value().fields().at("state").string_value();
  }

  std::string addresses_[3];
  int ports_[3] = {};
  std::vector<int> extra_members_;
  std::map<std::string, std::string> extra_addresses_;
  std::unique_ptr<DaemonProcess> nodes_[3];
};

// Heartbeats make the members up; a stopped daemon is in maintenance on the
// others until it starts again.
TEST_F(ThreeNodeTest, AStoppedNodeIsInMaintenanceUntilItStartsAgain) {
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      if (i == j) continue;
      EXPECT_TRUE(Eventually([&] { return StateSeenBy(i, Name(j)) == "up"; }))
          << Name(i) << " sees " << Name(j) << " " << StateSeenBy(i, Name(j));
    }
  }
  const std::string root3 = nodes_[2]->root();
  OmResult stop = RunOm(root3, {"daemon", "stop"});
  ASSERT_EQ(stop.exit_code, 0) << stop.stderr_text;
  ASSERT_TRUE(
      Eventually([&] { return absl::StrContains(nodes_[2]->Log(), "omd stopped"); }));
  EXPECT_THAT(nodes_[2]->Log(), HasSubstr("maintenance announced to 2 member(s)"));
  EXPECT_TRUE(nodes_[2]->Stop().ok());
  nodes_[2].reset();
  EXPECT_EQ(StateSeenBy(0, "node3"), "maintenance");
  EXPECT_EQ(StateSeenBy(1, "node3"), "maintenance");
  absl::SleepFor(absl::Seconds(8));  // past the time an unheard node would turn unknown
  EXPECT_EQ(StateSeenBy(0, "node3"), "maintenance");
  OmResult text = RunOm(nodes_[0]->root(), {"daemon", "status"});
  EXPECT_THAT(text.stdout_text, HasSubstr("maintenance"));

  ASSERT_NO_FATAL_FAILURE(StartNode(2, root3));
  EXPECT_TRUE(Eventually([&] { return StateSeenBy(0, "node3") == "up"; }));
  EXPECT_TRUE(Eventually([&] { return StateSeenBy(1, "node3") == "up"; }));
}

// SIGTERM is `daemon stop`: the members hear of the maintenance too. A member
// that never answered (its port accepts and stays silent) is not waited for.
TEST_F(ThreeNodeTest, SigtermAnnouncesMaintenanceAndASilentMemberDelaysNothing) {
  absl::StatusOr<net::ListenSocket> silent = net::Listen("127.0.0.4", 0);
  ASSERT_TRUE(silent.ok());
  for (auto& node : nodes_) EXPECT_TRUE(node->Stop().ok());
  extra_members_ = {3};
  extra_addresses_ = {{"node4", absl::StrCat("127.0.0.4:", silent->port)}};
  for (int i = 0; i < 3; ++i) ASSERT_NO_FATAL_FAILURE(StartNode(i, nodes_[i]->root()));
  ASSERT_TRUE(Eventually([&] { return StateSeenBy(0, "node2") == "up"; }));
  ASSERT_TRUE(Eventually([&] { return StateSeenBy(1, "node1") == "up"; }));
  ASSERT_TRUE(Eventually([&] { return StateSeenBy(1, "node3") == "up"; }));
  const absl::Time start = absl::Now();
  EXPECT_TRUE(nodes_[1]->Stop().ok());  // SIGTERM
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_THAT(nodes_[1]->Log(), HasSubstr("maintenance announced to 2 member(s)"));
  nodes_[1].reset();
  EXPECT_EQ(StateSeenBy(0, "node2"), "maintenance");
  EXPECT_EQ(StateSeenBy(0, "node4"), "unknown");
  close(silent->fd);
}

TEST(NoDaemonTest, OmSaysWhenNoDaemonRunsOnItsRoot) {
  const std::string root = testing::NewTempDir("nodaemon");
  testing::NodeConfSpec spec;
  ASSERT_TRUE(testing::WriteNodeConf(root, spec).ok());
  OmResult result = RunOm(root, {"daemon", "status"});
  EXPECT_EQ(result.exit_code, 14) << "UNAVAILABLE";
  EXPECT_THAT(result.stderr_text, HasSubstr(absl::StrCat("is omd running on ", root, "?")));
}

TEST(DaemonRecoveryTest, ActionsLeftRunningByADeadDequeuerAreFailedWithANote) {
  const std::string root = testing::NewTempDir("recovery");
  ASSERT_TRUE(config::MakeDirectories(root + "/var/actions/running", 0750).ok());
  ASSERT_TRUE(config::WriteFileAtomically(root + "/var/actions/running/0001-interrupted",
                                          "[\"daemon\", \"blacklist\", \"clear\"]", 0600)
                  .ok());
  DaemonProcess::Options options;
  options.root = root;
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  struct stat info {};
  EXPECT_NE(stat((root + "/var/actions/running/0001-interrupted").c_str(), &info), 0);
  EXPECT_EQ(stat((root + "/var/actions/failed/0001-interrupted").c_str(), &info), 0);
  absl::StatusOr<std::string> note =
      config::ReadFileToString(root + "/var/actions/failed/0001-interrupted.out", 4096);
  ASSERT_TRUE(note.ok());
  EXPECT_THAT(*note, HasSubstr("interrupted"));
  EXPECT_THAT((*daemon)->Log(), HasSubstr("moved to failed/"));
  EXPECT_TRUE((*daemon)->Stop().ok());
}

}  // namespace
}  // namespace omd::daemon

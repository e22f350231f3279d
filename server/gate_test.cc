// The gate, proven through a real gRPC server on port 0: every method of the
// service descriptor is fronted by it, the blacklist boundary is exact, dropped
// messages are never decrypted, and a forger cannot get a real node blacklisted.
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/sync_stream.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/agent_client.h"
#include "crypto/envelope.h"
#include "gtest/gtest.h"
#include "proto/omd.pb.h"
#include "server/daemon.h"
#include "rpc/agent_methods.h"
#include "testing/daemon_harness.h"

namespace omd::server {
namespace {

using ::omd::testing::ChannelFromSource;
using ::omd::testing::kTestSecret;

constexpr char kCluster[] = "test";

crypto::EnvelopeOptions Identity(const std::string& nodename,
                                 const std::string& secret = kTestSecret) {
  crypto::EnvelopeOptions options;
  options.cluster = kCluster;
  options.nodename = nodename;
  options.secrets = {{1, secret}};
  return options;
}

// One call of any Agent method with a ready-made envelope, unary or streaming.
grpc::Status CallWithEnvelope(grpc::Channel* channel,
                              const google::protobuf::MethodDescriptor& method,
                              const v1::Envelope& envelope) {
  const std::string path = rpc::MethodPath(method);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (method.server_streaming()) {
    std::unique_ptr<grpc::ClientReader<v1::Envelope>> reader(
        grpc::internal::ClientReaderFactory<v1::Envelope>::Create(
            channel,
            grpc::internal::RpcMethod(path.c_str(),
                                      grpc::internal::RpcMethod::SERVER_STREAMING),
            &context, envelope));
    v1::Envelope reply;
    while (reader->Read(&reply)) {
    }
    return reader->Finish();
  }
  v1::Envelope reply;
  return grpc::internal::BlockingUnaryCall<v1::Envelope, v1::Envelope>(
      channel, grpc::internal::RpcMethod(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC),
      &context, envelope, &reply);
}

class GateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = omd::testing::NewTempDir("gate");
    omd::testing::NodeConfSpec spec;
    spec.node_name = "node1";
    spec.cluster_nodes = {"node1", "node2"};
    // Dual stack: IPv4 peers on every 127.0.0.x arrive as ::ffff:127.0.0.x, and
    // must still be told apart by address.
    spec.listen_address = "::";
    ASSERT_TRUE(omd::testing::WriteNodeConf(root_, spec).ok());
    Daemon::Options options;
    options.root = root_;
    options.dequeue_command = {"/bin/true"};
    absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    port_ = daemon_->address().substr(daemon_->address().rfind(':') + 1);
  }

  std::string Target(const std::string& ip) const { return absl::StrCat(ip, ":", port_); }

  std::shared_ptr<grpc::Channel> ChannelFrom(const std::string& source_ip) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        ChannelFromSource(source_ip, Target("127.0.0.1"));
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.value_or(nullptr);
  }

  std::unique_ptr<client::AgentClient> Client(std::shared_ptr<grpc::Channel> channel,
                                              const std::string& nodename,
                                              const std::string& secret = kTestSecret) {
    client::AgentClient::Options options;
    options.channel = std::move(channel);
    options.envelope = Identity(nodename, secret);
    options.recipient = "node1";
    options.reply_senders = {"node1"};
    return client::AgentClient::Create(std::move(options)).value();
  }

  static absl::Status BlacklistStatus(client::AgentClient& client) {
    return client
        .Call<v1::BlacklistStatusReply>("BlacklistStatus", v1::BlacklistStatusRequest())
        .status();
  }

  std::string root_;
  std::unique_ptr<Daemon> daemon_;
  std::string port_;
};

// Every method of the descriptor, with three kinds of bad envelope; none reaches a
// handler (not even the UNIMPLEMENTED fallback), then a good envelope passes.
TEST_F(GateTest, EveryMethodIsGated) {
  const google::protobuf::ServiceDescriptor& service = rpc::AgentService();
  ASSERT_GE(service.method_count(), 15);
  crypto::EnvelopeCodec member(Identity("node2"));
  crypto::EnvelopeCodec outsider(Identity("stranger"));
  crypto::EnvelopeCodec forger(Identity("node2", "not-the-cluster-secret"));
  const std::string salt = crypto::EnvelopeCodec::NewSalt();
  // Each method from its own address, so no sender reaches the blacklist threshold.
  for (int i = 0; i < service.method_count(); ++i) {
    const google::protobuf::MethodDescriptor& method = *service.method(i);
    SCOPED_TRACE(method.full_name());
    auto channel = ChannelFrom(absl::StrCat("127.0.1.", i + 1));
    const std::string path = rpc::MethodPath(method);
    const bool is_join = method.name() == "Join";

    if (!is_join) {  // Join is open to non-members
      grpc::Status status = CallWithEnvelope(
          channel.get(), method,
          outsider.Seal(crypto::Direction::kRequest, path, "node1", salt, "").value());
      EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
          << status.error_message();
    }

    grpc::Status status = CallWithEnvelope(channel.get(), method,
                              forger.Seal(crypto::Direction::kRequest, path, "node1", salt, "").value());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

    const std::string other_method = rpc::MethodPath(*service.method((i + 1) % service.method_count()));
    status = CallWithEnvelope(
        channel.get(), method,
        member.Seal(crypto::Direction::kRequest, other_method, "node1", salt, "").value());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

    EXPECT_EQ(CallWithEnvelope(channel.get(), method, v1::Envelope()).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(daemon_->agent_service().dispatched_calls(), 0);
  }

  // A good envelope reaches every method: a handler, or UNIMPLEMENTED after the gate.
  auto good_channel = ChannelFrom("127.0.2.2");
  for (int i = 0; i < service.method_count(); ++i) {
    const google::protobuf::MethodDescriptor& method = *service.method(i);
    grpc::Status status = CallWithEnvelope(
        good_channel.get(), method,
        member.Seal(crypto::Direction::kRequest, rpc::MethodPath(method), "node1", salt, "").value());
    EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::UNIMPLEMENTED)
        << method.full_name() << ": " << status.error_message();
    EXPECT_EQ(daemon_->agent_service().dispatched_calls(), i + 1) << method.full_name();
  }
}

TEST_F(GateTest, FiveInvalidMessagesBlacklistAndTheSixthIsNotDecrypted) {
  auto impostor = Client(ChannelFrom("127.0.0.5"), "node2", "wrong-secret-wrong-secret");
  const int64_t opens_before = daemon_->gate().open_attempts();
  for (int i = 1; i <= 5; ++i) {
    absl::Status status = BlacklistStatus(*impostor);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << i << ": " << status;
  }
  EXPECT_EQ(daemon_->gate().open_attempts(), opens_before + 5);
  absl::Status sixth = BlacklistStatus(*impostor);
  EXPECT_EQ(sixth.code(), absl::StatusCode::kPermissionDenied) << sixth;
  EXPECT_NE(sixth.message().find("blacklisted"), absl::string_view::npos);
  EXPECT_EQ(daemon_->gate().open_attempts(), opens_before + 5);  // dropped before opening

  // Once blacklisted, even the right key from that sender is dropped, until cleared.
  auto same_sender = Client(ChannelFrom("127.0.0.5"), "node2");
  EXPECT_EQ(BlacklistStatus(*same_sender).code(), absl::StatusCode::kPermissionDenied);
  auto admin = Client(ChannelFrom("127.0.0.1"), "node1");
  absl::StatusOr<v1::BlacklistStatusReply> entries =
      admin->Call<v1::BlacklistStatusReply>("BlacklistStatus", v1::BlacklistStatusRequest());
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->entries_size(), 1);
  EXPECT_EQ(entries->entries(0).nodename(), "node2");
  EXPECT_EQ(entries->entries(0).address(), "127.0.0.5");
  EXPECT_EQ(entries->entries(0).invalid_messages(), 5u);
  EXPECT_TRUE(entries->entries(0).blocked());
  absl::StatusOr<v1::BlacklistClearReply> cleared =
      admin->Call<v1::BlacklistClearReply>("BlacklistClear", v1::BlacklistClearRequest());
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_EQ(cleared->cleared(), 1u);
  EXPECT_TRUE(BlacklistStatus(*same_sender).ok());
}

// Over IPv6, the sender's address must not include the connection's port, or
// each new connection would start a fresh count.
TEST_F(GateTest, Ipv6SendersAreBlacklistedAcrossConnections) {
  for (int i = 1; i <= 5; ++i) {
    auto impostor = Client(grpc::CreateChannel(Target("[::1]"), grpc::InsecureChannelCredentials()),
                           "node2", "wrong-secret-wrong-secret");
    EXPECT_EQ(BlacklistStatus(*impostor).code(), absl::StatusCode::kUnauthenticated) << i;
  }
  auto sixth = Client(grpc::CreateChannel(Target("[::1]"), grpc::InsecureChannelCredentials()),
                      "node2", "wrong-secret-wrong-secret");
  EXPECT_EQ(BlacklistStatus(*sixth).code(), absl::StatusCode::kPermissionDenied);
  auto admin = Client(ChannelFrom("127.0.0.1"), "node1");
  v1::BlacklistStatusReply entries =
      admin->Call<v1::BlacklistStatusReply>("BlacklistStatus", v1::BlacklistStatusRequest())
          .value();
  ASSERT_EQ(entries.entries_size(), 1);
  EXPECT_EQ(entries.entries(0).address(), "::1");
}

TEST_F(GateTest, NonMembersCountAsInvalidToo) {
  auto stranger = Client(ChannelFrom("127.0.0.6"), "stranger");
  const int64_t opens_before = daemon_->gate().open_attempts();
  for (int i = 1; i <= 5; ++i) {
    EXPECT_EQ(BlacklistStatus(*stranger).code(), absl::StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(daemon_->gate().open_attempts(), opens_before);  // never decrypted
  absl::Status sixth = BlacklistStatus(*stranger);
  EXPECT_NE(sixth.message().find("blacklisted"), absl::string_view::npos) << sixth;
}

TEST_F(GateTest, AValidMessageResetsTheCount) {
  auto impostor = Client(ChannelFrom("127.0.0.7"), "node2", "wrong-secret-wrong-secret");
  auto real = Client(ChannelFrom("127.0.0.7"), "node2");
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(BlacklistStatus(*impostor).code(), absl::StatusCode::kUnauthenticated);
    }
    EXPECT_TRUE(BlacklistStatus(*real).ok()) << "round " << round;
  }
}

// Someone at 127.0.0.3 forging node2's name gets itself blacklisted; node2 at
// 127.0.0.2 is served throughout.
TEST_F(GateTest, AForgerCannotBlacklistTheRealNode) {
  auto forger = Client(ChannelFrom("127.0.0.3"), "node2", "wrong-secret-wrong-secret");
  auto node2 = Client(ChannelFrom("127.0.0.2"), "node2");
  for (int i = 0; i < 10; ++i) BlacklistStatus(*forger).IgnoreError();
  EXPECT_EQ(BlacklistStatus(*forger).code(), absl::StatusCode::kPermissionDenied);
  absl::StatusOr<v1::BlacklistStatusReply> entries =
      node2->Call<v1::BlacklistStatusReply>("BlacklistStatus", v1::BlacklistStatusRequest());
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->entries_size(), 1);
  EXPECT_EQ(entries->entries(0).address(), "127.0.0.3");
  EXPECT_TRUE(entries->entries(0).blocked());
}

TEST_F(GateTest, AReplayedRequestIsRefused) {
  crypto::EnvelopeCodec node2(Identity("node2"));
  const google::protobuf::MethodDescriptor& method =
      *rpc::AgentService().FindMethodByName("BlacklistStatus");
  v1::Envelope request = node2.Seal(crypto::Direction::kRequest, rpc::MethodPath(method), "node1",
                                    crypto::EnvelopeCodec::NewSalt(), "")
                             .value();
  auto channel = ChannelFrom("127.0.0.8");
  EXPECT_TRUE(CallWithEnvelope(channel.get(), method, request).ok());
  grpc::Status replay = CallWithEnvelope(channel.get(), method, request);
  EXPECT_EQ(replay.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(replay.error_message(), "replayed request");
  // Replays are authentic envelopes: whoever replays one first must not be able to
  // get the genuine sender blacklisted with them.
  for (int i = 0; i < 10; ++i) CallWithEnvelope(channel.get(), method, request);
  EXPECT_TRUE(daemon_->gate().blacklist().Entries().empty());
}

// A request for another node (captured on its way there) is refused; one for any
// node is served.
TEST_F(GateTest, RequestsForAnotherNodeAreRefused) {
  crypto::EnvelopeCodec node2(Identity("node2"));
  const google::protobuf::MethodDescriptor& method =
      *rpc::AgentService().FindMethodByName("BlacklistStatus");
  auto channel = ChannelFrom("127.0.0.13");
  grpc::Status status = CallWithEnvelope(
      channel.get(), method,
      node2.Seal(crypto::Direction::kRequest, rpc::MethodPath(method), "node3",
                 crypto::EnvelopeCodec::NewSalt(), "")
          .value());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message(), "envelope for another node");
  EXPECT_TRUE(CallWithEnvelope(channel.get(), method,
                               node2.Seal(crypto::Direction::kRequest, rpc::MethodPath(method), "",
                                          crypto::EnvelopeCodec::NewSalt(), "")
                                   .value())
                  .ok());
}

TEST_F(GateTest, InvalidNamesShareOneSenderPerAddress) {
  auto channel = ChannelFrom("127.0.0.12");
  crypto::EnvelopeCodec forger(Identity("node2", "not-the-cluster-secret"));
  const google::protobuf::MethodDescriptor& method =
      *rpc::AgentService().FindMethodByName("BlacklistStatus");
  for (const std::string name : {"bad/name", "-dash", "a\nforged log line", ""}) {
    v1::Envelope envelope = forger.Seal(crypto::Direction::kRequest, rpc::MethodPath(method), "node1",
                                        crypto::EnvelopeCodec::NewSalt(), "")
                                .value();
    envelope.set_nodename(name);
    EXPECT_EQ(CallWithEnvelope(channel.get(), method, envelope).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  std::vector<BlacklistEntry> entries = daemon_->gate().blacklist().Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].sender.nodename, "<invalid>");
  EXPECT_EQ(entries[0].invalid_messages, 4u);
}

TEST_F(GateTest, RepliesAreSealedByTheDaemon) {
  auto node2 = Client(ChannelFrom("127.0.0.9"), "node2");
  EXPECT_TRUE(BlacklistStatus(*node2).ok());
  // A client that expects another server refuses node1's authentic reply.
  client::AgentClient::Options options;
  options.channel = ChannelFrom("127.0.0.9");
  options.envelope = Identity("node2");
  options.reply_senders = {"node3"};
  auto picky = client::AgentClient::Create(std::move(options)).value();
  absl::Status status = BlacklistStatus(*picky);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(status.message().find("sealed by node1"), absl::string_view::npos) << status;
}

TEST_F(GateTest, OversizedRequestsAreRefused) {
  crypto::EnvelopeCodec node2(Identity("node2"));
  const google::protobuf::MethodDescriptor& method =
      *rpc::AgentService().FindMethodByName("BlacklistStatus");
  v1::Envelope request = node2.Seal(crypto::Direction::kRequest, rpc::MethodPath(method), "node1",
                                    crypto::EnvelopeCodec::NewSalt(),
                                    std::string(2 << 20, 'x'))
                             .value();
  auto channel = ChannelFrom("127.0.0.10");
  EXPECT_EQ(CallWithEnvelope(channel.get(), method, request).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(daemon_->agent_service().dispatched_calls(), 0);
}

TEST_F(GateTest, AGarbledPayloadIsInvalidArgumentAfterTheGate) {
  crypto::EnvelopeCodec node2(Identity("node2"));
  const google::protobuf::MethodDescriptor& method =
      *rpc::AgentService().FindMethodByName("BlacklistStatus");
  v1::Envelope request = node2.Seal(crypto::Direction::kRequest, rpc::MethodPath(method), "node1",
                                    crypto::EnvelopeCodec::NewSalt(), "\xff\xff\xff")
                             .value();
  auto channel = ChannelFrom("127.0.0.11");
  grpc::Status status = CallWithEnvelope(channel.get(), method, request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "request payload is not a valid omd.v1.BlacklistStatusRequest");
}

TEST_F(GateTest, HealthIsServedInClearAndGoesDownAtShutdown) {
  absl::StatusOr<bool> serving = omd::testing::IsServing(daemon_->address(), "omd.v1.Agent");
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(*serving);
  daemon_->Shutdown();
  EXPECT_FALSE(omd::testing::IsServing(daemon_->address()).value_or(false));
}

}  // namespace
}  // namespace omd::server

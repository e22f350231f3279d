// The gate, proven through the daemon's real listener on port 0: every method of
// the service descriptor is fronted by it, the blacklist boundary is exact,
// dropped messages are never decrypted, senders are counted by source, and
// neither a forger nor a replayer can get a real node blacklisted.

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/agent_client.h"
#include "crypto/envelope.h"
#include "gtest/gtest.h"
#include "proto/omd.pb.h"
#include "rpc/agent_methods.h"
#include "daemon/daemon.h"
#include "testing/daemon_harness.h"
#include "testing/http2_attack.h"

namespace omd::server {
using daemon::Daemon;
namespace {

using ::omd::testing::ChannelFromSource;
using ::omd::testing::kTestSecret;

constexpr char kCluster[] = "test";
// Sources: node2's is known to node1 (addr@node2); the others are outsiders.
constexpr char kNode2Source[] = "127.0.0.2";

crypto::EnvelopeOptions Identity(const std::string& nodename,
                                 const std::string& secret = kTestSecret) {
  crypto::EnvelopeOptions options;
  options.cluster = kCluster;
  options.nodename = nodename;
  options.secrets = {{1, secret}};
  return options;
}

std::string MethodPathOf(absl::string_view name) {
  return rpc::MethodPath(*rpc::AgentService().FindMethodByName(std::string(name)));
}

grpc::Status CallWithBytes(grpc::Channel* channel,
                           const google::protobuf::MethodDescriptor& method,
                           const std::string& bytes) {
  return omd::testing::CallAgentMethod(channel, method.name(), bytes);
}

grpc::Status CallWithEnvelope(grpc::Channel* channel,
                              const google::protobuf::MethodDescriptor& method,
                              const v1::Envelope& envelope) {
  return CallWithBytes(channel, method, envelope.SerializeAsString());
}

const google::protobuf::MethodDescriptor& Method(absl::string_view name) {
  return *rpc::AgentService().FindMethodByName(std::string(name));
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
    spec.node_addresses = {{"node2", kNode2Source}};
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

  std::vector<BlacklistEntry> Entries() { return daemon_->gate().blacklist().Entries(); }

  std::string root_;
  std::unique_ptr<Daemon> daemon_;
  std::string port_;
};

// Every method of the descriptor, with kinds of bad envelope; none reaches a
// handler (not even the UNIMPLEMENTED fallback), then a good envelope passes.
TEST_F(GateTest, EveryMethodIsGated) {
  const google::protobuf::ServiceDescriptor& service = rpc::AgentService();
  ASSERT_GE(service.method_count(), 16);
  crypto::EnvelopeCodec member(Identity("node2"));
  crypto::EnvelopeCodec outsider(Identity("stranger"));
  crypto::EnvelopeCodec forger(Identity("node2", "not-the-cluster-secret"));
  const std::string salt = crypto::EnvelopeCodec::NewSalt();
  // Each method from its own source, so that no sender reaches the threshold.
  for (int i = 0; i < service.method_count(); ++i) {
    const google::protobuf::MethodDescriptor& method = *service.method(i);
    SCOPED_TRACE(method.full_name());
    auto channel = ChannelFrom(absl::StrCat("127.0.1.", i + 1));
    const std::string path = rpc::MethodPath(method);
    const bool open_to_non_members = method.options().GetExtension(v1::access).non_members();

    if (!open_to_non_members) {
      grpc::Status status = CallWithEnvelope(
          channel.get(), method,
          outsider.Seal(crypto::Direction::kRequest, path, "node1", salt, "").value());
      EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
          << status.error_message();
    }
    grpc::Status status = CallWithEnvelope(
        channel.get(), method,
        forger.Seal(crypto::Direction::kRequest, path, "node1", salt, "").value());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

    const std::string other_method =
        rpc::MethodPath(*service.method((i + 1) % service.method_count()));
    status = CallWithEnvelope(
        channel.get(), method,
        member.Seal(crypto::Direction::kRequest, other_method, "node1", salt, "").value());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);

    status = CallWithBytes(channel.get(), method, "\xff\xff not an envelope");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(daemon_->dispatched_calls(), 0);
  }

  // A good envelope reaches every method: a handler, or UNIMPLEMENTED after the gate.
  // (DaemonStop and DaemonShutdown only record their request here: nothing runs
  // omd's main loop in this process.)
  auto good_channel = ChannelFrom(kNode2Source);
  // Leave last: it takes node2 out of the cluster (cluster/membership.h).
  std::vector<const google::protobuf::MethodDescriptor*> methods;
  for (int i = 0; i < service.method_count(); ++i) {
    if (service.method(i)->name() != "Leave") methods.push_back(service.method(i));
  }
  methods.push_back(service.FindMethodByName("Leave"));
  for (int i = 0; i < service.method_count(); ++i) {
    const google::protobuf::MethodDescriptor& method = *methods[i];
    grpc::Status status = CallWithEnvelope(
        good_channel.get(), method,
        member.Seal(crypto::Direction::kRequest, rpc::MethodPath(method), "node1", salt, "")
            .value());
    // An empty payload may be refused by the handler itself (e.g. DaemonStart with
    // no thread): the count below is what proves it got past the gate.
    EXPECT_NE(status.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << method.full_name() << ": " << status.error_message();
    EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << method.full_name() << ": " << status.error_message();
    EXPECT_EQ(daemon_->dispatched_calls(), i + 1) << method.full_name();
  }
}

// From a member's own source, a forger gets exactly five decryptions, then its
// messages are dropped, each at the cost of a lookup.
TEST_F(GateTest, FiveInvalidMessagesBlacklistAndTheSixthIsNotDecrypted) {
  auto impostor = Client(ChannelFrom(kNode2Source), "node2", "wrong-secret-wrong-secret");
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
  auto same_sender = Client(ChannelFrom(kNode2Source), "node2");
  EXPECT_EQ(BlacklistStatus(*same_sender).code(), absl::StatusCode::kPermissionDenied);
  auto admin = Client(ChannelFrom("127.0.0.1"), "node1");
  absl::StatusOr<v1::BlacklistStatusReply> entries =
      admin->Call<v1::BlacklistStatusReply>("BlacklistStatus", v1::BlacklistStatusRequest());
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->entries_size(), 1);
  EXPECT_EQ(entries->entries(0).nodename(), "node2");
  EXPECT_EQ(entries->entries(0).address(), kNode2Source);
  EXPECT_EQ(entries->entries(0).invalid_messages(), 5u);
  EXPECT_TRUE(entries->entries(0).blocked());
  absl::StatusOr<v1::BlacklistClearReply> cleared =
      admin->Call<v1::BlacklistClearReply>("BlacklistClear", v1::BlacklistClearRequest());
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  EXPECT_EQ(cleared->cleared(), 1u);
  EXPECT_TRUE(BlacklistStatus(*same_sender).ok());
}

// On a member's source, which is never refused at the connection (the real member
// sends from it), a blacklisted sender's connection is held back after each
// refusal, longer each time: its next messages wait unread, at no cost to omd.
// Other connections are not held.
TEST_F(GateTest, ABlacklistedSendersConnectionIsHeldBackAfterEachRefusal) {
  auto impostor = Client(ChannelFrom(kNode2Source), "node2", "wrong-secret-wrong-secret");
  for (int i = 0; i < 5; ++i) BlacklistStatus(*impostor).IgnoreError();
  const uint64_t held_before = daemon_->listener().connection_stats().held_back;
  EXPECT_EQ(BlacklistStatus(*impostor).code(), absl::StatusCode::kPermissionDenied);
  // Held 250 ms, then 500 ms (to the guard's sweep of 250 ms).
  for (const absl::Duration hold : {absl::Milliseconds(250), absl::Milliseconds(500)}) {
    const absl::Time start = absl::Now();
    EXPECT_EQ(BlacklistStatus(*impostor).code(), absl::StatusCode::kPermissionDenied);
    EXPECT_GE(absl::Now() - start, hold - absl::Milliseconds(50)) << hold;
  }
  EXPECT_EQ(daemon_->listener().connection_stats().held_back, held_before + 3);
  EXPECT_EQ(daemon_->Status().listener().held_back(), held_before + 3);
  // Other senders are served. A clear releases the held connection at once: the
  // impostor's next message is read without waiting out its 1 s hold (and is
  // refused for its secret, no longer as blacklisted); node2 gets in again.
  auto admin = Client(ChannelFrom("127.0.0.1"), "node1");
  EXPECT_TRUE(BlacklistStatus(*admin).ok());
  absl::StatusOr<v1::BlacklistClearReply> cleared =
      admin->Call<v1::BlacklistClearReply>("BlacklistClear", v1::BlacklistClearRequest());
  ASSERT_TRUE(cleared.ok()) << cleared.status();
  absl::SleepFor(absl::Milliseconds(50));  // the release reaches the guard's thread
  const absl::Time start = absl::Now();
  EXPECT_EQ(BlacklistStatus(*impostor).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_TRUE(BlacklistStatus(*Client(ChannelFrom(kNode2Source), "node2")).ok());
}

// From an outsider's source, the blocked sender's connections are closed and its
// new ones refused at accept, before gRPC sees a byte.
TEST_F(GateTest, ABlockedOutsiderIsRefusedAtTheConnection) {
  auto impostor = Client(ChannelFrom("127.0.0.5"), "node2", "wrong-secret-wrong-secret");
  auto second_connection = Client(ChannelFrom("127.0.0.5"), "node2");
  for (int i = 0; i < 5; ++i) BlacklistStatus(*impostor).IgnoreError();
  absl::SleepFor(absl::Milliseconds(600));  // the refusal in flight gets out first
  EXPECT_EQ(BlacklistStatus(*second_connection).code(), absl::StatusCode::kUnavailable);
  const uint64_t refused_before = daemon_->listener().connection_stats().refused_by_policy;
  auto fresh = Client(ChannelFrom("127.0.0.5"), "node2");
  EXPECT_EQ(BlacklistStatus(*fresh).code(), absl::StatusCode::kUnavailable);
  EXPECT_GT(daemon_->listener().connection_stats().refused_by_policy, refused_before);
  // Another source is not affected; a clear lifts the ban.
  EXPECT_TRUE(BlacklistStatus(*Client(ChannelFrom("127.0.0.6"), "node2")).ok());
  daemon_->gate().ClearBlacklist();
  EXPECT_TRUE(BlacklistStatus(*Client(ChannelFrom("127.0.0.5"), "node2")).ok());
}

// Over IPv6, a source is a /64 without the connection's port: reconnecting does
// not start a fresh count.
TEST_F(GateTest, Ipv6SendersAreCountedAcrossConnections) {
  for (int i = 1; i <= 5; ++i) {
    auto impostor = Client(grpc::CreateChannel(Target("[::1]"), grpc::InsecureChannelCredentials()),
                           "node2", "wrong-secret-wrong-secret");
    EXPECT_EQ(BlacklistStatus(*impostor).code(), absl::StatusCode::kUnauthenticated) << i;
  }
  auto sixth = Client(grpc::CreateChannel(Target("[::1]"), grpc::InsecureChannelCredentials()),
                      "node2", "wrong-secret-wrong-secret");
  EXPECT_EQ(BlacklistStatus(*sixth).code(), absl::StatusCode::kPermissionDenied);
  ASSERT_EQ(Entries().size(), 1u);
  EXPECT_EQ(Entries()[0].sender.source.ToString(), "::/64");
}

// Non-member names count per source, whatever the name: inventing names (or
// Join requests with a fresh name each) buys no extra decryption.
TEST_F(GateTest, NonMemberNamesCountPerSource) {
  const int64_t opens_before = daemon_->gate().open_attempts();
  auto channel = ChannelFrom("127.0.0.6");
  for (int i = 1; i <= 5; ++i) {
    EXPECT_EQ(BlacklistStatus(*Client(channel, absl::StrCat("stranger", i))).code(),
              absl::StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(daemon_->gate().open_attempts(), opens_before);  // never decrypted
  ASSERT_EQ(Entries().size(), 1u);
  EXPECT_EQ(Entries()[0].sender.ToString(), "(non-member)@127.0.0.6");
  EXPECT_TRUE(Entries()[0].blocked);

  crypto::EnvelopeCodec joiner(Identity("joiner0", "not-the-cluster-secret"));
  auto join_channel = ChannelFrom("127.0.0.7");
  for (int i = 1; i <= 5; ++i) {
    crypto::EnvelopeOptions identity = Identity(absl::StrCat("joiner", i), "not-the-cluster-secret");
    crypto::EnvelopeCodec codec(identity);
    grpc::Status status = CallWithEnvelope(
        join_channel.get(), Method("Join"),
        codec.Seal(crypto::Direction::kRequest, MethodPathOf("Join"), "node1",
                   crypto::EnvelopeCodec::NewSalt(), "")
            .value());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << i;
  }
  EXPECT_EQ(daemon_->gate().open_attempts(), opens_before + 5);
  grpc::Status sixth = CallWithEnvelope(
      join_channel.get(), Method("Join"),
      joiner.Seal(crypto::Direction::kRequest, MethodPathOf("Join"), "node1",
                  crypto::EnvelopeCodec::NewSalt(), "")
          .value());
  EXPECT_NE(sixth.error_code(), grpc::StatusCode::UNAUTHENTICATED);  // closed, not opened
  EXPECT_EQ(daemon_->gate().open_attempts(), opens_before + 5);
}

// Bytes that are no Envelope (invalid UTF-8 in a name, or garbage) are counted
// against their source, and logged as a summary, not a protobuf error each.
TEST_F(GateTest, UnparseableRequestsAreCountedWithoutALogLinePerMessage) {
  v1::Envelope envelope;
  envelope.set_cluster(kCluster);
  envelope.set_nodename("node2");
  std::string bytes = envelope.SerializeAsString();
  const size_t name = bytes.find("node2");
  bytes[name] = '\xff';  // node2 -> \xffode2: not UTF-8, so not a proto3 string
  auto channel = ChannelFrom("127.0.0.8");
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(CallWithBytes(channel.get(), Method("BlacklistStatus"), bytes).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(CallWithBytes(channel.get(), Method("BlacklistStatus"), "\x0a\xff").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log.find("UTF-8"), std::string::npos) << log;
  EXPECT_LE(std::count(log.begin(), log.end(), '\n'), 1) << log;
  ASSERT_EQ(Entries().size(), 1u);
  EXPECT_EQ(Entries()[0].sender.ToString(), "(non-member)@127.0.0.8");
  EXPECT_EQ(Entries()[0].invalid_messages, 5u);
}

// Methods open to non-members still want a valid name: it may become a reply's
// recipient, a log line, a path.
TEST_F(GateTest, AnInvalidNameIsRefusedEvenWhereNonMembersMayCall) {
  for (const char* name : {"..x", "-x", "a b", ""}) {
    SCOPED_TRACE(name);
    crypto::EnvelopeCodec codec(Identity("stranger"));
    v1::Envelope envelope =
        codec.Seal(crypto::Direction::kRequest, MethodPathOf("Identify"), "",
                   crypto::EnvelopeCodec::NewSalt(), "")
            .value();
    envelope.set_nodename(name);
    grpc::Status status =
        CallWithEnvelope(ChannelFrom("127.0.0.14").get(), Method("Identify"), envelope);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(status.error_message(), "invalid sender node name");
  }
  EXPECT_EQ(daemon_->dispatched_calls(), 0);
}

// Calls whose stream ends before its message (reset at once, cut off with the
// connection) carry nothing to judge: they must not count against anyone, or a
// member whose calls time out would be blacklisted.
TEST_F(GateTest, CallsWithoutAMessageAreNotCounted) {
  omd::testing::RapidResetOptions resets;
  resets.connect.target = Target("127.0.0.1");
  resets.connect.source_addresses = {kNode2Source};
  resets.duration = absl::Milliseconds(500);
  ASSERT_TRUE(omd::testing::RapidReset(resets).ok());
  omd::testing::ContinuationFloodOptions cut_off;
  cut_off.connect = resets.connect;
  cut_off.duration = absl::Milliseconds(500);
  ASSERT_TRUE(omd::testing::ContinuationFlood(cut_off).ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(Entries().empty()) << Entries()[0].sender.ToString() << " counted "
                                 << Entries()[0].invalid_messages;
  EXPECT_EQ(daemon_->dispatched_calls(), 0);
}

TEST_F(GateTest, AValidMessageResetsTheCount) {
  auto impostor = Client(ChannelFrom(kNode2Source), "node2", "wrong-secret-wrong-secret");
  auto real = Client(ChannelFrom(kNode2Source), "node2");
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(BlacklistStatus(*impostor).code(), absl::StatusCode::kUnauthenticated);
    }
    EXPECT_TRUE(BlacklistStatus(*real).ok()) << "round " << round;
  }
}

// Someone at 127.0.0.3 forging node2's name gets itself blacklisted; node2 at
// its own source is served throughout.
TEST_F(GateTest, AForgerCannotBlacklistTheRealNode) {
  auto forger = Client(ChannelFrom("127.0.0.3"), "node2", "wrong-secret-wrong-secret");
  auto node2 = Client(ChannelFrom(kNode2Source), "node2");
  for (int i = 0; i < 10; ++i) BlacklistStatus(*forger).IgnoreError();
  EXPECT_NE(BlacklistStatus(*forger).code(), absl::StatusCode::kOk);
  absl::StatusOr<v1::BlacklistStatusReply> entries =
      node2->Call<v1::BlacklistStatusReply>("BlacklistStatus", v1::BlacklistStatusRequest());
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->entries_size(), 1);
  EXPECT_EQ(entries->entries(0).address(), "127.0.0.3");
  EXPECT_TRUE(entries->entries(0).blocked());
}

// Replays are authentic envelopes: refused, never counted, so whoever replays one
// first cannot get its genuine sender blacklisted.
TEST_F(GateTest, AReplayedRequestIsRefusedAndNotCounted) {
  crypto::EnvelopeCodec node2(Identity("node2"));
  v1::Envelope request = node2.Seal(crypto::Direction::kRequest, MethodPathOf("BlacklistStatus"),
                                    "node1", crypto::EnvelopeCodec::NewSalt(), "")
                             .value();
  auto channel = ChannelFrom(kNode2Source);
  EXPECT_TRUE(CallWithEnvelope(channel.get(), Method("BlacklistStatus"), request).ok());
  grpc::Status replay = CallWithEnvelope(channel.get(), Method("BlacklistStatus"), request);
  EXPECT_EQ(replay.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(replay.error_message(), "replayed request");
  for (int i = 0; i < 10; ++i) {
    CallWithEnvelope(channel.get(), Method("BlacklistStatus"), request).error_code();
  }
  EXPECT_TRUE(Entries().empty());
}

// "A request id is accepted once", even in a new envelope with another send time.
TEST_F(GateTest, ARequestIdIsAcceptedOnceWhateverItsSendTime) {
  crypto::EnvelopeCodec node2(Identity("node2"));
  crypto::SealInputs inputs;
  inputs.method = MethodPathOf("BlacklistStatus");
  inputs.recipient = "node1";
  inputs.salt = crypto::EnvelopeCodec::NewSalt();
  inputs.key_generation = 1;
  inputs.nonce = std::string(12, '\1');
  inputs.request_id = std::string(16, '\7');
  inputs.sent_at_unix_ms = absl::ToUnixMillis(absl::Now());
  auto channel = ChannelFrom(kNode2Source);
  EXPECT_TRUE(CallWithEnvelope(channel.get(), Method("BlacklistStatus"),
                               node2.SealWith(inputs).value())
                  .ok());
  inputs.sent_at_unix_ms += 1500;
  inputs.nonce = std::string(12, '\2');
  grpc::Status again = CallWithEnvelope(channel.get(), Method("BlacklistStatus"),
                                        node2.SealWith(inputs).value());
  EXPECT_EQ(again.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(again.error_message(), "replayed request");
  EXPECT_TRUE(Entries().empty());
}

// An authentic envelope sent too long ago (captured, replayed late) is refused,
// and not counted either.
TEST_F(GateTest, AnAuthenticEnvelopeOutsideItsWindowIsRefusedNotCounted) {
  crypto::EnvelopeOptions old_clock = Identity("node2");
  old_clock.clock = [] { return absl::Now() - absl::Minutes(5); };
  crypto::EnvelopeCodec node2(old_clock);
  auto channel = ChannelFrom(kNode2Source);
  for (int i = 0; i < 10; ++i) {
    grpc::Status status = CallWithEnvelope(
        channel.get(), Method("BlacklistStatus"),
        node2.Seal(crypto::Direction::kRequest, MethodPathOf("BlacklistStatus"), "node1",
                   crypto::EnvelopeCodec::NewSalt(), "")
            .value());
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_NE(status.error_message().find("send time"), std::string::npos);
  }
  EXPECT_TRUE(Entries().empty());
}

// A request must name the node it is for (so that it cannot be replayed to
// another); only Identify, which changes nothing, may go to any node.
TEST_F(GateTest, RequestsMustNameTheirRecipient) {
  crypto::EnvelopeCodec node2(Identity("node2"));
  auto channel = ChannelFrom(kNode2Source);
  auto seal = [&](absl::string_view method, absl::string_view recipient) {
    return node2
        .Seal(crypto::Direction::kRequest, MethodPathOf(method), recipient,
              crypto::EnvelopeCodec::NewSalt(), "")
        .value();
  };
  grpc::Status status =
      CallWithEnvelope(channel.get(), Method("BlacklistStatus"), seal("BlacklistStatus", "node3"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message(), "envelope for another node");
  status = CallWithEnvelope(channel.get(), Method("BlacklistStatus"), seal("BlacklistStatus", ""));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message(),
            "envelope names no recipient: only Identify may be sent to any node");
  ASSERT_EQ(Entries().size(), 1u);  // both refusals counted: they may be forgeries
  EXPECT_EQ(Entries()[0].invalid_messages, 2u);
  EXPECT_TRUE(
      CallWithEnvelope(channel.get(), Method("Identify"), seal("Identify", "")).ok());
  EXPECT_TRUE(Entries().empty());  // an authentic request resets the count
}

// A client that knows only the address learns the node with Identify, and then
// accepts replies from that node alone.
TEST_F(GateTest, AClientBindsToTheNodeThatAnswersIdentify) {
  client::AgentClient::Options options;
  options.channel = ChannelFrom(kNode2Source);
  options.envelope = Identity("node2");
  options.reply_senders = {"node1", "node2"};
  auto client = client::AgentClient::Create(std::move(options)).value();
  EXPECT_EQ(client->daemon_node(), "");
  EXPECT_TRUE(BlacklistStatus(*client).ok());
  EXPECT_EQ(client->daemon_node(), "node1");
}

TEST_F(GateTest, RepliesAreSealedByTheDaemon) {
  auto node2 = Client(ChannelFrom(kNode2Source), "node2");
  EXPECT_TRUE(BlacklistStatus(*node2).ok());
  // A client that expects another server refuses node1's authentic reply.
  client::AgentClient::Options options;
  options.channel = ChannelFrom(kNode2Source);
  options.envelope = Identity("node2");
  options.recipient = "node1";
  options.reply_senders = {"node3"};
  auto picky = client::AgentClient::Create(std::move(options)).value();
  absl::Status status = BlacklistStatus(*picky);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(status.message().find("sealed by node1"), absl::string_view::npos) << status;
}

// A member's source seen in an authentic request gets the members' budget for
// its next connections.
TEST_F(GateTest, AMembersSourceIsLearned) {
  const int member = static_cast<int>(net::PeerClass::kMember);
  auto first = Client(ChannelFrom("127.0.0.9"), "node2");
  EXPECT_TRUE(BlacklistStatus(*first).ok());
  const size_t members_before = daemon_->listener().connection_stats().open[member];
  auto second = Client(ChannelFrom("127.0.0.9"), "node2");
  EXPECT_TRUE(BlacklistStatus(*second).ok());
  EXPECT_EQ(daemon_->listener().connection_stats().open[member], members_before + 1);
}

TEST_F(GateTest, OversizedRequestsAreRefused) {
  crypto::EnvelopeCodec node2(Identity("node2"));
  v1::Envelope request = node2.Seal(crypto::Direction::kRequest, MethodPathOf("BlacklistStatus"),
                                    "node1", crypto::EnvelopeCodec::NewSalt(),
                                    std::string(2 << 20, 'x'))
                             .value();
  auto channel = ChannelFrom(kNode2Source);
  EXPECT_EQ(CallWithEnvelope(channel.get(), Method("BlacklistStatus"), request).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(daemon_->dispatched_calls(), 0);
}

TEST_F(GateTest, AGarbledPayloadIsInvalidArgumentAfterTheGate) {
  crypto::EnvelopeCodec node2(Identity("node2"));
  v1::Envelope request = node2.Seal(crypto::Direction::kRequest, MethodPathOf("BlacklistStatus"),
                                    "node1", crypto::EnvelopeCodec::NewSalt(), "\xff\xff\xff")
                             .value();
  auto channel = ChannelFrom(kNode2Source);
  grpc::Status status = CallWithEnvelope(channel.get(), Method("BlacklistStatus"), request);
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

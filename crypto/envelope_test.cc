#include "crypto/envelope.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace omd::crypto {
namespace {

constexpr absl::string_view kMethod = "/omd.v1.Agent/BlacklistStatus";
const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

EnvelopeOptions Options(absl::string_view nodename, absl::string_view secret = "s3cret-s3cret-s3cret") {
  EnvelopeOptions options;
  options.cluster = "prod";
  options.nodename = std::string(nodename);
  options.secrets = {{1, std::string(secret)}};
  options.clock = [] { return kNow; };
  return options;
}

class EnvelopeTest : public ::testing::Test {
 protected:
  EnvelopeCodec node1_{Options("node1")};
  EnvelopeCodec node2_{Options("node2")};
  const std::string salt_ = EnvelopeCodec::NewSalt();
};

TEST_F(EnvelopeTest, RequestAndReplyRoundTrip) {
  v1::Envelope request = node1_.Seal(Direction::kRequest, kMethod, "node2", salt_, "ping").value();
  EXPECT_EQ(request.cluster(), "prod");
  EXPECT_EQ(request.nodename(), "node1");
  EXPECT_EQ(request.key_generation(), 1u);
  EXPECT_EQ(request.ciphertext().find("ping"), std::string::npos);

  absl::StatusOr<OpenedEnvelope> opened = node2_.Open(Direction::kRequest, kMethod, request);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->nodename, "node1");
  EXPECT_EQ(opened->payload, "ping");
  EXPECT_EQ(opened->request_id.size(), kRequestIdBytes);
  EXPECT_EQ(opened->sent_at, kNow);

  v1::Envelope reply = node2_.SealReply(kMethod, *opened, "pong").value();
  EXPECT_EQ(reply.nodename(), "node2");
  EXPECT_EQ(reply.salt(), salt_);
  absl::StatusOr<OpenedEnvelope> answer = node1_.Open(Direction::kReply, kMethod, reply);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->payload, "pong");
  EXPECT_EQ(answer->in_reply_to, opened->request_id);
  EXPECT_EQ(answer->sequence, 0u);  // a unary reply
}

// A stream's replies carry their place in the stream, under the same key and
// answering the same request; there is no 0th.
TEST_F(EnvelopeTest, StreamRepliesAreNumbered) {
  v1::Envelope request = node1_.Seal(Direction::kRequest, kMethod, "node2", salt_, "ping").value();
  const OpenedEnvelope opened = node2_.Open(Direction::kRequest, kMethod, request).value();
  for (uint64_t sequence : {uint64_t{1}, uint64_t{2}, uint64_t{1} << 40}) {
    v1::Envelope reply = node2_.SealStreamReply(kMethod, opened, "line", sequence).value();
    EXPECT_EQ(reply.salt(), salt_);
    absl::StatusOr<OpenedEnvelope> answer = node1_.Open(Direction::kReply, kMethod, reply);
    ASSERT_TRUE(answer.ok()) << answer.status();
    EXPECT_EQ(answer->sequence, sequence);
    EXPECT_EQ(answer->in_reply_to, opened.request_id);
    EXPECT_EQ(answer->payload, "line");
  }
  EXPECT_EQ(node2_.SealStreamReply(kMethod, opened, "line", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EnvelopeTest, EachSealUsesAFreshNonceAndRequestId) {
  v1::Envelope a = node1_.Seal(Direction::kRequest, kMethod, "node2", salt_, "x").value();
  v1::Envelope b = node1_.Seal(Direction::kRequest, kMethod, "node2", salt_, "x").value();
  EXPECT_NE(a.nonce(), b.nonce());
  EXPECT_NE(a.ciphertext(), b.ciphertext());
}

TEST_F(EnvelopeTest, WrongSecretIsUnauthenticated) {
  EnvelopeCodec impostor(Options("node1", "another-secret-entirely"));
  v1::Envelope request = impostor.Seal(Direction::kRequest, kMethod, "node2", salt_, "x").value();
  absl::StatusOr<OpenedEnvelope> opened = node2_.Open(Direction::kRequest, kMethod, request);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(opened.status().message(), "message authentication failed");
}

// Every clear field is bound by the associated data, every ciphertext byte by the tag.
TEST_F(EnvelopeTest, AnyChangedFieldOrByteIsRefused) {
  const v1::Envelope request = node1_.Seal(Direction::kRequest, kMethod, "node2", salt_, "x").value();
  auto expect_refused = [&](const v1::Envelope& tampered, const std::string& what) {
    EXPECT_EQ(node2_.Open(Direction::kRequest, kMethod, tampered).status().code(),
              absl::StatusCode::kUnauthenticated)
        << what;
  };
  v1::Envelope tampered = request;
  tampered.set_nodename("node3");
  expect_refused(tampered, "nodename");
  tampered = request;
  tampered.set_cluster("other");
  expect_refused(tampered, "cluster");
  tampered = request;
  tampered.set_key_generation(2);
  expect_refused(tampered, "key generation");
  tampered = request;
  tampered.set_recipient("");
  expect_refused(tampered, "recipient");
  for (size_t i = 0; i < request.salt().size(); ++i) {
    tampered = request;
    (*tampered.mutable_salt())[i] ^= 0x80;
    expect_refused(tampered, "salt byte " + std::to_string(i));
  }
  for (size_t i = 0; i < request.nonce().size(); ++i) {
    tampered = request;
    (*tampered.mutable_nonce())[i] ^= 0x80;
    expect_refused(tampered, "nonce byte " + std::to_string(i));
  }
  for (size_t i = 0; i < request.ciphertext().size(); ++i) {
    tampered = request;
    (*tampered.mutable_ciphertext())[i] ^= 0x01;
    expect_refused(tampered, "ciphertext byte " + std::to_string(i));
  }
  tampered = request;
  tampered.mutable_ciphertext()->pop_back();
  expect_refused(tampered, "truncated ciphertext");
}

TEST_F(EnvelopeTest, BoundToMethodAndDirection) {
  const v1::Envelope request = node1_.Seal(Direction::kRequest, kMethod, "node2", salt_, "x").value();
  EXPECT_EQ(node2_.Open(Direction::kRequest, "/omd.v1.Agent/BlacklistClear", request)
                .status().message(),
            "message authentication failed");
  // A request to itself, reflected back to its sender, cannot pass for a reply.
  const v1::Envelope to_self = node1_.Seal(Direction::kRequest, kMethod, "node1", salt_, "x").value();
  EXPECT_TRUE(node1_.Open(Direction::kRequest, kMethod, to_self).ok());
  EXPECT_EQ(node1_.Open(Direction::kReply, kMethod, to_self).status().message(),
            "message authentication failed");
}

// A request captured on its way to one node is refused by the others; one sealed
// for any node is accepted by all (which is why clients name the recipient).
TEST_F(EnvelopeTest, BoundToItsRecipient) {
  EnvelopeCodec node3(Options("node3"));
  const v1::Envelope for_node2 =
      node1_.Seal(Direction::kRequest, kMethod, "node2", salt_, "x").value();
  EXPECT_TRUE(node2_.Open(Direction::kRequest, kMethod, for_node2).ok());
  EXPECT_EQ(node3.Open(Direction::kRequest, kMethod, for_node2).status().message(),
            "envelope for another node");
  v1::Envelope relabelled = for_node2;
  relabelled.set_recipient("node3");
  EXPECT_EQ(node3.Open(Direction::kRequest, kMethod, relabelled).status().message(),
            "message authentication failed");
  relabelled.set_recipient("");
  EXPECT_EQ(node3.Open(Direction::kRequest, kMethod, relabelled).status().message(),
            "message authentication failed");
  const v1::Envelope for_any = node1_.Seal(Direction::kRequest, kMethod, "", salt_, "x").value();
  EXPECT_TRUE(node2_.Open(Direction::kRequest, kMethod, for_any).ok());
  EXPECT_TRUE(node3.Open(Direction::kRequest, kMethod, for_any).ok());
  // A reply is always for someone: its requester.
  const OpenedEnvelope opened = node2_.Open(Direction::kRequest, kMethod, for_node2).value();
  const v1::Envelope reply = node2_.SealReply(kMethod, opened, "pong").value();
  EXPECT_EQ(reply.recipient(), "node1");
  EXPECT_TRUE(node1_.Open(Direction::kReply, kMethod, reply).ok());
  EXPECT_EQ(node3.Open(Direction::kReply, kMethod, reply).status().message(),
            "envelope for another node");
}

// Open authenticates; the send time is a separate check, so that an authentic
// envelope sent too long ago (a replay) can be told from a forgery.
TEST_F(EnvelopeTest, SendTimeMustBeWithinTheSkew) {
  for (absl::Duration offset : {absl::Seconds(61), absl::Seconds(-61)}) {
    EnvelopeOptions skewed = Options("node1");
    skewed.clock = [offset] { return kNow + offset; };
    EnvelopeCodec sender(skewed);
    v1::Envelope request = sender.Seal(Direction::kRequest, kMethod, "node2", salt_, "x").value();
    absl::StatusOr<OpenedEnvelope> opened = node2_.Open(Direction::kRequest, kMethod, request);
    ASSERT_TRUE(opened.ok()) << opened.status();
    absl::Status fresh = node2_.CheckSendTime(opened->sent_at);
    EXPECT_EQ(fresh.code(), absl::StatusCode::kUnauthenticated) << offset;
    EXPECT_NE(fresh.message().find("send time"), absl::string_view::npos) << fresh;
  }
  for (absl::Duration offset : {absl::Seconds(60), absl::Seconds(-60)}) {
    EnvelopeOptions skewed = Options("node1");
    skewed.clock = [offset] { return kNow + offset; };
    EnvelopeCodec sender(skewed);
    v1::Envelope request = sender.Seal(Direction::kRequest, kMethod, "node2", salt_, "x").value();
    absl::StatusOr<OpenedEnvelope> opened = node2_.Open(Direction::kRequest, kMethod, request);
    ASSERT_TRUE(opened.ok()) << offset;
    EXPECT_TRUE(node2_.CheckSendTime(opened->sent_at).ok()) << offset;
  }
}

TEST_F(EnvelopeTest, MalformedClearFieldsAreRefusedBeforeDecryption) {
  const v1::Envelope request = node1_.Seal(Direction::kRequest, kMethod, "node2", salt_, "x").value();
  v1::Envelope bad = request;
  bad.set_salt("short");
  EXPECT_EQ(node2_.Open(Direction::kRequest, kMethod, bad).status().message(),
            "salt must be 16 bytes");
  bad = request;
  bad.clear_nonce();
  EXPECT_EQ(node2_.Open(Direction::kRequest, kMethod, bad).status().message(),
            "nonce must be 12 bytes");
  bad = request;
  bad.clear_nodename();
  EXPECT_EQ(node2_.Open(Direction::kRequest, kMethod, bad).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(node2_.Open(Direction::kRequest, kMethod, v1::Envelope()).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(node1_.Seal(Direction::kRequest, kMethod, "node2", "short", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Rotation: a node that moved to generation 2 still opens generation 1 while the
// previous secret is configured, and seals with generation 2.
TEST_F(EnvelopeTest, KeyRotationAcceptsThePreviousGeneration) {
  EnvelopeOptions rotated = Options("node2");
  rotated.secrets = {{2, "the-new-secret-value"}, {1, "s3cret-s3cret-s3cret"}};
  EnvelopeCodec node2_rotated(rotated);
  v1::Envelope old_request = node1_.Seal(Direction::kRequest, kMethod, "node2", salt_, "x").value();
  EXPECT_TRUE(node2_rotated.Open(Direction::kRequest, kMethod, old_request).ok());
  v1::Envelope new_request =
      node2_rotated.Seal(Direction::kRequest, kMethod, "node1", salt_, "x").value();
  EXPECT_EQ(new_request.key_generation(), 2u);
  absl::StatusOr<OpenedEnvelope> refused = node1_.Open(Direction::kRequest, kMethod, new_request);
  EXPECT_EQ(refused.status().message(), "unknown key generation 2");
}

// A joiner knows the secret, not the cluster's name nor the secret's generation:
// it seals with neither, and a member opens that only where joiners are accepted,
// answering under generation 0 with its real cluster name.
TEST_F(EnvelopeTest, AJoinersRequestOpensOnlyWhereJoinersAreAccepted) {
  constexpr absl::string_view kJoin = "/omd.v1.Agent/Join";
  EnvelopeOptions joiner_options = JoinerEnvelopeOptions("node3", "s3cret-s3cret-s3cret");
  joiner_options.clock = [] { return kNow; };
  EnvelopeCodec joiner(joiner_options);
  const v1::Envelope request =
      joiner.Seal(Direction::kRequest, kJoin, "node2", salt_, "join").value();
  EXPECT_EQ(request.cluster(), "");
  EXPECT_EQ(request.key_generation(), kJoinerKeyGeneration);

  EXPECT_EQ(node2_.Open(Direction::kRequest, kJoin, request).status().message(),
            "envelope of another cluster");
  absl::StatusOr<OpenedEnvelope> opened =
      node2_.Open(Direction::kRequest, kJoin, request, Joiners::kAccepted);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->cluster, "");
  EXPECT_EQ(opened->nodename, "node3");
  EXPECT_EQ(opened->payload, "join");

  const v1::Envelope reply = node2_.SealReply(kJoin, *opened, "welcome").value();
  EXPECT_EQ(reply.cluster(), "prod");
  EXPECT_EQ(reply.key_generation(), kJoinerKeyGeneration);
  EXPECT_EQ(reply.salt(), salt_);
  absl::StatusOr<OpenedEnvelope> answer = joiner.Open(Direction::kReply, kJoin, reply);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->cluster, "prod");
  EXPECT_EQ(answer->payload, "welcome");
  EXPECT_EQ(answer->in_reply_to, opened->request_id);

  // Generation 0 is a joiner's alone: a member node3 does not open that reply.
  EnvelopeCodec member3(Options("node3"));
  EXPECT_EQ(member3.Open(Direction::kReply, kJoin, reply).status().message(),
            "unknown key generation 0");
  // The joiner's codec still wants its own name as the reply's recipient.
  EXPECT_EQ(EnvelopeCodec(JoinerEnvelopeOptions("node4", "s3cret-s3cret-s3cret"))
                .Open(Direction::kReply, kJoin, reply)
                .status()
                .message(),
            "envelope for another node");
}

TEST_F(EnvelopeTest, JoinersEnvelopesAreRefusedWhenAnythingIsOff) {
  constexpr absl::string_view kJoin = "/omd.v1.Agent/Join";
  EnvelopeCodec wrong(JoinerEnvelopeOptions("node3", "not-the-cluster-secret"));
  const v1::Envelope forged = wrong.Seal(Direction::kRequest, kJoin, "node2", salt_, "").value();
  EXPECT_EQ(node2_.Open(Direction::kRequest, kJoin, forged, Joiners::kAccepted)
                .status()
                .message(),
            "message authentication failed");

  // An empty cluster with a real generation is no joiner's envelope.
  EnvelopeOptions generation1 = JoinerEnvelopeOptions("node3", "s3cret-s3cret-s3cret");
  generation1.secrets.front().generation = 1;
  const v1::Envelope odd =
      EnvelopeCodec(generation1).Seal(Direction::kRequest, kJoin, "node2", salt_, "").value();
  EXPECT_EQ(node2_.Open(Direction::kRequest, kJoin, odd, Joiners::kAccepted).status().message(),
            "a joiner's envelope must have key generation 0");

  // Nor is a member's envelope under generation 0, joiners accepted or not.
  EnvelopeOptions member0 = Options("node1");
  member0.secrets.front().generation = kJoinerKeyGeneration;
  const v1::Envelope zero =
      EnvelopeCodec(member0).Seal(Direction::kRequest, kJoin, "node2", salt_, "").value();
  EXPECT_EQ(zero.cluster(), "prod");
  EXPECT_EQ(node2_.Open(Direction::kRequest, kJoin, zero, Joiners::kAccepted).status().message(),
            "unknown key generation 0");

  // A joiner's request is never a reply.
  EnvelopeCodec joiner(JoinerEnvelopeOptions("node2", "s3cret-s3cret-s3cret"));
  const v1::Envelope as_reply =
      joiner.Seal(Direction::kReply, kJoin, "node1", salt_, "").value();
  EXPECT_EQ(node1_.Open(Direction::kReply, kJoin, as_reply).status().message(),
            "envelope of another cluster");
}

// During a rotation, generation 0 is the current secret only: a joiner given the
// previous one is refused.
TEST_F(EnvelopeTest, AJoinerMustHaveTheCurrentSecret) {
  constexpr absl::string_view kJoin = "/omd.v1.Agent/Join";
  EnvelopeOptions rotated = Options("node2");
  rotated.secrets = {{2, "the-new-secret-value"}, {1, "s3cret-s3cret-s3cret"}};
  EnvelopeCodec node2_rotated(rotated);
  auto join = [&](const std::string& secret) {
    EnvelopeCodec joiner(JoinerEnvelopeOptions("node3", secret));
    return node2_rotated.Open(Direction::kRequest, kJoin,
                              joiner.Seal(Direction::kRequest, kJoin, "node2", salt_, "").value(),
                              Joiners::kAccepted);
  };
  EXPECT_TRUE(join("the-new-secret-value").ok());
  EXPECT_EQ(join("s3cret-s3cret-s3cret").status().message(), "message authentication failed");
}

TEST_F(EnvelopeTest, UnencryptedBenchmarkModeCarriesTheSameFields) {
  EnvelopeOptions plain = Options("node1");
  plain.unencrypted_for_benchmark = true;
  EnvelopeCodec plain1(plain);
  plain.nodename = "node2";
  EnvelopeCodec plain2(plain);
  v1::Envelope request = plain1.Seal(Direction::kRequest, kMethod, "node2", salt_, "x").value();
  absl::StatusOr<OpenedEnvelope> opened = plain2.Open(Direction::kRequest, kMethod, request);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->payload, "x");
  // And an encrypting node refuses it.
  EXPECT_FALSE(node2_.Open(Direction::kRequest, kMethod, request).ok());
}

}  // namespace
}  // namespace omd::crypto

namespace omd::crypto {
namespace {

// Sealing and opening from many threads shares the key cache and uses each
// thread's own cipher contexts; a small cache also exercises eviction.
TEST(EnvelopeConcurrencyTest, ManyThreadsSealAndOpen) {
  EnvelopeOptions options = Options("node1");
  options.key_cache_capacity = 4;
  EnvelopeCodec codec(options);
  std::atomic<int> opened{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        const std::string salt = EnvelopeCodec::NewSalt();
        v1::Envelope envelope =
            codec.Seal(Direction::kRequest, kMethod, "node1", salt, std::to_string(i)).value();
        absl::StatusOr<OpenedEnvelope> result =
            codec.Open(Direction::kRequest, kMethod, envelope);
        if (result.ok() && result->payload == std::to_string(i)) ++opened;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(opened.load(), 800);
}

}  // namespace
}  // namespace omd::crypto

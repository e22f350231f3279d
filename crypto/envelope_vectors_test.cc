// The test vectors of docs/PROTOCOL.md, made by the independent Python
// implementation (client/python/make_envelope_vectors.py): this implementation must
// reproduce every derived field from the inputs, and open each envelope.
#include <cstdlib>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "config/atomic_file.h"
#include "config/ini.h"
#include "crypto/aead.h"
#include "crypto/envelope.h"
#include "gtest/gtest.h"

namespace omd::crypto {
namespace {

constexpr absl::string_view kKeyDerivationInfo = "omd.v1.envelope.key";

config::IniFile LoadVectors() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const std::string path = absl::StrCat(srcdir != nullptr ? srcdir : ".",
                                        "/omd/crypto/testdata/envelope_vectors.txt");
  absl::StatusOr<std::string> text = config::ReadFileToString(path, 1 << 20);
  EXPECT_TRUE(text.ok()) << text.status();
  absl::StatusOr<config::IniFile> vectors = config::IniFile::Parse(text.value_or(""));
  EXPECT_TRUE(vectors.ok()) << vectors.status();
  return vectors.value_or(config::IniFile());
}

class Vector {
 public:
  Vector(const config::IniFile& file, std::string name)
      : file_(file), name_(std::move(name)) {}

  std::string Text(absl::string_view key) const {
    std::optional<std::string> value = file_.Get(name_, key);
    EXPECT_TRUE(value.has_value()) << name_ << " has no " << key;
    return value.value_or("");
  }
  std::string Bytes(absl::string_view key) const { return absl::HexStringToBytes(Text(key)); }
  int64_t Number(absl::string_view key) const {
    int64_t number = 0;
    EXPECT_TRUE(absl::SimpleAtoi(Text(key), &number)) << name_ << "." << key;
    return number;
  }
  Direction direction() const {
    return Text("direction") == "reply" ? Direction::kReply : Direction::kRequest;
  }

  SealInputs Inputs() const {
    SealInputs inputs;
    inputs.direction = direction();
    inputs.method = Text("method");
    inputs.recipient = Text("recipient");
    inputs.salt = Bytes("salt");
    inputs.key_generation = static_cast<uint32_t>(Number("key_generation"));
    inputs.nonce = Bytes("nonce");
    inputs.request_id = Bytes("request_id");
    inputs.in_reply_to = Bytes("in_reply_to");
    inputs.sent_at_unix_ms = Number("sent_at_unix_ms");
    inputs.payload = Bytes("payload");
    inputs.sequence = static_cast<uint64_t>(Number("sequence"));
    return inputs;
  }

  // The sender's codec: it seals the vector.
  EnvelopeOptions Options() const {
    EnvelopeOptions options;
    options.cluster = Text("cluster");
    options.nodename = Text("nodename");
    options.secrets = {{static_cast<uint32_t>(Number("key_generation")), Text("secret")}};
    const absl::Time sent_at = absl::FromUnixMillis(Number("sent_at_unix_ms"));
    options.clock = [sent_at] { return sent_at; };
    return options;
  }

 private:
  const config::IniFile& file_;
  const std::string name_;
};

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

TEST(EnvelopeVectorsTest, ThereAreVectorsOfBothDirectionsAndTwoGenerations) {
  config::IniFile file = LoadVectors();
  std::set<std::string> directions;
  std::set<std::string> generations;
  for (const std::string& name : file.SectionNames()) {
    Vector vector(file, name);
    directions.insert(vector.Text("direction"));
    generations.insert(vector.Text("key_generation"));
  }
  EXPECT_EQ(directions, (std::set<std::string>{"reply", "request"}));
  EXPECT_GE(generations.size(), 2u);
}

TEST(EnvelopeVectorsTest, DerivedFieldsMatch) {
  config::IniFile file = LoadVectors();
  for (const std::string& name : file.SectionNames()) {
    SCOPED_TRACE(name);
    Vector vector(file, name);
    absl::StatusOr<AeadKey> key =
        DeriveKey(vector.Text("secret"), vector.Bytes("salt"), kKeyDerivationInfo);
    ASSERT_TRUE(key.ok()) << key.status();
    EXPECT_EQ(Hex(std::string(key->begin(), key->end())), vector.Text("key"));

    EnvelopeCodec codec(vector.Options());
    absl::StatusOr<v1::Envelope> envelope = codec.SealWith(vector.Inputs());
    ASSERT_TRUE(envelope.ok()) << envelope.status();
    EXPECT_EQ(Hex(EnvelopeCodec::AssociatedData(vector.direction(), vector.Text("method"),
                                                *envelope)),
              vector.Text("aad"));
    EXPECT_EQ(Hex(envelope->ciphertext()), vector.Text("ciphertext"));
    EXPECT_EQ(Hex(envelope->SerializeAsString()), vector.Text("envelope"));

    v1::Sealed sealed;
    sealed.set_sent_at_unix_ms(vector.Number("sent_at_unix_ms"));
    sealed.set_request_id(vector.Bytes("request_id"));
    sealed.set_in_reply_to(vector.Bytes("in_reply_to"));
    sealed.set_payload(vector.Bytes("payload"));
    sealed.set_sequence(static_cast<uint64_t>(vector.Number("sequence")));
    EXPECT_EQ(Hex(sealed.SerializeAsString()), vector.Text("plaintext"));
  }
}

TEST(EnvelopeVectorsTest, EnvelopesOpenToTheirPayload) {
  config::IniFile file = LoadVectors();
  for (const std::string& name : file.SectionNames()) {
    SCOPED_TRACE(name);
    Vector vector(file, name);
    v1::Envelope envelope;
    ASSERT_TRUE(envelope.ParseFromString(vector.Bytes("envelope")));
    EnvelopeOptions receiver_options = vector.Options();
    receiver_options.nodename = vector.Text("recipient");
    if (receiver_options.nodename.empty()) receiver_options.nodename = "any-node";
    Joiners joiners = Joiners::kRefused;
    if (vector.Number("key_generation") == kJoinerKeyGeneration) {
      // A joiner's request: opened by a member of a cluster it does not name,
      // whose current secret (of whatever generation) it has. Its reply: by the
      // joiner, whose codec has no cluster.
      if (vector.direction() == Direction::kRequest) {
        receiver_options.cluster = "the-members-cluster";
        receiver_options.secrets = {{1, vector.Text("secret")}};
        joiners = Joiners::kAccepted;
      } else {
        receiver_options.cluster = "";
      }
    }
    EnvelopeCodec receiver(receiver_options);
    absl::StatusOr<OpenedEnvelope> opened =
        receiver.Open(vector.direction(), vector.Text("method"), envelope, joiners);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->payload, vector.Bytes("payload"));
    EXPECT_EQ(opened->request_id, vector.Bytes("request_id"));
    EXPECT_EQ(opened->in_reply_to, vector.Bytes("in_reply_to"));
    EXPECT_EQ(opened->nodename, vector.Text("nodename"));
    EXPECT_EQ(opened->cluster, vector.Text("cluster"));
    EXPECT_EQ(opened->sequence, static_cast<uint64_t>(vector.Number("sequence")));
  }
}

// The joiner's pair: the member refuses the request where joiners are not
// accepted, and answers under generation 0 with its cluster's name.
TEST(EnvelopeVectorsTest, AJoinersRequestAndItsReply) {
  config::IniFile file = LoadVectors();
  Vector request(file, "joiner_request");
  Vector reply(file, "joiner_reply");
  EXPECT_EQ(request.Text("cluster"), "");
  EXPECT_EQ(request.Number("key_generation"), kJoinerKeyGeneration);
  EXPECT_EQ(reply.Text("cluster"), "test");
  EXPECT_EQ(reply.Bytes("salt"), request.Bytes("salt"));
  EXPECT_EQ(reply.Bytes("in_reply_to"), request.Bytes("request_id"));

  EnvelopeOptions member = reply.Options();  // node1 of cluster test
  member.secrets = {{1, reply.Text("secret")}};
  EnvelopeCodec node1(member);
  v1::Envelope join;
  ASSERT_TRUE(join.ParseFromString(request.Bytes("envelope")));
  EXPECT_EQ(node1.Open(Direction::kRequest, request.Text("method"), join).status().message(),
            "envelope of another cluster");
  absl::StatusOr<OpenedEnvelope> opened =
      node1.Open(Direction::kRequest, request.Text("method"), join, Joiners::kAccepted);
  ASSERT_TRUE(opened.ok()) << opened.status();
  v1::JoinRequest payload;
  ASSERT_TRUE(payload.ParseFromString(opened->payload));
  EXPECT_EQ(payload.address(), "127.0.0.3:1214");

  // The member's own seal of the reply, from the vector's inputs, is the vector.
  SealInputs inputs = reply.Inputs();
  absl::StatusOr<v1::Envelope> sealed = node1.SealWith(inputs);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(Hex(sealed->SerializeAsString()), reply.Text("envelope"));
  // And the joiner opens it, learning the cluster's name.
  EnvelopeOptions joiner = JoinerEnvelopeOptions("node3", request.Text("secret"));
  joiner.clock = reply.Options().clock;
  absl::StatusOr<OpenedEnvelope> answer =
      EnvelopeCodec(joiner).Open(Direction::kReply, reply.Text("method"), *sealed);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->cluster, "test");
  v1::JoinReply welcome;
  ASSERT_TRUE(welcome.ParseFromString(answer->payload));
  EXPECT_EQ(welcome.cluster().values().at("nodes"), "node1 node2 node3");
}

}  // namespace
}  // namespace omd::crypto

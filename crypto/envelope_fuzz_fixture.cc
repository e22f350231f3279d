#include "crypto/envelope_fuzz_fixture.h"

#include <cstdlib>
#include <utility>

#include "crypto/aead.h"

namespace omd::crypto::fuzz {
namespace {

constexpr char kCluster[] = "prod";
constexpr char kReceiver[] = "node2";
constexpr char kSecret2[] = "prod-secret-generation-2-0123456789";
constexpr char kSecret1[] = "prod-secret-generation-1-0123456789";

EnvelopeOptions Sender(std::string cluster, std::string nodename,
                       std::vector<ClusterSecret> secrets) {
  EnvelopeOptions options;
  options.cluster = std::move(cluster);
  options.nodename = std::move(nodename);
  options.secrets = std::move(secrets);
  options.clock = Now;
  return options;
}

// 16 or 12 bytes that differ from one envelope to the next.
std::string Bytes(size_t count, int first) {
  std::string bytes(count, '\0');
  for (size_t i = 0; i < count; ++i) bytes[i] = static_cast<char>(first + static_cast<int>(i));
  return bytes;
}

}  // namespace

absl::Time Now() { return absl::FromUnixSeconds(1'800'000'000); }

const EnvelopeOptions& ReceiverOptions() {
  static const EnvelopeOptions* const options = [] {
    auto* options = new EnvelopeOptions(Sender(kCluster, kReceiver, {{2, kSecret2}, {1, kSecret1}}));
    // Small, so that forged salts make it evict.
    options->key_cache_capacity = 8;
    return options;
  }();
  return *options;
}

const EnvelopeCodec& Receiver() {
  static const EnvelopeCodec* const codec = new EnvelopeCodec(ReceiverOptions());
  return *codec;
}

const std::vector<std::string>& Methods() {
  static const std::vector<std::string>* const methods = new std::vector<std::string>{
      "/omd.v1.Agent/BlacklistStatus", "/omd.v1.Agent/Identify", "/omd.v1.Agent/DaemonStop"};
  return *methods;
}

const std::vector<RealEnvelope>& RealEnvelopes() {
  static const std::vector<RealEnvelope>* const envelopes = [] {
    const std::vector<ClusterSecret> cluster_secrets = {{2, kSecret2}, {1, kSecret1}};
    struct Recipe {
      const char* name;
      EnvelopeOptions sender;
      SealInputs inputs;
      bool for_receiver;
    };
    auto inputs = [](Direction direction, size_t method, const char* recipient,
                     uint32_t generation, int seed, absl::Duration age,
                     std::string payload) {
      SealInputs in;
      in.direction = direction;
      in.method = Methods()[method];
      in.recipient = recipient;
      in.salt = Bytes(kSaltBytes, seed);
      in.key_generation = generation;
      in.nonce = Bytes(kNonceBytes, seed + 0x40);
      in.request_id = Bytes(kRequestIdBytes, seed + 0x20);
      if (direction == Direction::kReply) in.in_reply_to = Bytes(kRequestIdBytes, 0x70);
      in.sent_at_unix_ms = absl::ToUnixMillis(Now() - age);
      in.payload = std::move(payload);
      return in;
    };
    const Direction kRequest = Direction::kRequest, kReply = Direction::kReply;
    const absl::Duration fresh = absl::Milliseconds(250);
    const std::string status_reply("\x0a\x16\x0a\x05node3\x12\x09" "127.0.0.3\x18\x05\x20\x01", 24);
    std::vector<Recipe> recipes = {
        {"request_for_receiver", Sender(kCluster, "node1", cluster_secrets),
         inputs(kRequest, 0, kReceiver, 2, 0x00, fresh, ""), true},
        {"request_for_any_node", Sender(kCluster, "node1", cluster_secrets),
         inputs(kRequest, 1, "", 2, 0x10, fresh, "identify"), true},
        {"request_previous_generation", Sender(kCluster, "node3", {{1, kSecret1}}),
         inputs(kRequest, 2, kReceiver, 1, 0x20, fresh, std::string(300, 'p')), true},
        {"reply_for_receiver", Sender(kCluster, "node1", cluster_secrets),
         inputs(kReply, 0, kReceiver, 2, 0x30, fresh, status_reply), true},
        {"request_sent_long_ago", Sender(kCluster, "node1", cluster_secrets),
         inputs(kRequest, 0, kReceiver, 2, 0x40, absl::Minutes(10), ""), true},
        {"request_for_another_node", Sender(kCluster, "node1", cluster_secrets),
         inputs(kRequest, 0, "node3", 2, 0x50, fresh, ""), false},
        {"reply_for_any_node", Sender(kCluster, "node1", cluster_secrets),
         inputs(kReply, 1, "", 2, 0x60, fresh, "x"), false},
        {"other_cluster", Sender("staging", "node1", cluster_secrets),
         inputs(kRequest, 0, kReceiver, 2, 0x70, fresh, ""), false},
        {"unknown_generation", Sender(kCluster, "node1", {{7, "a-secret-of-generation-7"}}),
         inputs(kRequest, 0, kReceiver, 7, 0x80, fresh, ""), false},
        {"other_secret", Sender(kCluster, "node1", {{2, "not-the-cluster-secret-at-all"}}),
         inputs(kRequest, 0, kReceiver, 2, 0x90, fresh, ""), false},
    };
    auto* envelopes = new std::vector<RealEnvelope>;
    for (Recipe& recipe : recipes) {
      absl::StatusOr<v1::Envelope> sealed = EnvelopeCodec(recipe.sender).SealWith(recipe.inputs);
      if (!sealed.ok()) std::abort();
      size_t method = 0;
      while (Methods()[method] != recipe.inputs.method) ++method;
      envelopes->push_back(RealEnvelope{recipe.name, recipe.inputs.direction, method,
                                        *std::move(sealed), recipe.for_receiver});
    }
    return envelopes;
  }();
  return *envelopes;
}

v1::Envelope SealPlaintext(Direction direction, size_t method, const std::string& plaintext) {
  v1::Envelope envelope;
  envelope.set_cluster(kCluster);
  envelope.set_nodename("node1");
  envelope.set_recipient(kReceiver);
  envelope.set_salt(Bytes(kSaltBytes, 0xa0));
  envelope.set_key_generation(2);
  envelope.set_nonce(Bytes(kNonceBytes, 0xb0));
  static const AeadKey key =
      DeriveKey(kSecret2, envelope.salt(), "omd.v1.envelope.key").value();
  envelope.set_ciphertext(
      AesGcmSeal(key, envelope.nonce(),
                 EnvelopeCodec::AssociatedData(direction, Methods()[method], envelope), plaintext)
          .value());
  return envelope;
}

}  // namespace omd::crypto::fuzz

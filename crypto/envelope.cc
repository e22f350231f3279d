#include "crypto/envelope.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace omd::crypto {
namespace {

constexpr absl::string_view kAssociatedDataLabel = "omd.v1.envelope";
constexpr absl::string_view kKeyDerivationInfo = "omd.v1.envelope.key";
// Clear fields are names, not payload: caps keep a forged envelope from making the
// receiver hash megabytes before it fails.
constexpr size_t kMaxNameBytes = 255;

void AppendU32(std::string& out, uint32_t value) {
  const char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                         static_cast<char>(value >> 8), static_cast<char>(value)};
  out.append(bytes, 4);
}

void AppendField(std::string& out, absl::string_view field) {
  AppendU32(out, static_cast<uint32_t>(field.size()));
  out.append(field.data(), field.size());
}

std::string CacheKey(uint32_t generation, absl::string_view salt) {
  std::string key;
  AppendU32(key, generation);
  key.append(salt.data(), salt.size());
  return key;
}

}  // namespace

EnvelopeOptions JoinerEnvelopeOptions(std::string nodename, std::string secret) {
  EnvelopeOptions options;
  options.nodename = std::move(nodename);
  options.secrets.push_back({kJoinerKeyGeneration, std::move(secret)});
  return options;
}

EnvelopeCodec::EnvelopeCodec(EnvelopeOptions options) : options_(std::move(options)) {}

std::string EnvelopeCodec::NewSalt() { return RandomBytes(kSaltBytes); }

std::string EnvelopeCodec::AssociatedData(Direction direction, absl::string_view method,
                                          const v1::Envelope& envelope) {
  std::string aad;
  aad.reserve(kAssociatedDataLabel.size() + 1 + 4 * 6 + method.size() +
              envelope.cluster().size() + envelope.nodename().size() +
              envelope.recipient().size() + envelope.salt().size());
  aad.append(kAssociatedDataLabel.data(), kAssociatedDataLabel.size());
  aad.push_back(static_cast<char>(direction));
  AppendField(aad, method);
  AppendField(aad, envelope.cluster());
  AppendField(aad, envelope.nodename());
  AppendField(aad, envelope.recipient());
  AppendField(aad, envelope.salt());
  AppendU32(aad, envelope.key_generation());
  return aad;
}

const ClusterSecret* EnvelopeCodec::SecretOf(uint32_t generation) const {
  for (const ClusterSecret& candidate : options_.secrets) {
    if (candidate.generation == generation) return &candidate;
  }
  // A member answers a joiner under generation 0 with its current secret: the
  // one the joiner was given. Open lets generation 0 through only for a
  // joiner's request, and SealReply uses it only to answer one.
  if (generation == kJoinerKeyGeneration && !options_.cluster.empty() &&
      !options_.secrets.empty()) {
    return &options_.secrets.front();
  }
  return nullptr;
}

absl::StatusOr<AeadKey> EnvelopeCodec::Key(uint32_t generation,
                                           absl::string_view salt) const {
  const std::string cache_key = CacheKey(generation, salt);
  {
    sync::MutexLock lock(&key_cache_mutex_);
    auto it = key_cache_.find(cache_key);
    if (it != key_cache_.end()) return it->second;
  }
  const ClusterSecret* secret = SecretOf(generation);
  if (secret == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat("unknown key generation ", generation));
  }
  absl::StatusOr<AeadKey> key = DeriveKey(secret->secret, salt, kKeyDerivationInfo);
  if (!key.ok()) return key.status();
  sync::MutexLock lock(&key_cache_mutex_);
  // Full: drop an arbitrary entry. Honest clients reuse a salt per connection, so
  // the working set is small; this only bounds what forged salts can make us hold.
  if (key_cache_.size() >= options_.key_cache_capacity && !key_cache_.empty()) {
    key_cache_.erase(key_cache_.begin());
  }
  key_cache_.emplace(cache_key, *key);
  return key;
}

absl::StatusOr<v1::Envelope> EnvelopeCodec::SealFresh(
    Direction direction, absl::string_view method, absl::string_view recipient,
    absl::string_view salt, uint32_t key_generation, absl::string_view in_reply_to,
    absl::string_view payload, std::string* request_id, uint64_t sequence) const {
  SealInputs inputs;
  inputs.direction = direction;
  inputs.method = std::string(method);
  inputs.recipient = std::string(recipient);
  inputs.salt = std::string(salt);
  inputs.key_generation = key_generation;
  // One draw from the CSPRNG for both: each RAND_bytes call has a fixed cost.
  const std::string random = RandomBytes(kNonceBytes + kRequestIdBytes);
  inputs.nonce = random.substr(0, kNonceBytes);
  inputs.request_id = random.substr(kNonceBytes);
  inputs.in_reply_to = std::string(in_reply_to);
  inputs.sent_at_unix_ms = absl::ToUnixMillis(options_.clock());
  inputs.payload = std::string(payload);
  inputs.sequence = sequence;
  if (request_id != nullptr) *request_id = inputs.request_id;
  return SealWith(inputs);
}

absl::StatusOr<v1::Envelope> EnvelopeCodec::Seal(Direction direction,
                                                 absl::string_view method,
                                                 absl::string_view recipient,
                                                 absl::string_view salt,
                                                 absl::string_view payload,
                                                 std::string* request_id) const {
  if (options_.secrets.empty()) {
    return absl::FailedPreconditionError("no cluster secret to seal with");
  }
  return SealFresh(direction, method, recipient, salt, options_.secrets.front().generation,
                   /*in_reply_to=*/"", payload, request_id);
}

absl::StatusOr<v1::Envelope> EnvelopeCodec::SealReply(absl::string_view method,
                                                      const OpenedEnvelope& request,
                                                      absl::string_view payload) const {
  return SealFresh(Direction::kReply, method, request.nodename, request.salt,
                   request.key_generation,
                   request.request_id, payload, /*request_id=*/nullptr);
}

absl::StatusOr<v1::Envelope> EnvelopeCodec::SealStreamReply(absl::string_view method,
                                                            const OpenedEnvelope& request,
                                                            absl::string_view payload,
                                                            uint64_t sequence) const {
  if (sequence == 0) {
    return absl::InvalidArgumentError("a stream's replies are numbered from 1");
  }
  return SealFresh(Direction::kReply, method, request.nodename, request.salt,
                   request.key_generation, request.request_id, payload,
                   /*request_id=*/nullptr, sequence);
}

absl::StatusOr<v1::Envelope> EnvelopeCodec::SealWith(const SealInputs& inputs) const {
  if (inputs.salt.size() != kSaltBytes) {
    return absl::InvalidArgumentError("salt must be 16 bytes");
  }
  if (inputs.request_id.size() != kRequestIdBytes) {
    return absl::InvalidArgumentError("request id must be 16 bytes");
  }
  v1::Envelope envelope;
  envelope.set_cluster(options_.cluster);
  envelope.set_nodename(options_.nodename);
  envelope.set_recipient(inputs.recipient);
  envelope.set_salt(inputs.salt);
  envelope.set_key_generation(inputs.key_generation);
  envelope.set_nonce(inputs.nonce);

  v1::Sealed sealed;
  sealed.set_sent_at_unix_ms(inputs.sent_at_unix_ms);
  sealed.set_request_id(inputs.request_id);
  sealed.set_in_reply_to(inputs.in_reply_to);
  sealed.set_payload(inputs.payload);
  sealed.set_sequence(inputs.sequence);
  std::string plaintext;
  if (!sealed.SerializeToString(&plaintext)) {
    return absl::InternalError("cannot serialize the sealed message");
  }
  if (options_.unencrypted_for_benchmark) {
    envelope.set_ciphertext(std::move(plaintext));
    return envelope;
  }
  absl::StatusOr<AeadKey> key = Key(inputs.key_generation, inputs.salt);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> ciphertext = AesGcmSeal(
      *key, inputs.nonce, AssociatedData(inputs.direction, inputs.method, envelope),
      plaintext);
  if (!ciphertext.ok()) return ciphertext.status();
  envelope.set_ciphertext(*std::move(ciphertext));
  return envelope;
}

absl::StatusOr<OpenedEnvelope> EnvelopeCodec::Open(Direction direction,
                                                   absl::string_view method,
                                                   const v1::Envelope& envelope,
                                                   Joiners joiners) const {
  const bool joiners_codec = options_.cluster.empty();
  if (!joiners_codec && direction == Direction::kRequest && envelope.cluster().empty()) {
    // A joiner's request: it knows the secret, not the cluster's name.
    if (joiners != Joiners::kAccepted) {
      return absl::UnauthenticatedError("envelope of another cluster");
    }
    if (envelope.key_generation() != kJoinerKeyGeneration) {
      return absl::UnauthenticatedError("a joiner's envelope must have key generation 0");
    }
  } else if (envelope.cluster() != options_.cluster &&
             !(joiners_codec && direction == Direction::kReply)) {
    // A joiner's codec takes a reply of any cluster: that is how it learns the name.
    return absl::UnauthenticatedError("envelope of another cluster");
  } else if (!joiners_codec && envelope.key_generation() == kJoinerKeyGeneration) {
    // Generation 0 is a joiner's alone: a member's envelope never uses it.
    return absl::UnauthenticatedError("unknown key generation 0");
  }
  if (envelope.nodename().empty() || envelope.nodename().size() > kMaxNameBytes) {
    return absl::UnauthenticatedError("envelope without a valid node name");
  }
  // A reply is always for its requester; a request may be for any node.
  const bool for_any_node = direction == Direction::kRequest && envelope.recipient().empty();
  if (!for_any_node && envelope.recipient() != options_.nodename) {
    return absl::UnauthenticatedError("envelope for another node");
  }
  if (envelope.salt().size() != kSaltBytes) {
    return absl::UnauthenticatedError("salt must be 16 bytes");
  }
  if (envelope.nonce().size() != kNonceBytes) {
    return absl::UnauthenticatedError("nonce must be 12 bytes");
  }
  std::string plaintext;
  if (options_.unencrypted_for_benchmark) {
    plaintext = envelope.ciphertext();
  } else {
    absl::StatusOr<AeadKey> key = Key(envelope.key_generation(), envelope.salt());
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> opened =
        AesGcmOpen(*key, envelope.nonce(), AssociatedData(direction, method, envelope),
                   envelope.ciphertext());
    if (!opened.ok()) return opened.status();
    plaintext = *std::move(opened);
  }
  v1::Sealed sealed;
  if (!sealed.ParseFromString(plaintext)) {
    return absl::UnauthenticatedError("sealed message does not parse");
  }
  if (sealed.request_id().size() != kRequestIdBytes) {
    return absl::UnauthenticatedError("request id must be 16 bytes");
  }
  const absl::Time sent_at = absl::FromUnixMillis(sealed.sent_at_unix_ms());
  OpenedEnvelope opened;
  opened.cluster = envelope.cluster();
  opened.nodename = envelope.nodename();
  opened.salt = envelope.salt();
  opened.key_generation = envelope.key_generation();
  opened.request_id = std::move(*sealed.mutable_request_id());
  opened.in_reply_to = std::move(*sealed.mutable_in_reply_to());
  opened.sent_at = sent_at;
  opened.payload = std::move(*sealed.mutable_payload());
  opened.sequence = sealed.sequence();
  return opened;
}

absl::Status EnvelopeCodec::CheckSendTime(absl::Time sent_at) const {
  const absl::Duration age = options_.clock() - sent_at;
  if (age <= options_.clock_skew && -age <= options_.clock_skew) return absl::OkStatus();
  return absl::UnauthenticatedError(absl::StrFormat(
      "send time is %s away from this node's clock (limit %s)",
      absl::FormatDuration(absl::Trunc(age, absl::Milliseconds(1))),
      absl::FormatDuration(options_.clock_skew)));
}

}  // namespace omd::crypto

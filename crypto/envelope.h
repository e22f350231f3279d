// The envelope: how every omd request and reply is sealed (docs/PROTOCOL.md).
//
// An Envelope carries the cluster name, sender node name, salt and key generation
// in clear; its ciphertext is AES-256-GCM over a `Sealed` message, with a key
// derived by HKDF-SHA256 from the cluster secret of that generation and the salt.
// The associated data binds the direction, the full RPC method name and every clear
// field, so an envelope can be neither re-labelled nor replayed against another
// method or in the other direction.
//
//   EnvelopeCodec codec(options);                       // one per process
//   std::string salt = EnvelopeCodec::NewSalt();        // e.g. one per connection
//   Envelope request = codec.Seal(Direction::kRequest, method, salt, payload).value();
//   OpenedEnvelope opened = codec.Open(Direction::kRequest, method, request).value();
//   Envelope reply = codec.SealReply(method, opened, reply_payload).value();
//   Envelope third = codec.SealStreamReply(method, opened, payload, 3).value();
//
// Open checks the tag, CheckSendTime the send-time window; replay of a request id
// within the window is the receiver's business (server/replay_guard.h), and so is
// matching a reply's `in_reply_to` (client/agent_client.h).
//
// A joiner (om daemon join) has the secret but knows neither the cluster's name nor
// the secret's generation: it seals with an empty cluster and generation 0
// (JoinerEnvelopeOptions). A daemon opens such a request only where the caller
// says joiners are accepted (methods open to non-members), with its current
// secret, and SealReply answers it under generation 0 with the daemon's real
// cluster name, which a joiner's codec accepts (docs/PROTOCOL.md, section 6.3):
//
//   EnvelopeCodec joiner(JoinerEnvelopeOptions("node3", secret));
//   Envelope join = joiner.Seal(Direction::kRequest, method, "node1", salt, payload).value();
//   OpenedEnvelope opened = member.Open(Direction::kRequest, method, join,
//                                       Joiners::kAccepted).value();
#ifndef OMD_CRYPTO_ENVELOPE_H_
#define OMD_CRYPTO_ENVELOPE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "crypto/aead.h"
#include "proto/omd.pb.h"
#include "sync/mutex.h"

namespace omd::crypto {

inline constexpr size_t kSaltBytes = 16;
inline constexpr size_t kRequestIdBytes = 16;
// The key generation of a joiner's envelopes: a joiner knows the secret, not its
// generation. A daemon derives it from its current secret.
inline constexpr uint32_t kJoinerKeyGeneration = 0;

// Which way a message travels; part of the associated data.
enum class Direction : uint8_t { kRequest = 1, kReply = 2 };

// Whether Open accepts a joiner's request (empty cluster, generation 0): only on
// the methods open to non-members (Identify, Join).
enum class Joiners : uint8_t { kRefused, kAccepted };

// A cluster secret and the generation that names it on the wire.
struct ClusterSecret {
  uint32_t generation = 1;
  std::string secret;
};

struct EnvelopeOptions {
  // This node's cluster; envelopes of another are refused. Empty: a joiner's
  // codec, which accepts a reply of any cluster (and learns its name).
  std::string cluster;
  std::string nodename;  // this node: the sender of everything it seals
  // The first seals; all of them open (the others during a key rotation).
  std::vector<ClusterSecret> secrets;
  // Accepted difference between a message's send time and this node's clock.
  absl::Duration clock_skew = absl::Seconds(60);
  // Derived keys kept, by (generation, salt).
  size_t key_cache_capacity = 4096;
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  // Benchmarks only: the ciphertext field carries the Sealed message in clear, so
  // the cost of the cryptography can be measured. Nothing else ever sets this.
  bool unencrypted_for_benchmark = false;
};

// What a joiner seals with: no cluster, `secret` under kJoinerKeyGeneration.
EnvelopeOptions JoinerEnvelopeOptions(std::string nodename, std::string secret);

// What Open found inside an authentic envelope.
struct OpenedEnvelope {
  std::string cluster;   // the sender's cluster (empty: a joiner's request)
  std::string nodename;  // the sender, now authenticated
  std::string salt;
  uint32_t key_generation = 0;
  std::string request_id;
  std::string in_reply_to;
  absl::Time sent_at;
  std::string payload;
  // A stream's reply: its place in the stream, from 1; 0 otherwise.
  uint64_t sequence = 0;
};

// Everything a seal uses, for test vectors: Seal chooses nonce, id and time itself.
struct SealInputs {
  Direction direction = Direction::kRequest;
  std::string method;
  std::string recipient;
  std::string salt;
  uint32_t key_generation = 0;
  std::string nonce;
  std::string request_id;
  std::string in_reply_to;
  int64_t sent_at_unix_ms = 0;
  std::string payload;
  uint64_t sequence = 0;  // a stream's replies: 1, 2, 3...; else 0
};

class EnvelopeCodec {
 public:
  explicit EnvelopeCodec(EnvelopeOptions options);

  EnvelopeCodec(const EnvelopeCodec&) = delete;
  EnvelopeCodec& operator=(const EnvelopeCodec&) = delete;

  // A fresh random salt.
  static std::string NewSalt();

  // Seals a message from this node to `recipient` (empty: any node) with the
  // current secret, a random nonce and request id, and the current time. The
  // request id is stored in `request_id` when given, to match the reply's
  // `in_reply_to`.
  absl::StatusOr<v1::Envelope> Seal(Direction direction, absl::string_view method,
                                    absl::string_view recipient, absl::string_view salt,
                                    absl::string_view payload,
                                    std::string* request_id = nullptr) const;

  // Seals the reply to `request`, for its sender, with the request's salt and key
  // generation, so the derived key is already cached.
  absl::StatusOr<v1::Envelope> SealReply(absl::string_view method,
                                         const OpenedEnvelope& request,
                                         absl::string_view payload) const;

  // The same for the `sequence`-th reply (from 1) of a stream answering `request`
  // (docs/PROTOCOL.md, section 5): a reader refuses any other order.
  absl::StatusOr<v1::Envelope> SealStreamReply(absl::string_view method,
                                               const OpenedEnvelope& request,
                                               absl::string_view payload,
                                               uint64_t sequence) const;

  absl::StatusOr<v1::Envelope> SealWith(const SealInputs& inputs) const;

  // UNAUTHENTICATED, with the reason, for anything but an authentic envelope of
  // this cluster, for this node (or, a request, for any node). The send time is
  // not checked here: an authentic envelope sent too long ago is a replay, which
  // the receiver treats apart from a forgery (CheckSendTime). With
  // Joiners::kAccepted, a request may also be a joiner's: empty cluster, key
  // generation 0, opened with the current secret.
  absl::StatusOr<OpenedEnvelope> Open(Direction direction, absl::string_view method,
                                      const v1::Envelope& envelope,
                                      Joiners joiners = Joiners::kRefused) const;

  // UNAUTHENTICATED unless `sent_at` is within the clock skew of this node's clock.
  absl::Status CheckSendTime(absl::Time sent_at) const;

  absl::Time Now() const { return options_.clock(); }

  // The associated data of an envelope: see docs/PROTOCOL.md.
  static std::string AssociatedData(Direction direction, absl::string_view method,
                                    const v1::Envelope& envelope);

 private:
  // Seals with a fresh nonce and request id, at the current time.
  absl::StatusOr<v1::Envelope> SealFresh(Direction direction, absl::string_view method,
                                         absl::string_view recipient,
                                         absl::string_view salt, uint32_t key_generation,
                                         absl::string_view in_reply_to,
                                         absl::string_view payload,
                                         std::string* request_id,
                                         uint64_t sequence = 0) const;

  // The secret of `generation`: the one configured, or for a member's codec and
  // kJoinerKeyGeneration, the current one. Null if none.
  const ClusterSecret* SecretOf(uint32_t generation) const;

  // The key for (generation, salt), derived once and cached.
  absl::StatusOr<AeadKey> Key(uint32_t generation, absl::string_view salt) const;

  const EnvelopeOptions options_;
  mutable sync::Mutex key_cache_mutex_;
  mutable absl::flat_hash_map<std::string, AeadKey> key_cache_
      ABSL_GUARDED_BY(key_cache_mutex_);
};

}  // namespace omd::crypto

#endif  // OMD_CRYPTO_ENVELOPE_H_

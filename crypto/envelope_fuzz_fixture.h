// What envelope_fuzzer and its seed generator share: the receiving node, and
// envelopes really sealed with its cluster's secrets (and a few sealed otherwise),
// all deterministic, so the fuzzer can tell an authentic envelope from a forgery
// and the seeds written once stay valid.
//
// The fuzz input's first byte says what to do with the rest (kMutate and the
// method bits); see envelope_fuzzer.cc for the rest of the format.
#ifndef OMD_CRYPTO_ENVELOPE_FUZZ_FIXTURE_H_
#define OMD_CRYPTO_ENVELOPE_FUZZ_FIXTURE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "crypto/envelope.h"
#include "proto/omd.pb.h"

namespace omd::crypto::fuzz {

// First byte of an input. With none of these bits the rest is a serialized
// Envelope; with kMutate, a real envelope's index and mutations of its fields;
// with kSealPlaintext, a plaintext that a cluster member seals as it is, in the
// direction kReplyDirection says, for the receiver: what a member could send.
inline constexpr uint8_t kMutate = 0x01;
inline constexpr uint8_t kSealPlaintext = 0x02;
inline constexpr uint8_t kReplyDirection = 0x10;
// ((byte & kMethodBits) >> kMethodShift) % Methods().size(): the method the
// envelope is opened (or sealed) for.
inline constexpr int kMethodShift = 2;
inline constexpr uint8_t kMethodBits = 0x0c;

// After kMutate and an envelope's index: mutations, each an op byte (the mutation
// is (op & 0x7f) % kMutations) and its operands. Past the end of the input, operands read 0.
enum Mutation : uint8_t {
  kFlipCiphertext,    // position(2), xor mask(1)
  kFlipNonce,         // position(1), xor mask(1)
  kFlipSalt,          // position(1), xor mask(1)
  kSetCluster,        // n(1), n bytes; op & 0x80: the name three times over, so
  kSetNodename,       //   names pass the 255-byte cap
  kSetRecipient,      //
  kSetKeyGeneration,  // generation(4)
  kResize,            // field(1): ciphertext, nonce, salt (mod 3); size(2) modulo
                      //   the size + 40; fill byte(1)
  kTakeField,         // field(1) of cluster, nodename, recipient, salt, generation,
                      //   nonce, ciphertext (mod 7); envelope(1): from that real one
  kMutations,
};

// The receiver's clock: every real envelope is sent at this time, or long before.
absl::Time Now();

// node2 of cluster "prod", which has two secrets (a key rotation): it opens.
const EnvelopeOptions& ReceiverOptions();
const EnvelopeCodec& Receiver();

// Methods envelopes are sealed for and opened as.
const std::vector<std::string>& Methods();

struct RealEnvelope {
  std::string name;  // its seed file's name
  Direction direction;
  size_t method;  // index in Methods()
  v1::Envelope envelope;
  // The receiver must open it (in its direction, for its method); the others are
  // authentic but not for it: another cluster, node, secret or generation.
  bool for_receiver;
};

// Sealed once, deterministically (fixed nonces, request ids and send times).
const std::vector<RealEnvelope>& RealEnvelopes();

// An envelope from node1 to the receiver whose ciphertext is `plaintext`, whatever
// it holds, sealed with the current cluster secret as docs/PROTOCOL.md says (3.2 to
// 3.5) rather than through EnvelopeCodec, which only seals Sealed messages.
v1::Envelope SealPlaintext(Direction direction, size_t method, const std::string& plaintext);

}  // namespace omd::crypto::fuzz

#endif  // OMD_CRYPTO_ENVELOPE_FUZZ_FIXTURE_H_

// Fuzzes EnvelopeCodec::Open and CheckSendTime, which authenticate every Envelope
// omd receives from the network (server/gate.cc, client/agent_client.cc).
//
// Input: a flag byte (envelope_fuzz_fixture.h), then
// - by default: a serialized omd.v1.Envelope, whatever it holds;
// - with kMutate: the index of a real sealed envelope (RealEnvelopes()), then
//   mutations of its fields (Mutation in envelope_fuzz_fixture.h);
// - with kSealPlaintext: a plaintext sealed with the cluster secret, what only a
//   member can send, to reach what Open does after the tag is checked.
// The envelope is opened as a request and as a reply, for the method the flag
// byte names, by node2 of cluster "prod". It aborts when:
// - Open fails with anything but UNAUTHENTICATED and a reason;
// - Open succeeds on anything but a real envelope sealed for the receiver, in
//   that direction and for that method (fields as sealed), or on an envelope that
//   sealing what it opened to does not reproduce byte for byte: what opens must be
//   what Seal makes with the cluster secret;
// - the reply to an opened request does not open at its sender;
// - a member's plaintext is opened although it is no Sealed message with a
//   16-byte request id, refused although it is, or opened into other fields;
// - two envelopes with different clear fields, method or direction have the same
//   associated data;
// - CheckSendTime says anything but OK within the clock skew and UNAUTHENTICATED
//   outside it (for the opened send time and one taken from the input).
//
// OMD_FUZZ_VERBOSE=1 in the environment prints each envelope and what Open said.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/numeric/int128.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "crypto/envelope.h"
#include "crypto/envelope_fuzz_fixture.h"
#include "google/protobuf/stubs/logging.h"
#include "proto/omd.pb.h"

namespace omd::crypto::fuzz {
namespace {

#define FUZZ_CHECK(condition)                                                             \
  do {                                                                                    \
    if (!(condition)) {                                                                   \
      fprintf(stderr, "envelope_fuzzer: %s:%d: violated: %s\n", __FILE__, __LINE__, #condition); \
      abort();                                                                            \
    }                                                                                     \
  } while (false)

// Reads operands; past the end of the input everything reads 0.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  uint8_t U8() { return at_ < size_ ? data_[at_++] : 0; }
  // Big-endian; one statement per read, since the operands of | are unsequenced.
  uint16_t U16() {
    const uint16_t high = U8();
    return static_cast<uint16_t>(high << 8 | U8());
  }
  uint32_t U32() {
    const uint32_t high = U16();
    return high << 16 | U16();
  }
  std::string Bytes(size_t n) {
    n = std::min(n, size_ - std::min(at_, size_));
    std::string bytes(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return bytes;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// The bytes fields of an envelope, by number, for flips, resizes and takes.
std::string* BytesField(v1::Envelope& envelope, uint8_t which) {
  switch (which % 3) {
    case 0:
      return envelope.mutable_ciphertext();
    case 1:
      return envelope.mutable_nonce();
    default:
      return envelope.mutable_salt();
  }
}

void Flip(std::string& field, Reader& in, size_t position) {
  const uint8_t mask = in.U8();
  if (field.empty()) return;
  field[position % field.size()] = static_cast<char>(field[position % field.size()] ^ mask);
}

void Mutate(v1::Envelope& envelope, Reader& in) {
  const uint8_t op = in.U8();
  const uint8_t mutation = (op & 0x7f) % kMutations;
  switch (mutation) {
    case kFlipCiphertext:
      Flip(*envelope.mutable_ciphertext(), in, in.U16());
      break;
    case kFlipNonce:
      Flip(*envelope.mutable_nonce(), in, in.U8());
      break;
    case kFlipSalt:
      Flip(*envelope.mutable_salt(), in, in.U8());
      break;
    case kSetCluster:
    case kSetNodename:
    case kSetRecipient: {
      std::string name = in.Bytes(in.U8());
      if (op & 0x80) name = name + name + name;
      if (mutation == kSetCluster) envelope.set_cluster(name);
      if (mutation == kSetNodename) envelope.set_nodename(name);
      if (mutation == kSetRecipient) envelope.set_recipient(name);
      break;
    }
    case kSetKeyGeneration:
      envelope.set_key_generation(in.U32());
      break;
    case kResize: {
      std::string* field = BytesField(envelope, in.U8());
      const size_t size = in.U16() % (field->size() + 40);
      field->resize(size, static_cast<char>(in.U8()));
      break;
    }
    case kTakeField: {
      const uint8_t which = in.U8();
      const v1::Envelope& other = RealEnvelopes()[in.U8() % RealEnvelopes().size()].envelope;
      switch (which % 7) {
        case 0: envelope.set_cluster(other.cluster()); break;
        case 1: envelope.set_nodename(other.nodename()); break;
        case 2: envelope.set_recipient(other.recipient()); break;
        case 3: envelope.set_salt(other.salt()); break;
        case 4: envelope.set_key_generation(other.key_generation()); break;
        case 5: envelope.set_nonce(other.nonce()); break;
        default: envelope.set_ciphertext(other.ciphertext()); break;
      }
      break;
    }
  }
}

// The fields bound by the associated data (all but the nonce and ciphertext).
bool SameClearFields(const v1::Envelope& a, const v1::Envelope& b) {
  return a.cluster() == b.cluster() && a.nodename() == b.nodename() &&
         a.recipient() == b.recipient() && a.salt() == b.salt() &&
         a.key_generation() == b.key_generation();
}

// Every field Open reads (unknown fields, which nothing reads, aside).
bool SameFields(const v1::Envelope& a, const v1::Envelope& b) {
  return SameClearFields(a, b) && a.nonce() == b.nonce() && a.ciphertext() == b.ciphertext();
}

// OK exactly when `sent_at` is within the skew of the receiver's clock, counted
// in exact milliseconds rather than with absl::Duration.
void CheckSendTime(int64_t sent_at_unix_ms) {
  const absl::Status verdict = Receiver().CheckSendTime(absl::FromUnixMillis(sent_at_unix_ms));
  const absl::int128 age =
      absl::int128(absl::ToUnixMillis(Now())) - absl::int128(sent_at_unix_ms);
  const absl::int128 skew = absl::ToInt64Milliseconds(ReceiverOptions().clock_skew);
  const bool within = age <= skew && -age <= skew;
  FUZZ_CHECK(verdict.ok() == within);
  FUZZ_CHECK(verdict.ok() || verdict.code() == absl::StatusCode::kUnauthenticated);
  FUZZ_CHECK(verdict.ok() || !verdict.message().empty());
}

bool Verbose() {
  static const bool verbose = getenv("OMD_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

// What Open says of `envelope`, and why it may say it.
void Open(Direction direction, size_t method, const v1::Envelope& envelope) {
  const std::string& method_name = Methods()[method];
  const absl::StatusOr<OpenedEnvelope> opened = Receiver().Open(direction, method_name, envelope);
  if (Verbose()) {
    fprintf(stderr, "%s %s {%s}: %s\n", direction == Direction::kRequest ? "request" : "reply",
            method_name.c_str(), envelope.ShortDebugString().c_str(),
            opened.ok() ? "opened" : opened.status().ToString().c_str());
  }
  if (!opened.ok()) {
    FUZZ_CHECK(opened.status().code() == absl::StatusCode::kUnauthenticated);
    FUZZ_CHECK(!opened.status().message().empty());
    return;
  }
  bool real = false;
  for (const RealEnvelope& candidate : RealEnvelopes()) {
    real = real || (candidate.for_receiver && candidate.direction == direction &&
                    candidate.method == method && SameFields(candidate.envelope, envelope));
  }
  if (!real) {
    fprintf(stderr, "envelope_fuzzer: opened what no one sealed: %s\n",
            envelope.ShortDebugString().c_str());
    abort();
  }
  FUZZ_CHECK(opened->nodename == envelope.nodename());
  FUZZ_CHECK(opened->salt == envelope.salt());
  FUZZ_CHECK(opened->key_generation == envelope.key_generation());

  // Sealing what was opened, as its sender, must give the very same envelope.
  EnvelopeOptions sender_options = ReceiverOptions();
  sender_options.cluster = envelope.cluster();
  sender_options.nodename = envelope.nodename();
  const EnvelopeCodec sender(sender_options);
  SealInputs inputs;
  inputs.direction = direction;
  inputs.method = method_name;
  inputs.recipient = envelope.recipient();
  inputs.salt = opened->salt;
  inputs.key_generation = opened->key_generation;
  inputs.nonce = envelope.nonce();
  inputs.request_id = opened->request_id;
  inputs.in_reply_to = opened->in_reply_to;
  inputs.sent_at_unix_ms = absl::ToUnixMillis(opened->sent_at);
  inputs.payload = opened->payload;
  const absl::StatusOr<v1::Envelope> resealed = sender.SealWith(inputs);
  FUZZ_CHECK(resealed.ok());
  FUZZ_CHECK(SameFields(*resealed, envelope));

  CheckSendTime(absl::ToUnixMillis(opened->sent_at));

  // The receiver's answer to a request opens at its sender, as the answer.
  if (direction == Direction::kRequest) {
    const absl::StatusOr<v1::Envelope> reply =
        Receiver().SealReply(method_name, *opened, "reply");
    FUZZ_CHECK(reply.ok());
    const absl::StatusOr<OpenedEnvelope> answer =
        sender.Open(Direction::kReply, method_name, *reply);
    FUZZ_CHECK(answer.ok());
    FUZZ_CHECK(answer->in_reply_to == opened->request_id);
    FUZZ_CHECK(answer->payload == "reply");
  }
}

void OpenBothWays(size_t method, const v1::Envelope& envelope) {
  Open(Direction::kRequest, method, envelope);
  Open(Direction::kReply, method, envelope);
}

// A member sealed `plaintext`: Open must take what parses as a Sealed message
// with a 16-byte request id, as it is, and refuse the rest (and the envelope in
// the other direction).
void OpenSealedPlaintext(Direction direction, size_t method, const std::string& plaintext) {
  const v1::Envelope envelope = SealPlaintext(direction, method, plaintext);
  const absl::StatusOr<OpenedEnvelope> opened =
      Receiver().Open(direction, Methods()[method], envelope);
  if (Verbose()) {
    fprintf(stderr, "member's plaintext, %s %s: %s\n",
            direction == Direction::kRequest ? "request" : "reply", Methods()[method].c_str(),
            opened.ok() ? "opened" : opened.status().ToString().c_str());
  }
  v1::Sealed sealed;
  const bool valid = sealed.ParseFromString(plaintext) && sealed.request_id().size() == 16;
  FUZZ_CHECK(opened.ok() == valid);
  if (!opened.ok()) {
    FUZZ_CHECK(opened.status().code() == absl::StatusCode::kUnauthenticated);
  } else {
    FUZZ_CHECK(opened->request_id == sealed.request_id());
    FUZZ_CHECK(opened->in_reply_to == sealed.in_reply_to());
    FUZZ_CHECK(opened->payload == sealed.payload());
    FUZZ_CHECK(opened->sent_at == absl::FromUnixMillis(sealed.sent_at_unix_ms()));
    CheckSendTime(sealed.sent_at_unix_ms());
  }
  const Direction other = direction == Direction::kRequest ? Direction::kReply : Direction::kRequest;
  FUZZ_CHECK(Receiver().Open(other, Methods()[method], envelope).status().code() ==
             absl::StatusCode::kUnauthenticated);
}

void FuzzOne(const uint8_t* data, size_t size) {
  // Parsing logs an error for every string field that is not UTF-8.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  if (size == 0) return;
  const uint8_t flags = data[0];
  const size_t method = ((flags & kMethodBits) >> kMethodShift) % Methods().size();
  if (size >= 9) {
    // Any send time at all, e.g. one so far off that the arithmetic saturates.
    uint64_t sent_at = 0;
    for (size_t i = size - 8; i < size; ++i) sent_at = sent_at << 8 | data[i];
    CheckSendTime(static_cast<int64_t>(sent_at));
  }
  if (flags & kSealPlaintext) {
    OpenSealedPlaintext(flags & kReplyDirection ? Direction::kReply : Direction::kRequest, method,
                        std::string(reinterpret_cast<const char*>(data + 1), size - 1));
    return;
  }
  if (!(flags & kMutate)) {
    v1::Envelope envelope;
    if (!envelope.ParseFromArray(data + 1, static_cast<int>(size - 1))) return;
    OpenBothWays(method, envelope);
    return;
  }
  Reader in(data + 1, size - 1);
  const RealEnvelope& base = RealEnvelopes()[in.U8() % RealEnvelopes().size()];
  v1::Envelope envelope = base.envelope;
  while (!in.empty()) Mutate(envelope, in);
  // The associated data tells every changed clear field, method and direction apart.
  for (Direction direction : {Direction::kRequest, Direction::kReply}) {
    const bool same_aad =
        EnvelopeCodec::AssociatedData(direction, Methods()[method], envelope) ==
        EnvelopeCodec::AssociatedData(base.direction, Methods()[base.method], base.envelope);
    FUZZ_CHECK(same_aad == (SameClearFields(envelope, base.envelope) &&
                            direction == base.direction && method == base.method));
  }
  OpenBothWays(method, envelope);
}

}  // namespace
}  // namespace omd::crypto::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  omd::crypto::fuzz::FuzzOne(data, size);
  return 0;
}

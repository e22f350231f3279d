// Writes the seed corpus of envelope_fuzzer: each real envelope of the fixture as
// the network would carry it, and a few mutations of them.
//
//   bazel run //crypto:envelope_corpus -- $PWD/crypto/testdata/envelope_corpus
//
// The fixture seals deterministically, so running this again writes the same
// files. Regression inputs live in the same directory under names of their own.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "crypto/envelope_fuzz_fixture.h"
#include "proto/omd.pb.h"

namespace omd::crypto::fuzz {
namespace {

size_t Index(const std::string& name) {
  for (size_t i = 0; i < RealEnvelopes().size(); ++i) {
    if (RealEnvelopes()[i].name == name) return i;
  }
  std::abort();
}

// A kMutate input on the real envelope `name`, opened for its own method.
std::string Mutated(const std::string& name, const std::string& mutations) {
  const RealEnvelope& real = RealEnvelopes()[Index(name)];
  std::string input;
  input.push_back(static_cast<char>(kMutate | real.method << kMethodShift));
  input.push_back(static_cast<char>(Index(name)));
  return input + mutations;
}

std::string Op(Mutation mutation, std::string operands) {
  return static_cast<char>(mutation) + std::move(operands);
}

std::vector<std::pair<std::string, std::string>> Seeds() {
  std::vector<std::pair<std::string, std::string>> seeds;
  for (const RealEnvelope& real : RealEnvelopes()) {
    seeds.emplace_back(real.name, static_cast<char>(real.method << kMethodShift) +
                                      real.envelope.SerializeAsString());
  }
  seeds.emplace_back("mutate_nothing", Mutated("reply_for_receiver", ""));
  seeds.emplace_back("mutate_ciphertext",
                     Mutated("request_for_receiver", Op(kFlipCiphertext, std::string("\x00\x05\x01", 3))));
  seeds.emplace_back("mutate_salt", Mutated("request_for_any_node", Op(kFlipSalt, "\x03\x80")));
  seeds.emplace_back("mutate_nodename", Mutated("request_for_receiver", Op(kSetNodename, "\x05node9")));
  // 3 x 86 bytes: over the 255-byte cap on names.
  seeds.emplace_back("mutate_long_nodename",
                     Mutated("request_for_receiver",
                             static_cast<char>(kSetNodename | 0x80) + std::string("\x56") +
                                 std::string(0x56, 'n')));
  seeds.emplace_back("mutate_recipient", Mutated("reply_for_receiver", Op(kSetRecipient, std::string(1, '\0'))));
  seeds.emplace_back("mutate_generation",
                     Mutated("request_previous_generation",
                             Op(kSetKeyGeneration, std::string("\x00\x00\x00\x02", 4))));
  seeds.emplace_back("mutate_short_ciphertext",
                     Mutated("request_for_receiver", Op(kResize, std::string("\x00\x00\x0f\x00", 4))));
  seeds.emplace_back("mutate_short_nonce",
                     Mutated("request_for_receiver", Op(kResize, std::string("\x01\x00\x05\x00", 4))));
  seeds.emplace_back("mutate_long_salt",
                     Mutated("request_for_receiver", Op(kResize, std::string("\x02\x00\x11\x00", 4))));
  seeds.emplace_back("mutate_take_nonce", Mutated("request_for_receiver", Op(kTakeField, "\x05\x01")));
  // What a member may seal: a Sealed reply, and a message that is no Sealed.
  v1::Sealed sealed;
  sealed.set_sent_at_unix_ms(absl::ToUnixMillis(Now()));
  sealed.set_request_id(std::string(16, 'r'));
  sealed.set_in_reply_to(std::string(16, 'q'));
  sealed.set_payload("payload");
  seeds.emplace_back("member_plaintext",
                     static_cast<char>(kSealPlaintext | kReplyDirection | 1 << kMethodShift) +
                         sealed.SerializeAsString());
  seeds.emplace_back("member_plaintext_not_sealed",
                     static_cast<char>(kSealPlaintext) + std::string("\x12\x05short\xff", 8));
  return seeds;
}

}  // namespace
}  // namespace omd::crypto::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
    return 2;
  }
  for (const auto& [name, input] : omd::crypto::fuzz::Seeds()) {
    const std::string path = std::string(argv[1]) + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(input.data(), static_cast<std::streamsize>(input.size()));
    if (!out.flush()) {
      fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
    printf("%s: %zu bytes\n", path.c_str(), input.size());
  }
  return 0;
}

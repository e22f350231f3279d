// Micro-benchmarks of the envelope: what a request costs the sender and the
// receiver, with the key cached (a client keeps its salt per connection) and not.
#include "benchmark/benchmark.h"
#include "crypto/aead.h"
#include "crypto/envelope.h"

namespace omd::crypto {
namespace {

constexpr char kMethod[] = "/omd.v1.Agent/BlacklistStatus";

EnvelopeOptions Options(const char* nodename) {
  EnvelopeOptions options;
  options.cluster = "bench";
  options.nodename = nodename;
  options.secrets = {{1, "benchmark-secret-0123456789abcdef"}};
  return options;
}

void BM_Seal(benchmark::State& state) {
  EnvelopeCodec codec(Options("node1"));
  const std::string salt = EnvelopeCodec::NewSalt();
  const std::string payload(state.range(0), 'x');
  for (auto _ : state) {
    benchmark::DoNotOptimize(codec.Seal(Direction::kRequest, kMethod, "node2", salt, payload));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Seal)->Arg(0)->Arg(256)->Arg(16 << 10);

void BM_Open(benchmark::State& state) {
  EnvelopeCodec sender(Options("node1"));
  EnvelopeCodec receiver(Options("node2"));
  const v1::Envelope envelope =
      sender.Seal(Direction::kRequest, kMethod, "node2", EnvelopeCodec::NewSalt(),
                  std::string(state.range(0), 'x'))
          .value();
  for (auto _ : state) {
    benchmark::DoNotOptimize(receiver.Open(Direction::kRequest, kMethod, envelope));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Open)->Arg(0)->Arg(256)->Arg(16 << 10);

// A fresh salt every time: the key derivation the cache saves.
void BM_DeriveKey(benchmark::State& state) {
  const std::string salt = EnvelopeCodec::NewSalt();
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        DeriveKey("benchmark-secret-0123456789abcdef", salt, "omd.v1.envelope.key"));
  }
}
BENCHMARK(BM_DeriveKey);

// The CSPRNG draw each seal makes (nonce and request id).
void BM_RandomBytes(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(RandomBytes(kNonceBytes + kRequestIdBytes));
}
BENCHMARK(BM_RandomBytes);

}  // namespace
}  // namespace omd::crypto

BENCHMARK_MAIN();

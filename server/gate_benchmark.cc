// What the gate costs per message, by outcome: an admitted request (admission, the
// handler's parse and the sealed reply), and each kind of refusal. The transport
// (gRPC's HTTP/2 and call handling) is the same for all and is not included:
// tools/listener_bench and tools/attack measure the whole daemon.
//
//   bazel build -c opt //server:gate_benchmark && bazel-bin/server/gate_benchmark
#include <grpcpp/support/byte_buffer.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "crypto/envelope.h"
#include "proto/omd.pb.h"
#include "net/connection_guard.h"
#include "server/address_book.h"
#include "server/blacklist.h"
#include "server/gate.h"
#include "server/replay_guard.h"

namespace omd::server {
namespace {

constexpr char kSecret[] = "benchmark-secret-0123456789abcdef";
constexpr char kMethod[] = "/omd.v1.Agent/BlacklistStatus";
constexpr int kValidRequests = 200'000;

crypto::EnvelopeOptions Identity(const std::string& nodename, const std::string& secret) {
  crypto::EnvelopeOptions options;
  options.cluster = "bench";
  options.nodename = nodename;
  options.secrets = {{1, secret}};
  return options;
}

grpc::ByteBuffer Bytes(const std::string& serialized) {
  grpc::Slice slice(serialized);
  return grpc::ByteBuffer(&slice, 1);
}

// Connections as the guard records them: "fd:1" is node2's (127.0.0.2, a
// member's source), "fd:<2+i>" come from 2^16 outsiders' sources 10.0.x.y.
constexpr char kNode2Peer[] = "fd:1";
constexpr int kOutsiders = 1 << 16;

std::string OutsiderPeer(uint32_t i) { return absl::StrCat("fd:", 2 + i % kOutsiders); }

// node1's gate, with node2's source (127.0.0.2) a configured member's.
struct Node1 {
  Node1() : blacklist(Blacklist::Options()), book(AddressBook::Options(), &blacklist) {
    directory.Add(1, {1, *net::IpAddress::Parse("127.0.0.2"), net::PeerClass::kMember});
    for (int i = 0; i < kOutsiders; ++i) {
      const std::string address = absl::StrCat("10.0.", i >> 8, ".", i & 255);
      directory.Add(2 + i, {static_cast<uint64_t>(2 + i), *net::IpAddress::Parse(address),
                            net::PeerClass::kOther});
    }
    book.SetLocal({*net::IpAddress::Parse("127.0.0.1")});
    book.SetConfiguredMembers({*net::IpAddress::Parse("127.0.0.2")});
    ReplayGuard::Options replay;
    replay.capacity = size_t{1} << 22;
    replay_guard = ReplayGuard::Create(replay).value();
    auto view = std::make_shared<ClusterView>();
    view->nodes = {"node1", "node2"};
    view->codec = std::make_shared<crypto::EnvelopeCodec>(Identity("node1", kSecret));
    Gate::Options options;
    options.refusals.write = [](absl::string_view) {};  // measure counting, not stderr
    gate =
        std::make_unique<Gate>(options, view, &blacklist, replay_guard.get(), &book, &directory);
  }

  net::PeerDirectory directory;
  Blacklist blacklist;
  AddressBook book;
  std::unique_ptr<ReplayGuard> replay_guard;
  std::unique_ptr<Gate> gate;
};

std::string Sealed(const crypto::EnvelopeCodec& codec, const std::string& salt) {
  return codec.Seal(crypto::Direction::kRequest, kMethod, "node1", salt, "")
      .value()
      .SerializeAsString();
}

// Admission, the typed request's parse, the handler (empty here) and the reply's
// seal: everything the gate and the handler path do for a request it serves.
void BM_Admitted(benchmark::State& state) {
  Node1 node1;
  crypto::EnvelopeCodec node2(Identity("node2", kSecret));
  const std::string salt = crypto::EnvelopeCodec::NewSalt();
  std::vector<grpc::ByteBuffer> requests;
  requests.reserve(kValidRequests);
  for (int i = 0; i < kValidRequests; ++i) requests.push_back(Bytes(Sealed(node2, salt)));
  size_t next = 0;
  for (auto _ : state) {
    absl::StatusOr<AdmittedRequest> admitted = node1.gate->Admit(
        kMethod, MethodAccess(), kNode2Peer, requests[next++]);
    if (!admitted.ok()) state.SkipWithError(admitted.status().ToString().c_str());
    v1::BlacklistStatusRequest request;
    request.ParseFromString(admitted->envelope.payload);
    benchmark::DoNotOptimize(
        node1.gate->SealReply(*admitted, kMethod, v1::BlacklistStatusReply().SerializeAsString()));
  }
}
BENCHMARK(BM_Admitted)->Iterations(kValidRequests);

// A forged tag, counted (a fresh source every 4 messages, so the sender never
// reaches the threshold and is decrypted every time).
void BM_RefusedForgery(benchmark::State& state) {
  Node1 node1;
  crypto::EnvelopeCodec forger(Identity("node2", "not-the-cluster-secret-at-all"));
  const grpc::ByteBuffer forged = Bytes(Sealed(forger, crypto::EnvelopeCodec::NewSalt()));
  uint32_t message = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        node1.gate->Admit(kMethod, MethodAccess(), OutsiderPeer(message++ / 4), forged));
  }
}
BENCHMARK(BM_RefusedForgery);

// A blacklisted sender: refused before any key derivation or decryption.
void BM_RefusedBlacklisted(benchmark::State& state) {
  Node1 node1;
  crypto::EnvelopeCodec forger(Identity("node2", "not-the-cluster-secret-at-all"));
  const grpc::ByteBuffer forged = Bytes(Sealed(forger, crypto::EnvelopeCodec::NewSalt()));
  for (int i = 0; i < 5; ++i) {
    node1.gate->Admit(kMethod, MethodAccess(), kNode2Peer, forged).IgnoreError();
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        node1.gate->Admit(kMethod, MethodAccess(), kNode2Peer, forged));
  }
}
BENCHMARK(BM_RefusedBlacklisted);

// A non-member name: refused before decryption, counted per source.
void BM_RefusedNonMember(benchmark::State& state) {
  Node1 node1;
  crypto::EnvelopeCodec stranger(Identity("stranger", kSecret));
  const grpc::ByteBuffer request = Bytes(Sealed(stranger, crypto::EnvelopeCodec::NewSalt()));
  uint32_t message = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        node1.gate->Admit(kMethod, MethodAccess(), OutsiderPeer(message++ / 4), request));
  }
}
BENCHMARK(BM_RefusedNonMember);

// An authentic envelope seen before: decrypted, refused, not counted.
void BM_RefusedReplay(benchmark::State& state) {
  Node1 node1;
  crypto::EnvelopeCodec node2(Identity("node2", kSecret));
  const grpc::ByteBuffer request = Bytes(Sealed(node2, crypto::EnvelopeCodec::NewSalt()));
  node1.gate->Admit(kMethod, MethodAccess(), kNode2Peer, request).IgnoreError();
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        node1.gate->Admit(kMethod, MethodAccess(), kNode2Peer, request));
  }
}
BENCHMARK(BM_RefusedReplay);

// Bytes that are no Envelope, from a source already blacklisted for them.
void BM_RefusedUnparseable(benchmark::State& state) {
  Node1 node1;
  const grpc::ByteBuffer garbage = Bytes("\x0a\xff\xff\xff garbage");
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        node1.gate->Admit(kMethod, MethodAccess(), OutsiderPeer(0), garbage));
  }
}
BENCHMARK(BM_RefusedUnparseable);

}  // namespace
}  // namespace omd::server

BENCHMARK_MAIN();

// A request's bytes are parsed within their own size: a field claiming 64 MB in an
// 11-byte request must not make the gate allocate anything near that (protobuf's
// stream parser reserves up to 50 MB for a claimed string length).
//
// A test binary of its own: it replaces the global operator new to record the
// largest single allocation.
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>

#include "gtest/gtest.h"
#include "server/address_book.h"
#include "server/blacklist.h"
#include "server/gate.h"
#include "server/replay_guard.h"

namespace {
std::atomic<size_t> largest_allocation{0};
std::atomic<bool> recording{false};
}  // namespace

void* operator new(size_t size) {
  if (recording.load(std::memory_order_relaxed)) {
    size_t seen = largest_allocation.load(std::memory_order_relaxed);
    while (size > seen && !largest_allocation.compare_exchange_weak(seen, size)) {
    }
  }
  if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
  throw std::bad_alloc();
}
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, size_t) noexcept { std::free(memory); }

namespace omd::server {
namespace {

TEST(GateAllocationTest, AClaimedLengthIsNotAnAllocation) {
  Blacklist blacklist({});
  AddressBook book({}, &blacklist);
  std::unique_ptr<ReplayGuard> replay_guard = ReplayGuard::Create({}).value();
  auto view = std::make_shared<ClusterView>();
  view->nodes = {"node1"};
  crypto::EnvelopeOptions identity;
  identity.cluster = "test";
  identity.nodename = "node1";
  identity.secrets = {{1, "a-secret-of-sixteen-bytes-or-more"}};
  view->codec = std::make_shared<crypto::EnvelopeCodec>(identity);
  Gate::Options options;
  options.refusals.write = [](absl::string_view) {};
  Gate gate(options, view, &blacklist, replay_guard.get(), &book, nullptr);

  // Field 1 (cluster), length-delimited, claiming 0x4000000 bytes (64 MiB).
  const std::string claim = "\x0a\x80\x80\x80\x20short";
  grpc::Slice slice(claim);
  const grpc::ByteBuffer request(&slice, 1);
  recording = true;
  absl::StatusOr<AdmittedRequest> admitted =
      gate.Admit("/omd.v1.Agent/BlacklistStatus", MethodAccess(), "ipv4:10.0.0.1:1", request);
  recording = false;
  EXPECT_EQ(admitted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(largest_allocation.load(), size_t{1} << 20);
}

}  // namespace
}  // namespace omd::server

// The listener on a real port: it serves gRPC through the guard, rebuilds a gRPC
// server its probe finds unresponsive without closing the port, sheds outsiders
// over its memory budget, and frees the port at shutdown.
#include "server/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/health.grpc.pb.h"

namespace omd::server {
namespace {

// The local host is 127.0.0.1; every other source is an outsider.
class LoopbackPolicy : public net::ConnectionPolicy {
 public:
  net::PeerVerdict Classify(const net::IpAddress& address) override {
    net::PeerVerdict verdict;
    verdict.peer_class = address == *net::IpAddress::Parse("127.0.0.1")
                             ? net::PeerClass::kLocal
                             : net::PeerClass::kOther;
    return verdict;
  }
};

// No services of its own: gRPC's health service, which every server has, is enough.
absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> NoServices() {
  return std::vector<std::unique_ptr<grpc::Service>>();
}

bool Serving(const std::string& target) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  return stub->Check(&context, request, &response).ok() &&
         response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

// Whether a connection from `source` is closed by the listener within a second.
bool RefusedFrom(const char* source, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from));
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    close(fd);
    return true;
  }
  pollfd poll_fd{fd, POLLIN, 0};
  char byte;
  const bool closed = poll(&poll_fd, 1, 1000) == 1 && recv(fd, &byte, 1, 0) == 0;
  close(fd);
  return closed;
}

class ListenerTest : public ::testing::Test {
 protected:
  void Start(Listener::Options options) {
    options.address = "127.0.0.1";
    options.port = 0;
    absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Bind(std::move(options));
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = *std::move(listener);
    ASSERT_TRUE(listener_->Start(NoServices, &policy_).ok());
    port_ = std::stoi(listener_->address().substr(listener_->address().rfind(':') + 1));
  }

  LoopbackPolicy policy_;
  std::unique_ptr<Listener> listener_;
  int port_ = 0;
};

TEST_F(ListenerTest, ServesThroughTheGuardAndItsProbeFindsItHealthy) {
  Listener::Options options;
  options.probe_interval = absl::Milliseconds(100);
  Start(options);
  EXPECT_TRUE(Serving(listener_->address()));
  absl::SleepFor(absl::Seconds(1));  // about ten real probes
  EXPECT_EQ(listener_->rebuilds(), 0);
  EXPECT_GE(listener_->connection_stats().accepted, 2u);  // ours and the probes'
}

// A gRPC server that stops answering is replaced; the port never closes, and
// clients are served again by the new server.
TEST_F(ListenerTest, AnUnresponsiveServerIsRebuiltBehindTheSamePort) {
  auto failing = std::make_shared<std::atomic<bool>>(false);
  Listener::Options options;
  options.probe_interval = absl::Milliseconds(100);
  options.probe_failures = 2;
  options.probe = [failing](const std::string&, absl::Duration) { return !failing->load(); };
  Start(options);
  auto old_channel =
      grpc::CreateChannel(listener_->address(), grpc::InsecureChannelCredentials());
  ASSERT_TRUE(old_channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(5))));
  failing->store(true);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (listener_->rebuilds() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  failing->store(false);
  EXPECT_GE(listener_->rebuilds(), 1);
  EXPECT_TRUE(Serving(listener_->address()));
  // The channel opened before the rebuild reconnects to the new server.
  auto stub = grpc::health::v1::Health::NewStub(old_channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  context.set_wait_for_ready(true);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_TRUE(stub->Check(&context, request, &response).ok());
}

// Over 90% of the memory budget, outsiders are refused at accept; the local host
// is still served.
TEST_F(ListenerTest, OverItsMemoryBudgetItShedsOutsiders) {
  Listener::Options options;
  options.memory_budget_bytes = 1 << 20;  // far below any process's resident size
  Start(options);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!listener_->shedding_outsiders() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(listener_->shedding_outsiders());
  EXPECT_TRUE(RefusedFrom("127.0.0.5", port_));
  EXPECT_FALSE(RefusedFrom("127.0.0.1", port_));
  EXPECT_TRUE(Serving(listener_->address()));
}

TEST_F(ListenerTest, ShutdownFreesThePort) {
  Start(Listener::Options());
  ASSERT_TRUE(Serving(listener_->address()));
  listener_->Shutdown();
  EXPECT_FALSE(Serving(listener_->address()));
  Listener::Options again;
  again.address = "127.0.0.1";
  again.port = port_;
  EXPECT_TRUE(Listener::Bind(again).ok());
}

TEST(ListenerBindTest, AnAddressInUseIsUnavailable) {
  Listener::Options options;
  options.address = "127.0.0.1";
  options.port = 0;
  absl::StatusOr<std::unique_ptr<Listener>> first = Listener::Bind(options);
  ASSERT_TRUE(first.ok());
  options.port = std::stoi((*first)->address().substr((*first)->address().rfind(':') + 1));
  absl::StatusOr<std::unique_ptr<Listener>> second = Listener::Bind(options);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("cannot listen on 127.0.0.1:"), std::string::npos)
      << second.status();
  options.address = "192.0.2.1";  // TEST-NET-1: not this host's
  EXPECT_EQ(Listener::Bind(options).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace omd::server

// The listener on a real port: it serves gRPC through the guard, rebuilds a gRPC
// server its probe finds unresponsive without closing the port, sheds outsiders
// over its memory budget, moves, closes and reopens its TCP port while
// connections and the control channel go on, and frees the port at shutdown.
#include "server/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "net/listen_socket.h"
#include "net/unix_socket.h"
#include "sync/mutex.h"

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

// Over a connection of its own: not one that another channel of the test holds.
bool Serving(const std::string& target) {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments));
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

int PortOf(const std::string& address) {
  return std::stoi(address.substr(address.rfind(':') + 1));
}

// A port nobody listens on now.
int FreePort() {
  absl::StatusOr<net::ListenSocket> socket = net::Listen("127.0.0.1", 0);
  close(socket->fd);
  return socket->port;
}

// The listener thread, as the daemon's supervisor runs it.
class ListenerThread {
 public:
  explicit ListenerThread(Listener* listener)
      : thread_([this, listener] {
          result_ = listener->Run([this](absl::Duration timeout) {
            sync::MutexLock lock(&mutex_);
            return mutex_.AwaitWithTimeout(
                [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return stopping_; }, timeout);
          });
        }) {}
  // Asks it to stop and waits; what Run returned.
  absl::Status Stop() {
    {
      sync::MutexLock lock(&mutex_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
    return result_;
  }
  ~ListenerThread() { (void)Stop(); }

 private:
  sync::Mutex mutex_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  absl::Status result_;
  std::thread thread_;
};

class ListenerTest : public ::testing::Test {
 protected:
  void Start(Listener::Options options) {
    options.address = "127.0.0.1";
    options.port = 0;
    absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Bind(std::move(options));
    ASSERT_TRUE(listener.ok()) << listener.status();
    listener_ = *std::move(listener);
    ASSERT_TRUE(listener_->Start(NoServices, &policy_).ok());
    port_ = PortOf(listener_->address());
    thread_ = std::make_unique<ListenerThread>(listener_.get());
  }

  void TearDown() override { thread_.reset(); }

  LoopbackPolicy policy_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<ListenerThread> thread_;
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

// The port moves; a connection made before goes on; a failed move leaves the
// port where it was.
TEST_F(ListenerTest, TheTcpPortMovesAndConnectionsGoOn) {
  Start(Listener::Options());
  const std::string before = listener_->address();
  auto old_channel = grpc::CreateChannel(before, grpc::InsecureChannelCredentials());
  ASSERT_TRUE(Serving(before));
  ASSERT_TRUE(old_channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(5))));

  const int moved_to = FreePort();
  ASSERT_TRUE(listener_->Accept("127.0.0.1", moved_to).ok());
  EXPECT_EQ(listener_->address(), absl::StrCat("127.0.0.1:", moved_to));
  EXPECT_TRUE(Serving(listener_->address()));
  EXPECT_FALSE(Serving(before)) << "the old port is closed";
  auto stub = grpc::health::v1::Health::NewStub(old_channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_TRUE(stub->Check(&context, request, &response).ok())
      << "the connection accepted on the old port still serves";

  absl::StatusOr<net::ListenSocket> taken = net::Listen("127.0.0.1", 0);
  ASSERT_TRUE(taken.ok());
  const absl::Status refused = listener_->Accept("127.0.0.1", taken->port);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(refused.message(), "cannot listen on")) << refused;
  EXPECT_EQ(listener_->address(), absl::StrCat("127.0.0.1:", moved_to));
  EXPECT_TRUE(Serving(listener_->address()));
  close(taken->fd);
}

// Stopped, the listener thread closes the TCP port and its connections; the
// control channel goes on; run again, it listens where it was told meanwhile.
TEST(ListenerControlTest, StoppingClosesTcpNotTheControlChannel) {
  char dir_pattern[] = "/tmp/omd-listenerXXXXXX";
  const std::string dir = mkdtemp(dir_pattern);
  Listener::Options options;
  options.address = "127.0.0.1";
  options.port = 0;
  options.control_socket_path = dir + "/omd.sock";
  options.control_uids = {static_cast<uint32_t>(geteuid())};
  options.stop_grace = absl::Milliseconds(100);
  std::vector<std::string> addresses;
  sync::Mutex addresses_mutex;
  options.on_address_change = [&](const std::string& address) {
    sync::MutexLock lock(&addresses_mutex);
    addresses.push_back(address);
  };
  LoopbackPolicy policy;
  absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Bind(std::move(options));
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_TRUE((*listener)->Start(NoServices, &policy).ok());
  auto thread = std::make_unique<ListenerThread>(listener->get());
  const std::string tcp = (*listener)->address();
  const std::string control = *net::UnixTarget(dir + "/omd.sock");
  ASSERT_TRUE(Serving(tcp));
  ASSERT_TRUE(Serving(control));
  auto tcp_channel = grpc::CreateChannel(tcp, grpc::InsecureChannelCredentials());
  ASSERT_TRUE(tcp_channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(5))));

  EXPECT_TRUE(thread->Stop().ok());
  EXPECT_EQ((*listener)->address(), "");
  EXPECT_FALSE(Serving(tcp));
  EXPECT_TRUE(Serving(control));
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (tcp_channel->GetState(false) == GRPC_CHANNEL_READY && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_NE(tcp_channel->GetState(false), GRPC_CHANNEL_READY)
      << "connections accepted before the stop are closed";

  const int next = FreePort();
  ASSERT_TRUE((*listener)->Accept("127.0.0.1", next).ok());  // recorded only
  EXPECT_EQ((*listener)->address(), "");
  thread = std::make_unique<ListenerThread>(listener->get());
  const absl::Time bound_by = absl::Now() + absl::Seconds(5);
  while ((*listener)->address().empty() && absl::Now() < bound_by) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ((*listener)->address(), absl::StrCat("127.0.0.1:", next));
  EXPECT_TRUE(Serving((*listener)->address()));
  thread.reset();
  listener->reset();
  sync::MutexLock lock(&addresses_mutex);
  EXPECT_EQ(addresses, (std::vector<std::string>{tcp, "", absl::StrCat("127.0.0.1:", next), ""}));
  unlink((dir + "/omd.sock").c_str());
  rmdir(dir.c_str());
}

// A listener thread that cannot bind returns the error, for its supervisor.
TEST_F(ListenerTest, RunReturnsTheBindError) {
  Start(Listener::Options());
  ASSERT_TRUE(thread_->Stop().ok());
  ASSERT_TRUE(listener_->Accept("127.0.0.1", port_).ok());  // the same port next time
  absl::StatusOr<net::ListenSocket> taken = net::Listen("127.0.0.1", port_);
  ASSERT_TRUE(taken.ok());
  ListenerThread rerun(listener_.get());
  const absl::Status failed = rerun.Stop();
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable) << failed;
  close(taken->fd);
}

TEST_F(ListenerTest, ShutdownFreesThePort) {
  Start(Listener::Options());
  const std::string address = listener_->address();
  ASSERT_TRUE(Serving(address));
  thread_.reset();
  listener_->Shutdown();
  EXPECT_FALSE(Serving(address));
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
  options.port = PortOf((*first)->address());
  absl::StatusOr<std::unique_ptr<Listener>> second = Listener::Bind(options);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("cannot listen on 127.0.0.1:"), std::string::npos)
      << second.status();
  options.address = "192.0.2.1";  // TEST-NET-1: not this host's
  EXPECT_EQ(Listener::Bind(options).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace omd::server

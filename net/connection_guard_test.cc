// The guard on real sockets: connections from chosen 127.x sources, a policy that
// the test scripts, and a sink that records what the guard hands over.
#include "net/connection_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "net/listen_socket.h"
#include "net/unix_socket.h"
#include "sync/mutex.h"

namespace omd::net {
namespace {

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, size_t length) {
  std::string frame = {static_cast<char>(length >> 16), static_cast<char>(length >> 8),
                       static_cast<char>(length),       static_cast<char>(type),
                       static_cast<char>(flags),        static_cast<char>(stream >> 24),
                       static_cast<char>(stream >> 16), static_cast<char>(stream >> 8),
                       static_cast<char>(stream)};
  frame.append(length, 'x');
  return frame;
}

const std::string& Opening() {
  static const std::string* const opening =
      new std::string(absl::StrCat(kPreface, Frame(4, 0, 0, 0)));
  return *opening;
}

IpAddress Ip(const char* text) { return IpAddress::Parse(text).value(); }

class ScriptedPolicy : public ConnectionPolicy {
 public:
  PeerVerdict Classify(const IpAddress& address) override {
    sync::MutexLock lock(&mutex_);
    PeerVerdict verdict;
    if (local_.contains(address)) verdict.peer_class = PeerClass::kLocal;
    verdict.refused = refused_.contains(address);
    return verdict;
  }
  void SetLocal(const IpAddress& address) {
    sync::MutexLock lock(&mutex_);
    local_.insert(address);
  }
  void Refuse(const IpAddress& address) {
    sync::MutexLock lock(&mutex_);
    refused_.insert(address);
  }

 private:
  sync::Mutex mutex_;
  absl::flat_hash_set<IpAddress> local_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_set<IpAddress> refused_ ABSL_GUARDED_BY(mutex_);
};

class RecordingSink : public ConnectionSink {
 public:
  ~RecordingSink() override {
    for (int fd : fds_) close(fd);
  }
  void Serve(int fd) override {
    sync::MutexLock lock(&mutex_);
    fds_.push_back(fd);
  }
  // The n-th connection handed over, waiting for it.
  int WaitFor(size_t n) {
    sync::MutexLock lock(&mutex_);
    mutex_.AwaitWithTimeout(
        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return fds_.size() > n; },
        absl::Seconds(10));
    return fds_.size() > n ? fds_[n] : -1;
  }
  size_t count() {
    sync::MutexLock lock(&mutex_);
    return fds_.size();
  }

 private:
  sync::Mutex mutex_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mutex_);
};

// Reads what arrives on `fd` within `timeout`; stops at EOF.
struct ReadResult {
  std::string bytes;
  bool eof = false;
};
ReadResult ReadFor(int fd, absl::Duration timeout, size_t want = SIZE_MAX) {
  ReadResult result;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline && result.bytes.size() < want) {
    pollfd poll_fd{fd, POLLIN, 0};
    if (poll(&poll_fd, 1, 50) <= 0) continue;
    char buffer[65536];
    const ssize_t count = recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (count == 0 || (count < 0 && errno != EAGAIN)) {
      result.eof = true;
      break;
    }
    if (count > 0) result.bytes.append(buffer, static_cast<size_t>(count));
  }
  return result;
}

void SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t count = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (count <= 0) return;
    sent += static_cast<size_t>(count);
  }
}

class ConnectionGuardTest : public ::testing::Test {
 protected:
  void Start(ConnectionGuard::Options options = ConnectionGuard::Options()) {
    absl::StatusOr<ListenSocket> socket = Listen("127.0.0.1", 0);
    ASSERT_TRUE(socket.ok()) << socket.status();
    port_ = socket->port;
    absl::StatusOr<std::unique_ptr<ConnectionGuard>> guard =
        ConnectionGuard::Start(socket->fd, options, &policy_, &sink_, &directory_);
    ASSERT_TRUE(guard.ok()) << guard.status();
    guard_ = *std::move(guard);
  }

  // A client connection from `source`.
  int Connect(const char* source) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    inet_pton(AF_INET, source, &from.sin_addr);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)), 0);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
    clients_.push_back(fd);
    return fd;
  }

  // Whether the guard closed `fd` (EOF within 2 s), or left it open (for 300 ms).
  static bool ClosedByGuard(int fd) { return ReadFor(fd, absl::Seconds(2)).eof; }
  static bool StaysOpen(int fd) { return !ReadFor(fd, absl::Milliseconds(300)).eof; }

  void TearDown() override {
    if (guard_ != nullptr) guard_->Stop();
    for (int fd : clients_) close(fd);
  }

  ScriptedPolicy policy_;
  RecordingSink sink_;
  PeerDirectory directory_;
  std::unique_ptr<ConnectionGuard> guard_;
  int port_ = 0;
  std::vector<int> clients_;
};

TEST_F(ConnectionGuardTest, RelaysBothWaysAndNamesTheSource) {
  Start();
  const int client = Connect("127.0.0.9");
  const std::string request = absl::StrCat(Opening(), Frame(1, 4, 1, 30), Frame(0, 1, 1, 500));
  SendAll(client, request);
  const int sink = sink_.WaitFor(0);
  ASSERT_GE(sink, 0);
  EXPECT_EQ(ReadFor(sink, absl::Seconds(5), request.size()).bytes, request);
  const std::string reply = absl::StrCat(Frame(4, 0, 0, 0), Frame(1, 5, 1, 20));
  SendAll(sink, reply);
  EXPECT_EQ(ReadFor(client, absl::Seconds(5), reply.size()).bytes, reply);

  std::optional<ConnectionInfo> info = directory_.Find(absl::StrCat("fd:", sink));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->address, Ip("127.0.0.9"));
  EXPECT_EQ(info->peer_class, PeerClass::kOther);
  EXPECT_FALSE(directory_.Find("ipv4:127.0.0.9:1234").has_value());
  EXPECT_EQ(guard_->stats().open[static_cast<int>(PeerClass::kOther)], 1u);
}

// A large transfer through a sink that reads slowly: nothing lost, nothing reordered.
TEST_F(ConnectionGuardTest, BackpressureLosesNothing) {
  ConnectionGuard::Options options;
  options.other.http2.new_streams = {};  // 245 streams at once
  Start(options);
  const int client = Connect("127.0.0.9");
  std::string request = Opening();
  for (uint32_t stream = 1; request.size() < 4'000'000; stream += 2) {
    request += absl::StrCat(Frame(1, 4, stream, 50), Frame(0, 1, stream, 16000));
  }
  std::thread writer([&] { SendAll(client, request); });
  const int sink = sink_.WaitFor(0);
  std::string received;
  while (received.size() < request.size()) {
    absl::SleepFor(absl::Milliseconds(1));
    ReadResult chunk = ReadFor(sink, absl::Milliseconds(20), 100'000);
    received += chunk.bytes;
    if (chunk.eof) break;
  }
  writer.join();
  EXPECT_EQ(received.size(), request.size());
  EXPECT_TRUE(received == request);
}

TEST_F(ConnectionGuardTest, AbuseClosesTheConnectionBeforeGrpcSeesIt) {
  Start();
  const int client = Connect("127.0.0.9");
  SendAll(client, Opening());
  const int sink = sink_.WaitFor(0);
  ASSERT_EQ(ReadFor(sink, absl::Seconds(5), Opening().size()).bytes, Opening());
  // A header block of 100 KB, the default limit being 16 KB.
  std::string giant = Frame(1, 0, 1, 16384);
  for (int i = 0; i < 6; ++i) giant += Frame(9, 0, 1, 16384);
  SendAll(client, giant);
  EXPECT_TRUE(ClosedByGuard(client));
  ReadResult seen = ReadFor(sink, absl::Seconds(2));
  EXPECT_TRUE(seen.eof);
  EXPECT_LE(seen.bytes.size(), 16384u + 9);  // at most what preceded the refused chunk
  EXPECT_EQ(guard_->stats().closed_for_abuse, 1u);
  EXPECT_FALSE(directory_.Find(absl::StrCat("fd:", sink)).has_value());
}

TEST_F(ConnectionGuardTest, SilentConnectionsAreClosedAfterThePrefaceTimeout) {
  ConnectionGuard::Options options;
  options.other.http2.preface_timeout = absl::Milliseconds(300);
  Start(options);
  const int client = Connect("127.0.0.9");
  const absl::Time start = absl::Now();
  EXPECT_TRUE(ClosedByGuard(client));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
}

TEST_F(ConnectionGuardTest, OldConnectionsOfAClassWithAnAgeLimitAreClosed) {
  ConnectionGuard::Options options;
  options.other.max_connection_age = absl::Milliseconds(400);
  Start(options);
  policy_.SetLocal(Ip("127.0.0.1"));
  const int outsider = Connect("127.0.0.9");
  const int local = Connect("127.0.0.1");
  SendAll(outsider, Opening());
  SendAll(local, Opening());
  EXPECT_TRUE(ClosedByGuard(outsider));
  EXPECT_TRUE(StaysOpen(local));
}

TEST_F(ConnectionGuardTest, EachSourceHasACapAndOthersAreNotAffected) {
  Start();  // others: 4 per source
  for (int i = 0; i < 4; ++i) Connect("127.0.0.20");
  ASSERT_GE(sink_.WaitFor(3), 0);
  EXPECT_TRUE(ClosedByGuard(Connect("127.0.0.20")));
  EXPECT_TRUE(StaysOpen(Connect("127.0.0.21")));
  EXPECT_EQ(guard_->stats().refused_by_cap, 1u);
  EXPECT_EQ(sink_.count(), 5u);
}

TEST_F(ConnectionGuardTest, TheOutsidersCapNeverTakesTheLocalNodesRoom) {
  ConnectionGuard::Options options;
  options.other.max_connections = 3;
  options.other.max_connections_per_source = 0;
  Start(options);
  policy_.SetLocal(Ip("127.0.0.1"));
  for (const char* source : {"127.0.1.1", "127.0.1.2", "127.0.1.3"}) Connect(source);
  ASSERT_GE(sink_.WaitFor(2), 0);
  EXPECT_TRUE(ClosedByGuard(Connect("127.0.1.4")));
  const int local = Connect("127.0.0.1");
  EXPECT_TRUE(StaysOpen(local));
  std::optional<ConnectionInfo> info = directory_.FindFd(sink_.WaitFor(3));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->peer_class, PeerClass::kLocal);
}

// At its cap, the local class closes its least recently active connection.
TEST_F(ConnectionGuardTest, TheLocalClassMakesRoomInsteadOfRefusing) {
  ConnectionGuard::Options options;
  options.local.max_connections = 2;
  Start(options);
  policy_.SetLocal(Ip("127.0.0.1"));
  const int oldest = Connect("127.0.0.1");
  const int active = Connect("127.0.0.1");
  ASSERT_GE(sink_.WaitFor(1), 0);
  SendAll(active, Opening());  // now the most recently active
  ASSERT_FALSE(ReadFor(sink_.WaitFor(1), absl::Seconds(2), Opening().size()).bytes.empty());
  const int newest = Connect("127.0.0.1");
  EXPECT_TRUE(ClosedByGuard(oldest));
  EXPECT_TRUE(StaysOpen(active));
  EXPECT_TRUE(StaysOpen(newest));
  EXPECT_EQ(guard_->stats().evicted, 1u);
}

TEST_F(ConnectionGuardTest, RefusedSourcesAreClosedAtOnce) {
  Start();
  policy_.Refuse(Ip("127.0.0.66"));
  EXPECT_TRUE(ClosedByGuard(Connect("127.0.0.66")));
  EXPECT_EQ(guard_->stats().refused_by_policy, 1u);
  EXPECT_EQ(sink_.count(), 0u);
}

TEST_F(ConnectionGuardTest, NewConnectionsPerSourceAreRateLimited) {
  ConnectionGuard::Options options;
  options.other.new_connections_per_source = {3, 0.001};
  options.other.max_connections_per_source = 0;
  Start(options);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(StaysOpen(Connect("127.0.0.30"))) << i;
  EXPECT_TRUE(ClosedByGuard(Connect("127.0.0.30")));
  EXPECT_EQ(guard_->stats().refused_by_rate, 1u);
  EXPECT_TRUE(StaysOpen(Connect("127.0.0.31")));
}

TEST_F(ConnectionGuardTest, CloseConnectionsFromASource) {
  Start();
  const int first = Connect("127.0.0.40");
  const int second = Connect("127.0.0.40");
  const int bystander = Connect("127.0.0.41");
  ASSERT_GE(sink_.WaitFor(2), 0);
  guard_->CloseConnectionsFrom(Ip("127.0.0.40"));  // after a grace of 200 ms
  EXPECT_TRUE(ClosedByGuard(first));
  EXPECT_TRUE(ClosedByGuard(second));
  EXPECT_TRUE(StaysOpen(bystander));
}

// A held connection's bytes stay unread for the hold (250 ms the first time,
// then twice as long), then arrive whole; replies flow meanwhile, and other
// connections are not held.
TEST_F(ConnectionGuardTest, HoldBackLeavesAConnectionsBytesUnreadForAWhile) {
  ConnectionGuard::Options options;
  options.sweep_interval = absl::Milliseconds(20);
  Start(options);
  const int held = Connect("127.0.0.42");
  const int bystander = Connect("127.0.0.42");
  SendAll(held, Opening());
  SendAll(bystander, Opening());
  const int held_sink = sink_.WaitFor(0);
  const int bystander_sink = sink_.WaitFor(1);
  ASSERT_GE(held_sink, 0);
  ASSERT_GE(bystander_sink, 0);
  ASSERT_EQ(ReadFor(held_sink, absl::Seconds(5), Opening().size()).bytes.size(),
            Opening().size());
  ASSERT_EQ(ReadFor(bystander_sink, absl::Seconds(5), Opening().size()).bytes.size(),
            Opening().size());
  std::optional<ConnectionInfo> info = directory_.Find(absl::StrCat("fd:", held_sink));
  ASSERT_TRUE(info.has_value());

  for (const absl::Duration hold : {absl::Milliseconds(250), absl::Milliseconds(500)}) {
    guard_->HoldBack(info->id);
    absl::SleepFor(absl::Milliseconds(30));  // the command reaches the guard's thread
    const absl::Time sent = absl::Now();
    const std::string request = Frame(1, 4, 1, 30);
    SendAll(held, request);
    SendAll(bystander, request);
    EXPECT_EQ(ReadFor(bystander_sink, absl::Seconds(5), request.size()).bytes, request);
    const std::string reply = Frame(1, 5, 1, 20);
    SendAll(held_sink, reply);  // the other way is not held
    EXPECT_EQ(ReadFor(held, absl::Seconds(5), reply.size()).bytes, reply);
    EXPECT_EQ(ReadFor(held_sink, hold - absl::Milliseconds(100)).bytes, "") << hold;
    EXPECT_EQ(ReadFor(held_sink, absl::Seconds(5), request.size()).bytes, request) << hold;
    EXPECT_GE(absl::Now() - sent, hold - absl::Milliseconds(40)) << hold;
  }
  EXPECT_EQ(guard_->stats().held_back, 2u);
  EXPECT_TRUE(StaysOpen(held));
  // Released, a held connection is read at once, and its next hold is 250 ms
  // again, not 1 s.
  guard_->HoldBack(info->id);
  absl::SleepFor(absl::Milliseconds(30));
  const std::string request = Frame(1, 4, 1, 30);
  SendAll(held, request);
  EXPECT_EQ(ReadFor(held_sink, absl::Milliseconds(100)).bytes, "");
  guard_->ReleaseHolds();
  EXPECT_EQ(ReadFor(held_sink, absl::Milliseconds(150), request.size()).bytes, request);
  guard_->HoldBack(info->id);
  absl::SleepFor(absl::Milliseconds(30));
  const absl::Time sent = absl::Now();
  SendAll(held, request);
  EXPECT_EQ(ReadFor(held_sink, absl::Seconds(5), request.size()).bytes, request);
  EXPECT_LT(absl::Now() - sent, absl::Milliseconds(600));
  // An unknown or closed connection is ignored.
  guard_->HoldBack(info->id + 1000);
  EXPECT_TRUE(StaysOpen(bystander));
}

TEST_F(ConnectionGuardTest, StopAcceptingFreesThePortAndStopClosesEverything) {
  Start();
  const int client = Connect("127.0.0.50");
  ASSERT_GE(sink_.WaitFor(0), 0);
  guard_->StopAccepting();
  absl::StatusOr<ListenSocket> again;
  for (int i = 0; i < 100; ++i) {
    again = Listen("127.0.0.1", port_);
    if (again.ok()) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(again.ok()) << again.status();
  close(again->fd);
  EXPECT_TRUE(StaysOpen(client));
  guard_->Stop();
  EXPECT_TRUE(ClosedByGuard(client));
  EXPECT_GT(guard_->thread_cpu_time(), absl::ZeroDuration());
}

// A UNIX socket listening in a fresh short directory, and a client of it.
class ControlSocket {
 public:
  ControlSocket() {
    char pattern[] = "/tmp/omd-guardXXXXXX";
    dir_ = mkdtemp(pattern);
    path_ = dir_ + "/omd.sock";
    absl::StatusOr<int> fd = ListenUnix(path_, 0600);
    EXPECT_TRUE(fd.ok()) << fd.status();
    fd_ = fd.ok() ? *fd : -1;
  }
  ~ControlSocket() {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  int TakeFd() { return std::exchange(fd_, -1); }
  int Connect() const {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path_.data(), path_.size());
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
    return fd;
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
};

// The control channel's connections are relayed to the sink, named as the
// control channel, if the peer's uid is allowed; others are closed at once.
TEST_F(ConnectionGuardTest, TheControlChannelChecksThePeersUid) {
  for (const bool allowed : {true, false}) {
    SCOPED_TRACE(allowed ? "allowed uid" : "another uid");
    ControlSocket control;
    ConnectionGuard::Options options;
    options.control_fd = control.TakeFd();
    options.control_uids = {allowed ? static_cast<uint32_t>(geteuid())
                                    : static_cast<uint32_t>(geteuid()) + 1};
    Start(options);
    const size_t served_before = sink_.count();
    const int client = control.Connect();
    clients_.push_back(client);
    if (allowed) {
      const int served = sink_.WaitFor(served_before);
      ASSERT_GE(served, 0);
      std::optional<ConnectionInfo> info = directory_.FindFd(served);
      ASSERT_TRUE(info.has_value());
      EXPECT_TRUE(info->control_channel);
      EXPECT_EQ(info->uid, geteuid());
      EXPECT_EQ(info->peer_class, PeerClass::kLocal);
      SendAll(client, Opening());
      EXPECT_EQ(ReadFor(served, absl::Seconds(2), Opening().size()).bytes, Opening());
      EXPECT_EQ(guard_->stats().control_accepted, 1u);
    } else {
      EXPECT_TRUE(ClosedByGuard(client));
      EXPECT_EQ(sink_.count(), served_before);
      EXPECT_EQ(guard_->stats().control_refused, 1u);
    }
    guard_->Stop();
    guard_.reset();
  }
}

// A replaced listening socket: connections the kernel completed on the old one
// are still accepted, the old port then refuses, the new one accepts, and
// connections already relayed go on.
TEST_F(ConnectionGuardTest, AReplacedListeningSocketLosesNoWaitingConnection) {
  policy_.SetLocal(Ip("127.0.0.1"));  // no cap per source
  Start();
  const int old_port = port_;
  const int relayed = Connect("127.0.0.1");
  ASSERT_GE(sink_.WaitFor(0), 0);
  // Completed by the kernel, not yet accepted when the socket is replaced:
  // the guard's thread is busy until the replacement is posted.
  std::vector<int> waiting;
  for (int i = 0; i < 20; ++i) waiting.push_back(Connect("127.0.0.1"));
  absl::StatusOr<ListenSocket> replacement = Listen("127.0.0.1", 0);
  ASSERT_TRUE(replacement.ok());
  guard_->SetListenSocket(replacement->fd);
  EXPECT_TRUE(sink_.WaitFor(20) >= 0) << "every waiting connection was accepted";
  EXPECT_EQ(guard_->stats().open[static_cast<int>(PeerClass::kLocal)], 21u);
  EXPECT_TRUE(StaysOpen(relayed));

  const int refused = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(old_port));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  EXPECT_NE(connect(refused, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  close(refused);
  port_ = replacement->port;
  Connect("127.0.0.1");
  EXPECT_GE(sink_.WaitFor(21), 0);
}

// Closing on purpose: the connections accepted so far go after the grace, not
// those accepted later.
TEST_F(ConnectionGuardTest, CloseAcceptedAfterSparesLaterConnections) {
  policy_.SetLocal(Ip("127.0.0.1"));
  Start();
  const int before = Connect("127.0.0.1");
  ASSERT_GE(sink_.WaitFor(0), 0);
  guard_->CloseAcceptedAfter(absl::Milliseconds(300));
  const int after = Connect("127.0.0.1");
  ASSERT_GE(sink_.WaitFor(1), 0);
  EXPECT_TRUE(ClosedByGuard(before));
  EXPECT_TRUE(StaysOpen(after));
}

}  // namespace
}  // namespace omd::net

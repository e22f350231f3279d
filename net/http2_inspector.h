// Watches the frame headers of one HTTP/2 connection, both ways, and says when the
// client abuses it in ways gRPC 1.51 does not defend itself against.
//
// Debian's gRPC 1.51.1 carries no fix for HTTP/2 rapid reset (CVE-2023-44487),
// unbounded and quadratic header-block parsing (CVE-2023-33953), or requests that
// stall half-sent while holding buffers. omd relays every connection's bytes to
// gRPC (net/connection_guard.h) and feeds them here first. Only the 9-byte frame
// headers are read; payloads are skipped by length, never copied or parsed. A
// verdict other than OK means: close the connection now, before forwarding what was
// just read, so a refused header block costs what was read of it and no more.
//
//   Http2Inspector inspector(&limits, now);
//   absl::Status verdict = inspector.FromClient(bytes_read, now);
//   if (!verdict.ok()) Close(verdict.message());
//   ... inspector.FromServer(bytes_from_grpc, now) ... inspector.CheckDeadlines(now) ...
#ifndef OMD_NET_HTTP2_INSPECTOR_H_
#define OMD_NET_HTTP2_INSPECTOR_H_

#include <cstddef>
#include <cstdint>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace omd::net {

// At most `burst` events at once, refilled at `per_second`; burst 0: no limit.
struct RateLimit {
  double burst = 0;
  double per_second = 0;
};

class TokenBucket {
 public:
  // Whether one more event fits the limit now (and takes its token if so).
  bool Take(const RateLimit& limit, absl::Time now);

 private:
  double tokens_ = -1;  // < 0: not started, full at first use
  absl::Time last_;
};

struct Http2Limits {
  // The client preface and its first SETTINGS frame must arrive within this.
  absl::Duration preface_timeout = absl::Seconds(5);
  // A header block (HEADERS and its CONTINUATIONs) larger than this is refused
  // as soon as a frame header announces it, whatever gRPC would do with it.
  size_t max_header_block_bytes = 16 << 10;
  // HTTP/2's default SETTINGS_MAX_FRAME_SIZE, which gRPC's server keeps.
  size_t max_frame_bytes = 16384;
  // Requests the client has begun and not ended (END_STREAM not yet sent): how
  // many, how many DATA bytes they hold in all, and how long one may take.
  size_t max_incomplete_requests = 100;
  size_t max_incomplete_request_bytes = 8 << 20;
  absl::Duration request_timeout = absl::Seconds(30);
  // RST_STREAM frames either way: the client's own (rapid reset) and the ones it
  // makes the server send (frames that force a reset).
  RateLimit resets = {200, 50};
  RateLimit new_streams;  // no limit by default
  // SETTINGS, PING, PRIORITY, WINDOW_UPDATE, empty DATA and unknown frames: cheap
  // to send, not free to handle.
  RateLimit control_frames = {1000, 500};
};

class Http2Inspector {
 public:
  // `limits` must outlive the inspector. `now` here and below is the caller's
  // clock, which only needs to be monotonic.
  Http2Inspector(const Http2Limits* limits, absl::Time now);

  // What the client sent, in order. OK, or why to close the connection.
  absl::Status FromClient(absl::string_view bytes, absl::Time now);
  // What the server sent, in order.
  absl::Status FromServer(absl::string_view bytes, absl::Time now);
  // The time limits: the preface, and each incomplete request.
  absl::Status CheckDeadlines(absl::Time now) const;

  size_t incomplete_requests() const { return incomplete_.size(); }
  size_t incomplete_request_bytes() const { return incomplete_bytes_; }
  uint64_t streams_opened() const { return streams_opened_; }
  uint64_t resets() const { return resets_; }

 private:
  struct FrameHeader {
    uint32_t length;
    uint8_t type;
    uint8_t flags;
    uint32_t stream_id;
  };
  // One direction's position in the byte stream.
  struct Reader {
    size_t preface_left = 0;  // client preface bytes still to match
    uint8_t header[9] = {};
    size_t header_have = 0;
    size_t payload_left = 0;
  };
  struct IncompleteRequest {
    absl::Time opened_at;
    size_t bytes = 0;
  };

  template <typename OnFrame>
  absl::Status Read(Reader& reader, absl::string_view bytes, OnFrame on_frame);
  absl::Status OnClientFrame(const FrameHeader& frame, absl::Time now);
  absl::Status OnServerFrame(const FrameHeader& frame, absl::Time now);
  absl::Status CountReset(absl::Time now);
  absl::Status CountControlFrame(absl::Time now);
  void EndRequest(uint32_t stream_id);

  const Http2Limits* const limits_;
  const absl::Time created_at_;
  Reader client_;
  Reader server_;
  bool settled_ = false;  // the client's first SETTINGS frame came
  bool in_header_block_ = false;
  uint32_t header_block_stream_ = 0;
  size_t header_block_bytes_ = 0;
  uint32_t last_client_stream_ = 0;
  // By stream id, which clients must increase: the first is the oldest.
  absl::btree_map<uint32_t, IncompleteRequest> incomplete_;
  size_t incomplete_bytes_ = 0;
  TokenBucket reset_bucket_;
  TokenBucket stream_bucket_;
  TokenBucket control_bucket_;
  uint64_t streams_opened_ = 0;
  uint64_t resets_ = 0;
};

}  // namespace omd::net

#endif  // OMD_NET_HTTP2_INSPECTOR_H_

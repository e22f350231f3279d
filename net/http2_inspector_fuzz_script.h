// The input language of net/http2_inspector_fuzzer.cc: a script of what a client
// and a server send through the relay and when, so that one fuzz input can set
// small limits, send frames with long payloads, let time pass and repeat a pattern
// (a rapid reset, a flood) without spelling out every byte. The seed generator
// (http2_inspector_corpus_main.cc) writes scripts with Http2ScriptWriter; the
// fuzzer reads them with DecodeHttp2Script.
//
// A script is:
//   kLimitBytes bytes, one per limit of Http2Limits in the order of LimitByte:
//     byte & 0x80: the default; else (byte & 0x7f) * the limit's unit (see
//     DecodeLimits), so the small limits a fuzzer must reach are one byte away;
//   then operations, each an op byte (its kind in the low nibble, modulo kOpKinds;
//   arguments in the high nibble) followed by its operands:
//     kClientBytes  n, n bytes               raw bytes from the client
//     kServerBytes  n, n bytes               raw bytes from the server
//     kClientFrame  type, flags, stream, length(2)
//     kServerFrame  type, flags, stream, length(2)
//                   a frame header and `length` zero bytes of payload; stream is
//                   2 bytes, or 4 when nibble bit 0 is set
//     kAdvance      amount(2, signed)        the clock moves by amount units,
//                   nibble & 3 picks 1 ms, 100 ms, 1 s or 1 min; negative: the wall
//                   clock (absl::Now, what the relay uses) steps back; the fuzzer
//                   sweeps for deadlines after each
//     kCheckDeadlines                        the relay's periodic sweep
//     kRepeat       count                    the last (nibble & 3) + 1 operations
//                   decoded, count + 1 more times; with nibble bit 2 the i-th time
//                   adds 2 * i to the frames' nonzero stream ids
// Multi-byte operands are big-endian. A truncated operation ends the script.
#ifndef OMD_NET_HTTP2_INSPECTOR_FUZZ_SCRIPT_H_
#define OMD_NET_HTTP2_INSPECTOR_FUZZ_SCRIPT_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "net/http2_inspector.h"

namespace omd::net::fuzz {

enum OpKind : uint8_t {
  kClientBytes = 0,
  kServerBytes = 1,
  kClientFrame = 2,
  kServerFrame = 3,
  kAdvance = 4,
  kCheckDeadlines = 5,
  kRepeat = 6,
};
inline constexpr uint8_t kOpKinds = 7;

// The limit bytes, in order; a limit byte without 0x80 is its value in units.
enum LimitByte : uint8_t {
  kMaxFrameBytes,
  kMaxHeaderBlockBytes,
  kMaxIncompleteRequests,
  kMaxIncompleteRequestBytes,
  kRequestTimeout,
  kPrefaceTimeout,
  kResetsBurst,
  kResetsPerSecond,
  kNewStreamsBurst,
  kNewStreamsPerSecond,
  kControlFramesBurst,
  kControlFramesPerSecond,
  kLimitBytes,
};
inline constexpr uint8_t kDefault = 0x80;

// One thing that happens to the connection, decoded.
struct ScriptOp {
  enum Kind { kSend, kAdvance, kCheckDeadlines } kind = kSend;
  bool from_client = true;
  std::string bytes;  // sent as they are ...
  size_t zeros = 0;   // ... then this many zero bytes (a payload)
  absl::Duration advance;
  // A frame's stream id is at bytes[5..8], to be bumped by kRepeat.
  bool is_frame = false;
};

struct Script {
  Http2Limits limits;
  std::vector<ScriptOp> ops;
  size_t total_bytes = 0;  // sent, both ways
};

// Bounds on a decoded script, so every input runs in milliseconds however it
// repeats itself: the limits the fuzzer can set reach every verdict within them.
inline constexpr size_t kMaxScriptOps = 20000;
inline constexpr size_t kMaxScriptBytes = 1 << 20;

inline std::string FrameHeader(uint8_t type, uint8_t flags, uint32_t stream, size_t length) {
  const char header[9] = {
      static_cast<char>(length >> 16), static_cast<char>(length >> 8),
      static_cast<char>(length),       static_cast<char>(type),
      static_cast<char>(flags),        static_cast<char>(stream >> 24),
      static_cast<char>(stream >> 16), static_cast<char>(stream >> 8),
      static_cast<char>(stream)};
  return std::string(header, sizeof(header));
}

inline Http2Limits DecodeLimits(const uint8_t bytes[kLimitBytes]) {
  Http2Limits limits;
  auto set = [&](LimitByte which, auto& limit, auto unit) {
    const uint8_t byte = bytes[which];
    if (!(byte & kDefault)) limit = static_cast<std::decay_t<decltype(limit)>>(byte * unit);
  };
  set(kMaxFrameBytes, limits.max_frame_bytes, size_t{128});
  set(kMaxHeaderBlockBytes, limits.max_header_block_bytes, size_t{128});
  set(kMaxIncompleteRequests, limits.max_incomplete_requests, size_t{1});
  set(kMaxIncompleteRequestBytes, limits.max_incomplete_request_bytes, size_t{1024});
  set(kRequestTimeout, limits.request_timeout, absl::Milliseconds(500));
  set(kPrefaceTimeout, limits.preface_timeout, absl::Milliseconds(100));
  set(kResetsBurst, limits.resets.burst, 2.0);
  set(kResetsPerSecond, limits.resets.per_second, 1.0);
  set(kNewStreamsBurst, limits.new_streams.burst, 2.0);
  set(kNewStreamsPerSecond, limits.new_streams.per_second, 1.0);
  set(kControlFramesBurst, limits.control_frames.burst, 16.0);
  set(kControlFramesPerSecond, limits.control_frames.per_second, 8.0);
  return limits;
}

inline Script DecodeHttp2Script(const uint8_t* data, size_t size) {
  Script script;
  uint8_t limit_bytes[kLimitBytes];
  std::fill(limit_bytes, limit_bytes + kLimitBytes, kDefault);
  std::copy_n(data, std::min<size_t>(size, kLimitBytes), limit_bytes);
  script.limits = DecodeLimits(limit_bytes);
  size_t at = std::min<size_t>(size, kLimitBytes);
  auto have = [&](size_t n) { return size - at >= n; };
  auto u8 = [&] { return data[at++]; };
  auto u16 = [&] {
    const uint16_t value = static_cast<uint16_t>((data[at] << 8) | data[at + 1]);
    at += 2;
    return value;
  };
  auto add = [&](ScriptOp op) {
    if (script.ops.size() >= kMaxScriptOps) return false;
    const size_t bytes = op.bytes.size() + op.zeros;
    if (script.total_bytes + bytes > kMaxScriptBytes) return false;
    script.total_bytes += bytes;
    script.ops.push_back(std::move(op));
    return true;
  };
  while (have(1)) {
    const uint8_t op_byte = u8();
    const uint8_t nibble = op_byte >> 4;
    ScriptOp op;
    switch ((op_byte & 0x0f) % kOpKinds) {
      case kClientBytes:
      case kServerBytes: {
        if (!have(1)) return script;
        const size_t n = u8();
        if (!have(n)) return script;
        op.from_client = (op_byte & 0x0f) % kOpKinds == kClientBytes;
        op.bytes.assign(reinterpret_cast<const char*>(data + at), n);
        at += n;
        break;
      }
      case kClientFrame:
      case kServerFrame: {
        const bool long_stream = nibble & 1;
        if (!have(2 + (long_stream ? 4 : 2) + 2)) return script;
        const uint8_t type = u8();
        const uint8_t flags = u8();
        uint32_t stream = u16();
        if (long_stream) stream = (stream << 16) | u16();
        op.from_client = (op_byte & 0x0f) % kOpKinds == kClientFrame;
        op.zeros = u16();
        op.bytes = FrameHeader(type, flags, stream, op.zeros);
        op.is_frame = true;
        break;
      }
      case kAdvance: {
        if (!have(2)) return script;
        static const absl::Duration kUnits[] = {absl::Milliseconds(1), absl::Milliseconds(100),
                                                absl::Seconds(1), absl::Minutes(1)};
        op.kind = ScriptOp::kAdvance;
        op.advance = static_cast<int16_t>(u16()) * kUnits[nibble & 3];
        break;
      }
      case kCheckDeadlines:
        op.kind = ScriptOp::kCheckDeadlines;
        break;
      case kRepeat: {
        if (!have(1)) return script;
        const size_t count = size_t{u8()} + 1;
        const size_t last = std::min<size_t>((nibble & 3) + 1, script.ops.size());
        const bool bump = nibble & 4;
        const size_t first = script.ops.size() - last;
        for (size_t time = 1; time <= count; ++time) {
          for (size_t i = first; i < first + last; ++i) {
            ScriptOp again = script.ops[i];
            if (bump && again.is_frame) {
              uint32_t stream = (uint32_t{uint8_t(again.bytes[5])} << 24) |
                                (uint32_t{uint8_t(again.bytes[6])} << 16) |
                                (uint32_t{uint8_t(again.bytes[7])} << 8) | uint8_t(again.bytes[8]);
              if (stream != 0) stream += static_cast<uint32_t>(2 * time);
              again.bytes = FrameHeader(static_cast<uint8_t>(again.bytes[3]),
                                        static_cast<uint8_t>(again.bytes[4]), stream, again.zeros);
            }
            if (!add(std::move(again))) return script;
          }
        }
        continue;
      }
    }
    if (!add(std::move(op))) return script;
  }
  return script;
}

// Writes scripts, for seeds and regression inputs.
class Http2ScriptWriter {
 public:
  // Every limit at its default until set.
  Http2ScriptWriter() : limits_() { limits_.fill(kDefault); }

  // `units` of the limit's unit (see DecodeLimits); below 0x80.
  Http2ScriptWriter& Limit(LimitByte which, uint8_t units) {
    limits_[which] = units & 0x7f;
    return *this;
  }
  Http2ScriptWriter& ClientBytes(absl::string_view bytes) { return Bytes(kClientBytes, bytes); }
  Http2ScriptWriter& ServerBytes(absl::string_view bytes) { return Bytes(kServerBytes, bytes); }
  Http2ScriptWriter& ClientFrame(uint8_t type, uint8_t flags, uint32_t stream, uint16_t length) {
    return Frame(kClientFrame, type, flags, stream, length);
  }
  Http2ScriptWriter& ServerFrame(uint8_t type, uint8_t flags, uint32_t stream, uint16_t length) {
    return Frame(kServerFrame, type, flags, stream, length);
  }
  // `unit`: 0 for ms, 1 for 100 ms, 2 for s, 3 for min.
  Http2ScriptWriter& Advance(int16_t amount, uint8_t unit) {
    ops_.push_back(static_cast<char>(kAdvance | (unit & 3) << 4));
    ops_.push_back(static_cast<char>(static_cast<uint16_t>(amount) >> 8));
    ops_.push_back(static_cast<char>(amount));
    return *this;
  }
  Http2ScriptWriter& CheckDeadlines() {
    ops_.push_back(static_cast<char>(kCheckDeadlines));
    return *this;
  }
  // The last `ops` (1 to 4) operations `times` (1 to 256) more times.
  Http2ScriptWriter& Repeat(uint8_t ops, int times, bool bump_streams) {
    ops_.push_back(static_cast<char>(kRepeat | ((ops - 1) & 3) << 4 | (bump_streams ? 0x40 : 0)));
    ops_.push_back(static_cast<char>(times - 1));
    return *this;
  }
  std::string Script() const {
    return std::string(limits_.begin(), limits_.end()) + ops_;
  }

 private:
  Http2ScriptWriter& Bytes(OpKind kind, absl::string_view bytes) {
    while (!bytes.empty()) {
      const size_t n = std::min<size_t>(bytes.size(), 255);
      ops_.push_back(static_cast<char>(kind));
      ops_.push_back(static_cast<char>(n));
      ops_.append(bytes.data(), n);
      bytes.remove_prefix(n);
    }
    return *this;
  }
  Http2ScriptWriter& Frame(OpKind kind, uint8_t type, uint8_t flags, uint32_t stream,
                           uint16_t length) {
    const bool long_stream = stream > 0xffff;
    ops_.push_back(static_cast<char>(kind | (long_stream ? 0x10 : 0)));
    ops_.push_back(static_cast<char>(type));
    ops_.push_back(static_cast<char>(flags));
    if (long_stream) {
      ops_.push_back(static_cast<char>(stream >> 24));
      ops_.push_back(static_cast<char>(stream >> 16));
    }
    ops_.push_back(static_cast<char>(stream >> 8));
    ops_.push_back(static_cast<char>(stream));
    ops_.push_back(static_cast<char>(length >> 8));
    ops_.push_back(static_cast<char>(length));
    return *this;
  }

  std::array<char, kLimitBytes> limits_;
  std::string ops_;
};

}  // namespace omd::net::fuzz

#endif  // OMD_NET_HTTP2_INSPECTOR_FUZZ_SCRIPT_H_

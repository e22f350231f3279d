// The parts of HTTP/2 (RFC 9113) that omd's connection guard reads, and that the
// attack tests write: the client preface, the frame header, frame types, flags,
// settings and error codes.
//
//   if (frame.type == http2::kRstStream) ...
#ifndef OMD_NET_HTTP2_FRAME_H_
#define OMD_NET_HTTP2_FRAME_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace omd::net::http2 {

inline constexpr absl::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// 24-bit length, type, flags, reserved bit and 31-bit stream id.
inline constexpr size_t kFrameHeaderBytes = 9;
// The smallest SETTINGS_MAX_FRAME_SIZE a peer may announce, and the default.
inline constexpr uint32_t kDefaultMaxFrameSize = 16384;
inline constexpr int64_t kDefaultWindow = 65535;

enum FrameType : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};

inline constexpr uint8_t kFlagEndStream = 0x1;   // DATA, HEADERS
inline constexpr uint8_t kFlagAck = 0x1;         // SETTINGS, PING
inline constexpr uint8_t kFlagEndHeaders = 0x4;  // HEADERS, CONTINUATION

inline constexpr uint16_t kSettingsHeaderTableSize = 0x1;
inline constexpr uint16_t kSettingsMaxConcurrentStreams = 0x3;
inline constexpr uint16_t kSettingsInitialWindowSize = 0x4;
inline constexpr uint16_t kSettingsMaxFrameSize = 0x5;
inline constexpr uint16_t kSettingsMaxHeaderListSize = 0x6;

inline constexpr uint32_t kErrorProtocol = 0x1;
inline constexpr uint32_t kErrorCancel = 0x8;
inline constexpr uint32_t kErrorEnhanceYourCalm = 0xb;

}  // namespace omd::net::http2

#endif  // OMD_NET_HTTP2_FRAME_H_

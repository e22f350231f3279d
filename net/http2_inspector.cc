#include "net/http2_inspector.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "net/http2_frame.h"

namespace omd::net {
namespace {

using http2::kClientPreface;
using http2::kContinuation;
using http2::kData;
using http2::kGoaway;
using http2::kHeaders;
using http2::kPing;
using http2::kPushPromise;
using http2::kRstStream;
using http2::kSettings;
using http2::kWindowUpdate;
constexpr uint8_t kEndStream = http2::kFlagEndStream;
constexpr uint8_t kAck = http2::kFlagAck;
constexpr uint8_t kEndHeaders = http2::kFlagEndHeaders;

absl::Status Abuse(absl::string_view what) { return absl::ResourceExhaustedError(what); }
absl::Status ProtocolError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("HTTP/2 protocol error: ", what));
}

}  // namespace

bool TokenBucket::Take(const RateLimit& limit, absl::Time now) {
  if (limit.burst <= 0) return true;
  if (tokens_ < 0) {
    tokens_ = limit.burst;
  } else {
    const double refill = absl::ToDoubleSeconds(now - last_) * limit.per_second;
    if (refill > 0) tokens_ = std::min(limit.burst, tokens_ + refill);
  }
  last_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

Http2Inspector::Http2Inspector(const Http2Limits* limits, absl::Time now)
    : limits_(limits), created_at_(now) {
  client_.preface_left = kClientPreface.size();
}

template <typename OnFrame>
absl::Status Http2Inspector::Read(Reader& reader, absl::string_view bytes,
                                  OnFrame on_frame) {
  while (!bytes.empty()) {
    if (reader.preface_left > 0) {
      const size_t offset = kClientPreface.size() - reader.preface_left;
      const size_t take = std::min(reader.preface_left, bytes.size());
      if (bytes.substr(0, take) != kClientPreface.substr(offset, take)) {
        return ProtocolError("not an HTTP/2 client preface");
      }
      reader.preface_left -= take;
      bytes.remove_prefix(take);
      continue;
    }
    if (reader.payload_left > 0) {
      const size_t skip = std::min(reader.payload_left, bytes.size());
      reader.payload_left -= skip;
      bytes.remove_prefix(skip);
      continue;
    }
    const size_t take = std::min(sizeof(reader.header) - reader.header_have, bytes.size());
    std::copy_n(bytes.data(), take, reader.header + reader.header_have);
    reader.header_have += take;
    bytes.remove_prefix(take);
    if (reader.header_have < sizeof(reader.header)) break;
    reader.header_have = 0;
    const uint8_t* h = reader.header;
    FrameHeader frame;
    frame.length = (uint32_t{h[0]} << 16) | (uint32_t{h[1]} << 8) | h[2];
    frame.type = h[3];
    frame.flags = h[4];
    frame.stream_id = ((uint32_t{h[5]} << 24) | (uint32_t{h[6]} << 16) |
                       (uint32_t{h[7]} << 8) | h[8]) &
                      0x7fffffffu;
    reader.payload_left = frame.length;
    absl::Status verdict = on_frame(frame);
    if (!verdict.ok()) return verdict;
  }
  return absl::OkStatus();
}

absl::Status Http2Inspector::FromClient(absl::string_view bytes, absl::Time now) {
  return Read(client_, bytes,
              [this, now](const FrameHeader& frame) { return OnClientFrame(frame, now); });
}

absl::Status Http2Inspector::FromServer(absl::string_view bytes, absl::Time now) {
  return Read(server_, bytes,
              [this, now](const FrameHeader& frame) { return OnServerFrame(frame, now); });
}

absl::Status Http2Inspector::CountReset(absl::Time now) {
  ++resets_;
  if (reset_bucket_.Take(limits_->resets, now)) return absl::OkStatus();
  return Abuse("too many stream resets (rapid reset)");
}

absl::Status Http2Inspector::CountControlFrame(absl::Time now) {
  if (control_bucket_.Take(limits_->control_frames, now)) return absl::OkStatus();
  return Abuse("too many control frames");
}

void Http2Inspector::EndRequest(uint32_t stream_id) {
  auto it = incomplete_.find(stream_id);
  if (it == incomplete_.end()) return;
  incomplete_bytes_ -= it->second.bytes;
  incomplete_.erase(it);
}

absl::Status Http2Inspector::OnClientFrame(const FrameHeader& frame, absl::Time now) {
  if (frame.length > limits_->max_frame_bytes) {
    return ProtocolError(absl::StrCat("a frame of ", frame.length, " bytes, over ",
                                      limits_->max_frame_bytes));
  }
  if (!settled_) {
    if (frame.type != kSettings) return ProtocolError("the first frame is not SETTINGS");
    settled_ = true;
  }
  if (in_header_block_) {
    if (frame.type != kContinuation || frame.stream_id != header_block_stream_) {
      return ProtocolError("a header block interrupted by another frame");
    }
    header_block_bytes_ += frame.length;
    if (header_block_bytes_ > limits_->max_header_block_bytes) {
      return Abuse(absl::StrCat("a header block over ", limits_->max_header_block_bytes,
                                " bytes"));
    }
    if (frame.flags & kEndHeaders) in_header_block_ = false;
    return absl::OkStatus();
  }
  switch (frame.type) {
    case kData: {
      if (frame.length == 0 && !(frame.flags & kEndStream)) {
        absl::Status counted = CountControlFrame(now);
        if (!counted.ok()) return counted;
      }
      auto it = incomplete_.find(frame.stream_id);
      if (it == incomplete_.end()) return absl::OkStatus();
      it->second.bytes += frame.length;
      incomplete_bytes_ += frame.length;
      if (incomplete_bytes_ > limits_->max_incomplete_request_bytes) {
        return Abuse(absl::StrCat("incomplete requests holding over ",
                                  limits_->max_incomplete_request_bytes, " bytes"));
      }
      if (frame.flags & kEndStream) EndRequest(frame.stream_id);
      return absl::OkStatus();
    }
    case kHeaders: {
      header_block_bytes_ = frame.length;
      if (header_block_bytes_ > limits_->max_header_block_bytes) {
        return Abuse(absl::StrCat("a header block over ", limits_->max_header_block_bytes,
                                  " bytes"));
      }
      if (!(frame.flags & kEndHeaders)) {
        in_header_block_ = true;
        header_block_stream_ = frame.stream_id;
      }
      if (frame.stream_id > last_client_stream_ && (frame.stream_id & 1) == 1) {
        last_client_stream_ = frame.stream_id;
        ++streams_opened_;
        if (!stream_bucket_.Take(limits_->new_streams, now)) {
          return Abuse("too many new streams");
        }
        if (!(frame.flags & kEndStream)) {
          incomplete_.emplace(frame.stream_id, IncompleteRequest{now, 0});
          if (incomplete_.size() > limits_->max_incomplete_requests) {
            return Abuse(absl::StrCat("over ", limits_->max_incomplete_requests,
                                      " incomplete requests"));
          }
        }
      } else if (frame.flags & kEndStream) {
        EndRequest(frame.stream_id);  // trailers
      }
      return absl::OkStatus();
    }
    case kRstStream:
      EndRequest(frame.stream_id);
      return CountReset(now);
    case kSettings:
    case kPing:
      if (frame.flags & kAck) return absl::OkStatus();
      return CountControlFrame(now);
    case kPushPromise:
      return ProtocolError("PUSH_PROMISE from a client");
    case kContinuation:
      return ProtocolError("CONTINUATION outside a header block");
    case kGoaway:
      return absl::OkStatus();
    case kWindowUpdate:
      // Flow control, sent by every busy client. One that forces a reset
      // (increment 0) makes the server send RST_STREAM, which counts.
      return absl::OkStatus();
    default:  // PRIORITY, extensions
      return CountControlFrame(now);
  }
}

absl::Status Http2Inspector::OnServerFrame(const FrameHeader& frame, absl::Time now) {
  switch (frame.type) {
    case kRstStream:
      EndRequest(frame.stream_id);
      return CountReset(now);
    case kHeaders:
    case kData:
      // The server has answered: it reads no more of the request.
      if (frame.flags & kEndStream) EndRequest(frame.stream_id);
      return absl::OkStatus();
    default:
      return absl::OkStatus();
  }
}

absl::Status Http2Inspector::CheckDeadlines(absl::Time now) const {
  if (!settled_ && now - created_at_ > limits_->preface_timeout) {
    return Abuse(absl::StrCat("no HTTP/2 preface within ",
                              absl::FormatDuration(limits_->preface_timeout)));
  }
  if (!incomplete_.empty() &&
      now - incomplete_.begin()->second.opened_at > limits_->request_timeout) {
    return Abuse(absl::StrCat("a request not received whole within ",
                              absl::FormatDuration(limits_->request_timeout)));
  }
  return absl::OkStatus();
}

}  // namespace omd::net

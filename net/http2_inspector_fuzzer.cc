// Fuzzes Http2Inspector, which reads the frame headers of every connection omd
// relays, straight from the network (net/connection_guard.cc).
//
// The input is a script (http2_inspector_fuzz_script.h): limits, then what the
// client and the server send and when, and when the relay sweeps for deadlines.
// The script runs the way the relay runs it, stopping at the first verdict that is
// not OK (the relay closes the connection then). Beyond crashes, undefined
// behaviour and leaks, it aborts when:
// - a verdict is neither OK nor one of the two refusals (INVALID_ARGUMENT for a
//   protocol error, RESOURCE_EXHAUSTED for abuse), or a refusal has no reason;
// - when a verdict is returned, more than max_incomplete_requests + 1 requests, or
//   more than max_incomplete_request_bytes + one frame, are counted incomplete
//   (and, while OK, more than the limits themselves);
// - the inspector and the rules of http2_inspector.h, written again plainly
//   (Model), disagree on an operation: one refuses and the other does not, they
//   refuse with different codes, or they count streams, resets or incomplete
//   requests differently;
// - a deadline sweep refuses without a late preface or request, or (while the
//   clock has not stepped back) accepts one;
// - splitting what is sent differently changes anything: the script runs again
//   with each operation's bytes fed in pseudo-random pieces, and byte by byte,
//   and every verdict and counter must be the same as when they came whole.
//
// OMD_FUZZ_VERBOSE=1 in the environment prints every operation and verdict, to
// read what a crashing input does.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "net/http2_inspector.h"
#include "net/http2_inspector_fuzz_script.h"

namespace omd::net {
namespace {

using fuzz::Script;
using fuzz::ScriptOp;

#define FUZZ_CHECK(condition)                                                           \
  do {                                                                                  \
    if (!(condition)) {                                                                 \
      fprintf(stderr, "http2_inspector_fuzzer: %s:%d: violated: %s\n", __FILE__, __LINE__, \
              #condition);                                                              \
      abort();                                                                          \
    }                                                                                   \
  } while (false)

const absl::Time kStart = absl::FromUnixSeconds(1'800'000'000);
constexpr absl::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

constexpr uint8_t kData = 0, kHeaders = 1, kRstStream = 3, kSettings = 4, kPushPromise = 5,
                  kPing = 6, kGoaway = 7, kContinuation = 9;
constexpr uint8_t kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4;

// What the inspector said after one operation, and what it counted.
struct Step {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string message;
  size_t incomplete_requests = 0;
  size_t incomplete_request_bytes = 0;
  uint64_t streams_opened = 0;
  uint64_t resets = 0;

  bool operator==(const Step& other) const {
    return code == other.code && message == other.message &&
           incomplete_requests == other.incomplete_requests &&
           incomplete_request_bytes == other.incomplete_request_bytes &&
           streams_opened == other.streams_opened && resets == other.resets;
  }
};

// The rules of http2_inspector.h written again, plainly: a byte at a time, every
// frame judged in the order the header states its limits. Its verdict (OK, or the
// code of the first rule broken) and its counts must be the inspector's after
// every operation: so the inspector refuses nothing the rules allow, and lets
// nothing through that they refuse.
class Model {
 public:
  explicit Model(const Http2Limits& limits) : limits_(limits) {
    client_.preface_left = kClientPreface.size();
  }

  // What the relay would do with these bytes: OK, or why it closes.
  absl::StatusCode Feed(bool from_client, absl::string_view bytes, absl::Time now) {
    Stream& stream = from_client ? client_ : server_;
    for (char byte : bytes) {
      if (stream.preface_left > 0) {
        if (byte != kClientPreface[kClientPreface.size() - stream.preface_left]) return kProtocol;
        --stream.preface_left;
      } else if (stream.payload_left > 0) {
        --stream.payload_left;
      } else {
        stream.header.push_back(byte);
        if (stream.header.size() < 9) continue;
        const auto h = [&](int i) { return uint32_t{static_cast<uint8_t>(stream.header[i])}; };
        const uint32_t length = h(0) << 16 | h(1) << 8 | h(2);
        const uint8_t type = static_cast<uint8_t>(h(3));
        const uint8_t flags = static_cast<uint8_t>(h(4));
        const uint32_t id = (h(5) << 24 | h(6) << 16 | h(7) << 8 | h(8)) & 0x7fffffffu;
        stream.header.clear();
        stream.payload_left = length;
        const absl::StatusCode verdict = from_client
                                             ? ClientFrame(length, type, flags, id, now)
                                             : ServerFrame(type, flags, id, now);
        if (verdict != kOk) return verdict;
      }
    }
    return kOk;
  }

  bool settled() const { return settled_; }
  size_t incomplete_requests() const { return incomplete_.size(); }
  size_t incomplete_request_bytes() const { return incomplete_bytes_; }
  uint64_t streams_opened() const { return streams_opened_; }
  uint64_t resets() const { return resets_; }
  // Whether a request has been incomplete for longer than the limit.
  bool RequestLate(absl::Time now) const {
    for (const auto& [id, request] : incomplete_) {
      if (now - request.opened_at > limits_.request_timeout) return true;
    }
    return false;
  }

 private:
  static constexpr absl::StatusCode kOk = absl::StatusCode::kOk;
  static constexpr absl::StatusCode kProtocol = absl::StatusCode::kInvalidArgument;
  static constexpr absl::StatusCode kAbuse = absl::StatusCode::kResourceExhausted;

  struct Stream {
    size_t preface_left = 0;
    std::string header;
    size_t payload_left = 0;
  };
  struct Request {
    absl::Time opened_at;
    size_t bytes = 0;
  };
  // "At most burst events at once, refilled at per_second", full at first use.
  struct Bucket {
    bool started = false;
    double tokens = 0;
    absl::Time last;

    bool Take(const RateLimit& limit, absl::Time now) {
      if (limit.burst <= 0) return true;
      if (!started) {
        started = true;
        tokens = limit.burst;
      } else if (now > last) {
        tokens = std::min(limit.burst,
                          tokens + absl::ToDoubleSeconds(now - last) * limit.per_second);
      }
      last = now;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    }
  };

  absl::StatusCode ClientFrame(uint32_t length, uint8_t type, uint8_t flags, uint32_t id,
                               absl::Time now) {
    if (length > limits_.max_frame_bytes) return kProtocol;
    if (!settled_) {
      if (type != kSettings) return kProtocol;
      settled_ = true;
    }
    if (in_header_block_) {
      if (type != kContinuation || id != header_block_stream_) return kProtocol;
      header_block_bytes_ += length;
      if (header_block_bytes_ > limits_.max_header_block_bytes) return kAbuse;
      if (flags & kEndHeaders) in_header_block_ = false;
      return kOk;
    }
    switch (type) {
      case kData: {
        if (length == 0 && !(flags & kEndStream) && !Control(now)) return kAbuse;
        auto it = incomplete_.find(id);
        if (it == incomplete_.end()) return kOk;
        it->second.bytes += length;
        incomplete_bytes_ += length;
        if (incomplete_bytes_ > limits_.max_incomplete_request_bytes) return kAbuse;
        if (flags & kEndStream) End(id);
        return kOk;
      }
      case kHeaders:
        header_block_bytes_ = length;
        if (header_block_bytes_ > limits_.max_header_block_bytes) return kAbuse;
        if (!(flags & kEndHeaders)) {
          in_header_block_ = true;
          header_block_stream_ = id;
        }
        if (id % 2 == 1 && id > last_stream_) {  // a new request
          last_stream_ = id;
          ++streams_opened_;
          if (!new_streams_.Take(limits_.new_streams, now)) return kAbuse;
          if (!(flags & kEndStream)) {
            incomplete_[id] = Request{now, 0};
            if (incomplete_.size() > limits_.max_incomplete_requests) return kAbuse;
          }
        } else if (flags & kEndStream) {  // trailers
          End(id);
        }
        return kOk;
      case kRstStream:
        End(id);
        ++resets_;
        return resets_bucket_.Take(limits_.resets, now) ? kOk : kAbuse;
      case kSettings:
      case kPing:
        return (flags & kAck) || Control(now) ? kOk : kAbuse;
      case kPushPromise:
      case kContinuation:
        return kProtocol;
      case kGoaway:
        return kOk;
      default:
        return Control(now) ? kOk : kAbuse;
    }
  }

  absl::StatusCode ServerFrame(uint8_t type, uint8_t flags, uint32_t id, absl::Time now) {
    if (type == kRstStream) {
      End(id);
      ++resets_;
      return resets_bucket_.Take(limits_.resets, now) ? kOk : kAbuse;
    }
    if ((type == kHeaders || type == kData) && (flags & kEndStream)) End(id);
    return kOk;
  }

  bool Control(absl::Time now) { return control_.Take(limits_.control_frames, now); }

  void End(uint32_t id) {
    auto it = incomplete_.find(id);
    if (it == incomplete_.end()) return;
    incomplete_bytes_ -= it->second.bytes;
    incomplete_.erase(it);
  }

  const Http2Limits& limits_;
  Stream client_;
  Stream server_;
  bool settled_ = false;
  bool in_header_block_ = false;
  uint32_t header_block_stream_ = 0;
  size_t header_block_bytes_ = 0;
  uint32_t last_stream_ = 0;
  std::map<uint32_t, Request> incomplete_;
  size_t incomplete_bytes_ = 0;
  uint64_t streams_opened_ = 0;
  uint64_t resets_ = 0;
  Bucket resets_bucket_;
  Bucket new_streams_;
  Bucket control_;
};

// How one operation's bytes reach the inspector.
enum class Split { kWhole, kPieces, kByByte };

// Scripts up to this size also run byte by byte (a call per byte costs).
constexpr size_t kMaxByByteBytes = 64 << 10;

// xorshift64, seeded by the input: the pieces are the same on every run.
class Pieces {
 public:
  explicit Pieces(uint64_t seed) : state_(seed | 1) {}
  size_t Next(size_t left) {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    // Mostly short pieces, to cut frame headers everywhere; some long ones.
    static constexpr size_t kScales[] = {1, 2, 8, 9, 10, 64, 4096};
    const size_t scale = kScales[state_ % (sizeof(kScales) / sizeof(kScales[0]))];
    return std::min(left, 1 + static_cast<size_t>((state_ >> 8) % scale));
  }

 private:
  uint64_t state_;
};

Step Record(const absl::Status& verdict, const Http2Inspector& inspector) {
  Step step;
  step.code = verdict.code();
  step.message = std::string(verdict.message());
  step.incomplete_requests = inspector.incomplete_requests();
  step.incomplete_request_bytes = inspector.incomplete_request_bytes();
  step.streams_opened = inspector.streams_opened();
  step.resets = inspector.resets();
  return step;
}

// What must hold whenever a verdict is returned.
void CheckStep(const Step& step, const Step& previous, const Http2Limits& limits) {
  const bool ok = step.code == absl::StatusCode::kOk;
  FUZZ_CHECK(ok || step.code == absl::StatusCode::kInvalidArgument ||
             step.code == absl::StatusCode::kResourceExhausted);
  FUZZ_CHECK(ok || !step.message.empty());
  FUZZ_CHECK(step.incomplete_requests <= limits.max_incomplete_requests + (ok ? 0 : 1));
  FUZZ_CHECK(step.incomplete_request_bytes <=
             limits.max_incomplete_request_bytes + (ok ? 0 : limits.max_frame_bytes));
  FUZZ_CHECK(step.incomplete_requests > 0 || step.incomplete_request_bytes == 0);
  FUZZ_CHECK(step.incomplete_requests <= step.streams_opened);
  FUZZ_CHECK(step.streams_opened >= previous.streams_opened);
  FUZZ_CHECK(step.resets >= previous.resets);
}

absl::Status Feed(Http2Inspector& inspector, bool from_client, absl::string_view bytes,
                  Split split, Pieces& pieces, absl::Time now) {
  auto feed = [&](absl::string_view piece) {
    return from_client ? inspector.FromClient(piece, now) : inspector.FromServer(piece, now);
  };
  if (split == Split::kWhole) return feed(bytes);
  while (!bytes.empty()) {
    const size_t n = split == Split::kByByte ? 1 : pieces.Next(bytes.size());
    absl::Status verdict = feed(bytes.substr(0, n));
    if (!verdict.ok()) return verdict;
    bytes.remove_prefix(n);
  }
  return absl::OkStatus();
}

bool Verbose() {
  static const bool verbose = getenv("OMD_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

std::string Describe(const Step& step) {
  return absl::StrCat(absl::StatusCodeToString(step.code), " \"", step.message, "\" incomplete ",
                      step.incomplete_requests, " (", step.incomplete_request_bytes,
                      " bytes) opened ", step.streams_opened, " resets ", step.resets);
}

void Print(size_t index, const ScriptOp& op, const Step& step) {
  if (op.kind == ScriptOp::kSend) {
    fprintf(stderr, "%4zu %s %zu bytes", index, op.from_client ? "client" : "server",
            op.bytes.size() + op.zeros);
    if (op.is_frame) {
      const auto h = [&](int i) { return static_cast<unsigned>(static_cast<uint8_t>(op.bytes[i])); };
      fprintf(stderr, " (frame type %u flags 0x%02x stream %u)", h(3), h(4),
              (h(5) << 24 | h(6) << 16 | h(7) << 8 | h(8)) & 0x7fffffffu);
    }
  } else {
    fprintf(stderr, "%4zu %s %s", index, op.kind == ScriptOp::kAdvance ? "advance" : "sweep",
            op.kind == ScriptOp::kAdvance ? absl::FormatDuration(op.advance).c_str() : "");
  }
  fprintf(stderr, ": %s\n", Describe(step).c_str());
}

// Runs the script as the relay would, until the first refusal; returns a Step per
// operation. The model and the invariants are checked when `check` is set (the
// other splits are compared with that run instead).
std::vector<Step> Run(const Script& script, Split split, uint64_t seed, bool check) {
  const Http2Limits& limits = script.limits;
  Http2Inspector inspector(&limits, kStart);
  Model model(limits);
  Pieces pieces(seed);
  absl::Time now = kStart;
  bool clock_stepped_back = false;
  std::vector<Step> steps;
  std::string bytes;
  for (const ScriptOp& op : script.ops) {
    absl::Status verdict;
    if (op.kind == ScriptOp::kSend) {
      bytes.assign(op.bytes);
      bytes.append(op.zeros, '\0');
      verdict = Feed(inspector, op.from_client, bytes, split, pieces, now);
      if (check) FUZZ_CHECK(verdict.code() == model.Feed(op.from_client, bytes, now));
    } else {
      if (op.kind == ScriptOp::kAdvance) {
        now += op.advance;
        if (op.advance < absl::ZeroDuration()) clock_stepped_back = true;
      }
      // After time passes, the relay's sweep looks, as it does every interval.
      verdict = inspector.CheckDeadlines(now);
      if (check) {
        FUZZ_CHECK(inspector.CheckDeadlines(now) == verdict);  // const: no state
        const bool late = (!model.settled() && now - kStart > limits.preface_timeout) ||
                          model.RequestLate(now);
        if (!verdict.ok()) FUZZ_CHECK(late);
        // Only the oldest request is looked at, and by stream id: the clock must
        // not have stepped back for that one to be the first due.
        if (verdict.ok() && !clock_stepped_back) FUZZ_CHECK(!late);
      }
    }
    Step step = Record(verdict, inspector);
    if (check && Verbose()) Print(steps.size(), op, step);
    if (check) {
      CheckStep(step, steps.empty() ? Step() : steps.back(), limits);
      FUZZ_CHECK(step.incomplete_requests == model.incomplete_requests());
      FUZZ_CHECK(step.incomplete_request_bytes == model.incomplete_request_bytes());
      FUZZ_CHECK(step.streams_opened == model.streams_opened());
      FUZZ_CHECK(step.resets == model.resets());
    }
    steps.push_back(std::move(step));
    if (!verdict.ok()) break;  // the relay has closed the connection
  }
  return steps;
}

void CompareRuns(const std::vector<Step>& whole, const std::vector<Step>& split,
                 const char* how) {
  for (size_t i = 0; i < whole.size() && i < split.size(); ++i) {
    if (whole[i] == split[i]) continue;
    fprintf(stderr, "http2_inspector_fuzzer: operation %zu fed %s: %s; fed whole: %s\n", i, how,
            Describe(split[i]).c_str(), Describe(whole[i]).c_str());
    abort();
  }
  FUZZ_CHECK(whole.size() == split.size());
}

uint64_t Fnv1a(const uint8_t* data, size_t size) {
  uint64_t hash = 0xcbf29ce484222325u;
  for (size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 0x100000001b3u;
  return hash;
}

void FuzzOne(const uint8_t* data, size_t size) {
  const Script script = fuzz::DecodeHttp2Script(data, size);
  const uint64_t seed = Fnv1a(data, size);
  if (Verbose()) {
    fprintf(stderr, "script of %zu operations, %zu bytes\n", script.ops.size(),
            script.total_bytes);
  }
  const std::vector<Step> whole = Run(script, Split::kWhole, seed, /*check=*/true);
  CompareRuns(whole, Run(script, Split::kPieces, seed, false), "in pieces");
  if (script.total_bytes <= kMaxByByteBytes) {
    CompareRuns(whole, Run(script, Split::kByByte, seed, false), "byte by byte");
  }
}

}  // namespace
}  // namespace omd::net

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  omd::net::FuzzOne(data, size);
  return 0;
}

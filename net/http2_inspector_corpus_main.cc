// Writes the seed corpus of http2_inspector_fuzzer: scripts of ordinary
// conversations and of each abuse the inspector refuses, with limits small enough
// that the fuzzer starts next to every verdict.
//
//   bazel run //net:http2_inspector_corpus -- $PWD/net/testdata/http2_inspector_corpus
//
// Regression inputs (a crash the fuzzer found, minimised) live in the same
// directory under names of their own; this program does not touch them.
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "net/http2_inspector_fuzz_script.h"

namespace omd::net::fuzz {
namespace {

constexpr absl::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr uint8_t kData = 0, kHeaders = 1, kPriority = 2, kRstStream = 3, kSettings = 4,
                  kPushPromise = 5, kPing = 6, kGoaway = 7, kWindowUpdate = 8, kContinuation = 9;
constexpr uint8_t kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4, kPadded = 0x8,
                  kPriorityFlag = 0x20;

// The client's preface and SETTINGS, the server's SETTINGS, both acknowledged.
Http2ScriptWriter Opening() {
  Http2ScriptWriter script;
  // The SETTINGS frame in full, as gRPC's client sends it: ENABLE_PUSH 0, a window.
  script.ClientBytes(std::string(kPreface) + FrameHeader(kSettings, 0, 0, 12) +
                     std::string("\x00\x02\x00\x00\x00\x00\x00\x04\x00\x40\x00\x00", 12));
  script.ServerFrame(kSettings, 0, 0, 6).ClientFrame(kSettings, kAck, 0, 0);
  script.ServerFrame(kSettings, kAck, 0, 0);
  return script;
}

// A unary call on `stream`, answered.
void UnaryCall(Http2ScriptWriter& script, uint32_t stream) {
  script.ClientFrame(kHeaders, kEndHeaders, stream, 60).ClientFrame(kData, kEndStream, stream, 20);
  script.ServerFrame(kHeaders, kEndHeaders, stream, 14).ServerFrame(kData, 0, stream, 30);
  script.ServerFrame(kHeaders, kEndHeaders | kEndStream, stream, 24);
}

std::vector<std::pair<std::string, std::string>> Seeds() {
  std::vector<std::pair<std::string, std::string>> seeds;

  Http2ScriptWriter unary = Opening();
  for (uint32_t stream = 1; stream <= 5; stream += 2) UnaryCall(unary, stream);
  unary.ClientFrame(kPing, 0, 0, 8).ServerFrame(kPing, kAck, 0, 8);
  unary.ClientFrame(kWindowUpdate, 0, 0, 4).ClientFrame(kPriority, 0, 7, 5);
  unary.Advance(1, 2).CheckDeadlines().ClientFrame(kGoaway, 0, 0, 8);
  seeds.emplace_back("unary_calls", unary.Script());

  // A request sent in pieces: a padded, prioritised HEADERS and DATA cut mid-header.
  Http2ScriptWriter pieces = Opening();
  const std::string headers = FrameHeader(kHeaders, kEndHeaders | kPadded | kPriorityFlag, 1, 20) +
                              std::string(20, 'h');
  const std::string data = FrameHeader(kData, kEndStream, 1, 5) + "hello";
  pieces.ClientBytes(headers.substr(0, 4)).Advance(50, 0).ClientBytes(headers.substr(4));
  pieces.ClientBytes(data.substr(0, 9 + 2)).ClientBytes(data.substr(11));
  pieces.ServerFrame(kHeaders, kEndHeaders | kEndStream, 1, 10);
  seeds.emplace_back("split_frames", pieces.Script());

  // A header block in a chain of CONTINUATIONs, then one over the limit (1024).
  Http2ScriptWriter chain = Opening();
  chain.Limit(kMaxHeaderBlockBytes, 8);
  chain.ClientFrame(kHeaders, 0, 1, 200).ClientFrame(kContinuation, 0, 1, 200);
  chain.ClientFrame(kContinuation, kEndHeaders, 1, 200).ClientFrame(kData, kEndStream, 1, 10);
  chain.ClientFrame(kHeaders, kEndStream, 3, 300).ClientFrame(kContinuation, 0, 3, 300);
  chain.Repeat(1, 3, false);
  seeds.emplace_back("continuation_chain", chain.Script());

  // Empty frames: a header block of empty frames, an empty END_STREAM, SETTINGS.
  Http2ScriptWriter empty = Opening();
  empty.ClientFrame(kHeaders, 0, 1, 0).ClientFrame(kContinuation, 0, 1, 0);
  empty.ClientFrame(kContinuation, kEndHeaders, 1, 0).ClientFrame(kData, kEndStream, 1, 0);
  empty.ClientFrame(kSettings, 0, 0, 0).ServerFrame(kHeaders, kEndHeaders | kEndStream, 1, 0);
  seeds.emplace_back("empty_frames", empty.Script());

  // Trailers end a request that streamed DATA; the server's answer ends another.
  Http2ScriptWriter trailers = Opening();
  trailers.ClientFrame(kHeaders, kEndHeaders, 1, 40).ClientFrame(kData, 0, 1, 1000);
  trailers.Repeat(1, 3, false).ClientFrame(kHeaders, kEndHeaders | kEndStream, 1, 12);
  trailers.ClientFrame(kHeaders, kEndHeaders, 3, 40).ClientFrame(kData, 0, 3, 100);
  trailers.ServerFrame(kHeaders, kEndHeaders | kEndStream, 3, 10);
  trailers.ClientFrame(kData, 0, 3, 100).ClientFrame(kData, kEndStream, 3, 0);
  seeds.emplace_back("trailers", trailers.Script());

  // Rapid reset past a burst of 8 (CVE-2023-44487).
  Http2ScriptWriter rapid = Opening();
  rapid.Limit(kResetsBurst, 4).Limit(kResetsPerSecond, 2);
  rapid.ClientFrame(kHeaders, kEndHeaders, 1, 40).ClientFrame(kRstStream, 0, 1, 4);
  rapid.Repeat(2, 10, true);
  seeds.emplace_back("rapid_reset", rapid.Script());

  // Resets the client makes the server send.
  Http2ScriptWriter server_resets = Opening();
  server_resets.Limit(kResetsBurst, 3);
  server_resets.ClientFrame(kHeaders, kEndHeaders, 1, 40).ServerFrame(kRstStream, 0, 1, 4);
  server_resets.Advance(1, 0).Repeat(3, 8, true);
  seeds.emplace_back("server_resets", server_resets.Script());

  // Requests left incomplete: more than 3, then more than 2 KiB, then too long.
  Http2ScriptWriter incomplete = Opening();
  incomplete.Limit(kMaxIncompleteRequests, 3).Limit(kMaxIncompleteRequestBytes, 2);
  incomplete.ClientFrame(kHeaders, kEndHeaders, 1, 40).ClientFrame(kData, 0, 1, 600);
  incomplete.Repeat(2, 4, true);
  seeds.emplace_back("incomplete_requests", incomplete.Script());

  Http2ScriptWriter stalled = Opening();
  stalled.Limit(kRequestTimeout, 2);
  stalled.ClientFrame(kHeaders, kEndHeaders, 1, 40).ClientFrame(kData, 0, 1, 100);
  stalled.Advance(5, 1).CheckDeadlines();
  UnaryCall(stalled, 3);
  stalled.Advance(6, 1).CheckDeadlines();
  seeds.emplace_back("stalled_request", stalled.Script());

  // Control floods: PINGs, SETTINGS, empty DATA, past a burst of 32.
  Http2ScriptWriter control = Opening();
  control.Limit(kControlFramesBurst, 2).Limit(kControlFramesPerSecond, 1);
  control.ClientFrame(kPing, kAck, 0, 8).ClientFrame(kPing, 0, 0, 8);
  control.ClientFrame(kSettings, 0, 0, 0).ClientFrame(kHeaders, kEndHeaders, 1, 40);
  control.ClientFrame(kData, 0, 1, 0).Repeat(1, 40, false);
  seeds.emplace_back("control_flood", control.Script());

  // New streams rate-limited.
  Http2ScriptWriter streams = Opening();
  streams.Limit(kNewStreamsBurst, 2).Limit(kNewStreamsPerSecond, 1);
  streams.ClientFrame(kHeaders, kEndHeaders | kEndStream, 1, 40).Repeat(1, 8, true);
  seeds.emplace_back("new_streams", streams.Script());

  // Each refusal of a single frame: frames up to 512 bytes, header blocks up to 256.
  auto refused = [&](const char* name, uint8_t type, uint8_t flags, uint16_t length) {
    Http2ScriptWriter script = Opening();
    script.Limit(kMaxFrameBytes, 4).Limit(kMaxHeaderBlockBytes, 2);
    script.ClientFrame(kHeaders, 0, 1, 100).ClientFrame(kContinuation, kEndHeaders, 1, 100);
    script.ClientFrame(type, flags, 3, length);
    seeds.emplace_back(name, script.Script());
  };
  refused("frame_too_large", kData, 0, 513);
  refused("header_block_too_large", kHeaders, kEndHeaders, 257);
  refused("push_promise", kPushPromise, kEndHeaders, 20);
  refused("stray_continuation", kContinuation, kEndHeaders, 20);
  Http2ScriptWriter interrupted = Opening();
  interrupted.ClientFrame(kHeaders, 0, 1, 100).ClientFrame(kPing, 0, 0, 8);
  seeds.emplace_back("interrupted_header_block", interrupted.Script());
  Http2ScriptWriter held = Opening();
  held.Limit(kMaxIncompleteRequestBytes, 1);  // 1 KiB in all
  held.ClientFrame(kHeaders, kEndHeaders, 1, 40).ClientFrame(kData, 0, 1, 600);
  held.ClientFrame(kHeaders, kEndHeaders, 3, 40).ClientFrame(kData, 0, 3, 600);
  seeds.emplace_back("incomplete_request_bytes", held.Script());

  // A preface that comes too late, then one that is not HTTP/2 at all.
  Http2ScriptWriter late;
  late.Limit(kPrefaceTimeout, 10).ClientBytes(kPreface.substr(0, 10)).Advance(9, 1);
  late.CheckDeadlines().ClientBytes(kPreface.substr(10)).Advance(2, 1);
  seeds.emplace_back("late_preface", late.Script());
  seeds.emplace_back("not_http2", Http2ScriptWriter().ClientBytes("GET / HTTP/1.1\r\n").Script());

  // The wall clock steps back while a request is open.
  Http2ScriptWriter back = Opening();
  back.Limit(kRequestTimeout, 4);
  back.ClientFrame(kHeaders, kEndHeaders, 1, 40).Advance(-30, 2);
  back.ClientFrame(kHeaders, kEndHeaders, 3, 40).Advance(31, 2).CheckDeadlines();
  seeds.emplace_back("clock_steps_back", back.Script());
  return seeds;
}

}  // namespace
}  // namespace omd::net::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
    return 2;
  }
  for (const auto& [name, script] : omd::net::fuzz::Seeds()) {
    const std::string path = std::string(argv[1]) + "/" + name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(script.data(), static_cast<std::streamsize>(script.size()));
    if (!out.flush()) {
      fprintf(stderr, "cannot write %s\n", path.c_str());
      return 1;
    }
    printf("%s: %zu bytes\n", path.c_str(), script.size());
  }
  return 0;
}

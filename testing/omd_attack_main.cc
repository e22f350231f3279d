// omd_attack: runs one attack of testing/http2_attack.h against a running omd and
// prints one line of key=value figures: what the attack did, and, with --pid,
// what it cost the daemon (CPU during the attack and in the --after seconds that
// follow it, resident memory before, at its peak and after, descriptors, threads).
//
//   omd_attack --attack=rapid_reset --target=127.0.0.1:1214 --connections=4
//       --sources=127.0.5.1-127.0.5.200 --duration=4s --pid=OMD_PID
//   attack=rapid_reset elapsed_s=4.001 connections_opened=4 ... omd_cpu_s=3.91 ...
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "testing/http2_attack.h"
#include "testing/process_stats.h"

ABSL_FLAG(std::string, attack, "",
          "The attack (required): rapid_reset, made_you_reset, stalled, huge_header, "
          "continuation, hpack_bomb, control, hold.");
ABSL_FLAG(std::string, target, "127.0.0.1:1214", "omd's listener, IPv4 host:port.");
ABSL_FLAG(std::string, sources, "",
          "Source addresses of the connections: IPv4 addresses and inclusive ranges, "
          "comma-separated (127.0.5.1-127.0.5.200,127.0.6.1). Empty: the kernel picks.");
ABSL_FLAG(bool, rotate_sources, true,
          "Every new connection (reconnections too) takes the next source address; "
          "false: connection i keeps the i-th.");
ABSL_FLAG(int, connections, 1,
          "Connections at once (hold: connections to open). Not used by huge_header.");
ABSL_FLAG(int, streams, 10, "stalled: streams per connection.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(4),
          "How long the attack runs. stalled and hold: how long the connections are "
          "held; huge_header: the longest it waits for the server.");
ABSL_FLAG(std::string, bytes, "",
          "A size, with an optional K, M or G suffix (powers of 1024). huge_header: the "
          "header value (default 8M); hpack_bomb: the dynamic table entry (default "
          "4000, shrunk to fit the server's table); stalled: the message length the "
          "gRPC prefix announces (default 65000), of which 1000 bytes fewer are sent.");
ABSL_FLAG(int64_t, references, 65536, "hpack_bomb: indexed references per header block.");
ABSL_FLAG(std::string, control, "ping", "control: what to flood with, ping or settings.");
ABSL_FLAG(bool, read_replies, false,
          "control: read the server's ACKs (by default they pile up on its side).");
ABSL_FLAG(bool, reconnect, true,
          "rapid_reset, made_you_reset, continuation, hpack_bomb, control: open a new "
          "connection when the server closes one.");
ABSL_FLAG(bool, preface, false, "hold: send the HTTP/2 preface and SETTINGS on each.");
ABSL_FLAG(std::string, path, "/omd.v1.Agent/BlacklistStatus", "The requests' :path.");
ABSL_FLAG(std::string, authority, "", "The requests' :authority (default: --target).");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(2), "Per connect().");
ABSL_FLAG(int, sndbuf, 0, "SO_SNDBUF of the attack's sockets; 0: the kernel's.");
ABSL_FLAG(int, pid, 0,
          "omd's process id: report its CPU seconds, resident memory, descriptors and "
          "threads (from /proc).");
ABSL_FLAG(absl::Duration, after, absl::Seconds(5),
          "With --pid: how long to keep measuring omd's CPU after the attack ended.");
ABSL_FLAG(absl::Duration, sample_interval, absl::Milliseconds(10),
          "With --pid: how often omd's resident memory is sampled for its peak.");

namespace omd::testing {
namespace {

constexpr char kUsage[] =
    "Attacks an omd (any HTTP/2 server) over raw TCP, and prints one line of "
    "key=value figures.\n\n"
    "Usage: omd_attack --attack=NAME --target=HOST:PORT [--pid=OMD_PID] [flags]\n\n"
    "Attacks:\n"
    "  rapid_reset     HEADERS then RST_STREAM on new streams, in a loop (CVE-2023-44487)\n"
    "  made_you_reset  HEADERS then WINDOW_UPDATE 0, so that the server resets\n"
    "  stalled         --connections x --streams requests, each with a message that\n"
    "                  never ends, held for --duration\n"
    "  huge_header     one request with a --bytes header value in CONTINUATION frames\n"
    "  continuation    an endless chain of small CONTINUATION frames (CVE-2023-33953)\n"
    "  hpack_bomb      one big HPACK table entry, referenced --references times per block\n"
    "  control         a PING or SETTINGS flood (--control), replies unread\n"
    "  hold            --connections plain TCP connections held for --duration, then a\n"
    "                  probe whether the server still answers (CVE-2023-4785)\n\n"
    "With --pid, omd_cpu_s is the CPU omd used during the attack, omd_cpu_after_s in the\n"
    "--after that followed, omd_rss_peak_kb its largest resident memory sampled during\n"
    "the attack. Exit status: 0 if the attack ran, 1 if it could not open any\n"
    "connection, 2 for bad flags.";

constexpr int kExitRan = 0;
constexpr int kExitNoConnection = 1;
constexpr int kExitUsage = 2;

absl::StatusOr<uint64_t> ParseByteCount(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  uint64_t multiplier = 1;
  if (!text.empty()) {
    switch (absl::ascii_toupper(static_cast<unsigned char>(text.back()))) {
      case 'K':
        multiplier = uint64_t{1} << 10;
        break;
      case 'M':
        multiplier = uint64_t{1} << 20;
        break;
      case 'G':
        multiplier = uint64_t{1} << 30;
        break;
      default:
        break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  uint64_t count = 0;
  if (!absl::SimpleAtoi(text, &count) || count > (uint64_t{1} << 34) / multiplier) {
    return absl::InvalidArgumentError(
        absl::StrCat("--bytes: not a size up to 16G: \"", text, "\""));
  }
  return count * multiplier;
}

// --bytes, or the attack's default.
absl::StatusOr<uint64_t> BytesFlag(uint64_t default_bytes) {
  const std::string bytes = absl::GetFlag(FLAGS_bytes);
  if (bytes.empty()) return default_bytes;
  return ParseByteCount(bytes);
}

// One attack's outcome: figures for the line, and whether it reached the server.
struct Outcome {
  std::string figures;
  bool connected = false;
};

// The daemon's side, with --pid.
class DaemonWatch {
 public:
  explicit DaemonWatch(pid_t pid) : pid_(pid) {
    absl::StatusOr<ProcessStats> before = ReadProcessStats(pid_);
    if (before.ok()) before_ = *before;
    sampler_ = std::make_unique<RssSampler>(pid_, absl::GetFlag(FLAGS_sample_interval));
  }

  // At the end of the attack, before its connections are closed.
  void AttackEnded() {
    if (end_.has_value()) return;
    absl::StatusOr<ProcessStats> end = ReadProcessStats(pid_);
    if (end.ok()) end_ = *end;
    sampler_->Stop();
  }

  std::string Figures() {
    AttackEnded();
    absl::SleepFor(absl::GetFlag(FLAGS_after));
    absl::StatusOr<ProcessStats> after = ReadProcessStats(pid_, /*count_fds=*/false);
    const auto kb = [](int64_t bytes) { return bytes < 0 ? int64_t{-1} : bytes / 1024; };
    if (!before_.has_value()) return absl::StrCat("omd_pid=", pid_, " omd_alive=0");
    std::string figures = absl::StrCat(
        "omd_pid=", pid_, " omd_alive=", after.ok() ? 1 : 0,
        " omd_rss_before_kb=", kb(before_->rss_bytes),
        " omd_rss_peak_kb=", kb(sampler_->max_rss_bytes()),
        " omd_rss_samples=", sampler_->samples(), " omd_threads_before=", before_->threads,
        " omd_threads_peak=", sampler_->max_threads(), " omd_fds_before=", before_->open_fds);
    if (end_.has_value()) {
      absl::StrAppend(&figures, " omd_cpu_s=",
                      absl::StrFormat("%.2f", end_->cpu_seconds - before_->cpu_seconds),
                      " omd_fds_end=", end_->open_fds);
      if (after.ok()) {
        absl::StrAppend(&figures, " omd_cpu_after_s=",
                        absl::StrFormat("%.2f", after->cpu_seconds - end_->cpu_seconds));
      }
    }
    if (after.ok()) absl::StrAppend(&figures, " omd_rss_after_kb=", kb(after->rss_bytes));
    return figures;
  }

 private:
  const pid_t pid_;
  std::optional<ProcessStats> before_;
  std::optional<ProcessStats> end_;
  std::unique_ptr<RssSampler> sampler_;
};

absl::StatusOr<ConnectOptions> ConnectFlags() {
  ConnectOptions connect;
  connect.target = absl::GetFlag(FLAGS_target);
  absl::StatusOr<std::vector<std::string>> sources =
      ParseSourceAddresses(absl::GetFlag(FLAGS_sources));
  if (!sources.ok()) return sources.status();
  connect.source_addresses = *std::move(sources);
  connect.rotate_sources = absl::GetFlag(FLAGS_rotate_sources);
  connect.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  connect.socket_send_buffer_bytes = absl::GetFlag(FLAGS_sndbuf);
  return connect;
}

RequestOptions RequestFlags() {
  RequestOptions request;
  request.path = absl::GetFlag(FLAGS_path);
  request.authority = absl::GetFlag(FLAGS_authority);
  return request;
}

absl::StatusOr<Outcome> FromStats(absl::StatusOr<AttackStats> stats) {
  if (!stats.ok()) return stats.status();
  return Outcome{stats->ToKeyValues(), stats->connections_opened > 0};
}

absl::StatusOr<Outcome> RunRapidReset(const ConnectOptions& connect, bool made_you_reset) {
  RapidResetOptions options;
  options.connect = connect;
  options.request = RequestFlags();
  options.connections = absl::GetFlag(FLAGS_connections);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.reconnect = absl::GetFlag(FLAGS_reconnect);
  options.made_you_reset = made_you_reset;
  return FromStats(RapidReset(options));
}

absl::StatusOr<Outcome> RunStalled(const ConnectOptions& connect) {
  absl::StatusOr<uint64_t> announced = BytesFlag(65000);
  if (!announced.ok()) return announced.status();
  if (*announced < 1000 || *announced > 0xffffffffu) {
    return absl::InvalidArgumentError("stalled: --bytes must be between 1000 and 4G-1");
  }
  StalledStreamsOptions options;
  options.connect = connect;
  options.request = RequestFlags();
  options.connections = absl::GetFlag(FLAGS_connections);
  options.streams_per_connection = absl::GetFlag(FLAGS_streams);
  options.announced_message_bytes = static_cast<uint32_t>(*announced);
  options.sent_message_bytes = static_cast<uint32_t>(*announced - 1000);
  options.hold = absl::GetFlag(FLAGS_duration);
  return FromStats(StalledStreams(options));
}

absl::StatusOr<Outcome> RunHugeHeader(const ConnectOptions& connect) {
  absl::StatusOr<uint64_t> bytes = BytesFlag(uint64_t{8} << 20);
  if (!bytes.ok()) return bytes.status();
  HugeHeaderOptions options;
  options.connect = connect;
  options.request = RequestFlags();
  options.header_value_bytes = *bytes;
  options.timeout = absl::GetFlag(FLAGS_duration);
  return FromStats(HugeHeader(options));
}

absl::StatusOr<Outcome> RunContinuation(const ConnectOptions& connect) {
  ContinuationFloodOptions options;
  options.connect = connect;
  options.request = RequestFlags();
  options.connections = absl::GetFlag(FLAGS_connections);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.reconnect = absl::GetFlag(FLAGS_reconnect);
  return FromStats(ContinuationFlood(options));
}

absl::StatusOr<Outcome> RunHpackBomb(const ConnectOptions& connect) {
  absl::StatusOr<uint64_t> bytes = BytesFlag(4000);
  if (!bytes.ok()) return bytes.status();
  const int64_t references = absl::GetFlag(FLAGS_references);
  if (references < 1) return absl::InvalidArgumentError("--references must be positive");
  HpackBombOptions options;
  options.connect = connect;
  options.request = RequestFlags();
  options.connections = absl::GetFlag(FLAGS_connections);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.entry_value_bytes = *bytes;
  options.references_per_block = static_cast<size_t>(references);
  options.reconnect = absl::GetFlag(FLAGS_reconnect);
  return FromStats(HpackBomb(options));
}

absl::StatusOr<Outcome> RunControl(const ConnectOptions& connect) {
  ControlFloodOptions options;
  const std::string kind = absl::GetFlag(FLAGS_control);
  if (kind == "ping") {
    options.kind = ControlFloodOptions::Kind::kPing;
  } else if (kind == "settings") {
    options.kind = ControlFloodOptions::Kind::kSettings;
  } else {
    return absl::InvalidArgumentError("--control must be ping or settings");
  }
  options.connect = connect;
  options.connections = absl::GetFlag(FLAGS_connections);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.read_replies = absl::GetFlag(FLAGS_read_replies);
  options.reconnect = absl::GetFlag(FLAGS_reconnect);
  return FromStats(ControlFlood(options));
}

std::string ProbeFigure(const ConnectOptions& connect, absl::Duration timeout) {
  absl::StatusOr<absl::Duration> took = ProbeHttp2Server(connect, timeout);
  if (took.ok()) return absl::StrFormat("ok_%.3fs", absl::ToDoubleSeconds(*took));
  return absl::AsciiStrToLower(absl::StatusCodeToString(took.status().code()));
}

// Holds the connections for --duration, then probes whether the server still
// serves HTTP/2 while they are held and once they are released.
absl::StatusOr<Outcome> RunHold(const ConnectOptions& connect, DaemonWatch* watch) {
  HoldOptions options;
  options.connect = connect;
  options.connections = absl::GetFlag(FLAGS_connections);
  options.send_preface = absl::GetFlag(FLAGS_preface);
  absl::StatusOr<std::unique_ptr<HeldConnections>> held = HeldConnections::Open(options);
  if (!held.ok()) return held.status();
  const absl::Time release_at = absl::Now() + absl::GetFlag(FLAGS_duration);
  // The probe leaves from the first source address, one the held connections use.
  const std::string during = ProbeFigure(connect, absl::Seconds(1));
  while (absl::Now() < release_at) {
    (*held)->CheckClosedByServer();
    absl::SleepFor(std::min(absl::Milliseconds(100), release_at - absl::Now()));
  }
  const int closed_by_server = (*held)->CheckClosedByServer();
  if (watch != nullptr) watch->AttackEnded();
  (*held)->Close();
  // The server notices the closes and frees its descriptors first.
  absl::SleepFor(absl::Milliseconds(500));
  const std::string after = ProbeFigure(connect, absl::Seconds(3));
  std::string figures = absl::StrCat(
      "attempted=", (*held)->attempted(), " connections_opened=", (*held)->opened(),
      " connect_failures=", (*held)->connect_failures(),
      " connections_closed_by_server=", closed_by_server,
      absl::StrFormat(" connecting_s=%.3f", absl::ToDoubleSeconds((*held)->connecting_took())),
      " probe_while_held=", during, " probe_after_release=", after);
  if (!(*held)->first_connect_error().empty()) {
    absl::StrAppend(&figures, " first_connect_error=",
                    absl::StrReplaceAll((*held)->first_connect_error(), {{" ", "_"}}));
  }
  return Outcome{figures, (*held)->opened() > 0};
}

int RunAttackCommand(const std::vector<char*>& positional) {
  if (positional.size() > 1) {
    std::fprintf(stderr, "omd_attack: unexpected argument %s (see --help)\n", positional[1]);
    return kExitUsage;
  }
  const std::string attack = absl::GetFlag(FLAGS_attack);
  absl::StatusOr<ConnectOptions> connect = ConnectFlags();
  if (!connect.ok()) {
    std::fprintf(stderr, "omd_attack: %s\n", connect.status().ToString().c_str());
    return kExitUsage;
  }
  const std::map<std::string, std::function<absl::StatusOr<Outcome>(DaemonWatch*)>> attacks = {
      {"rapid_reset", [&](DaemonWatch*) { return RunRapidReset(*connect, false); }},
      {"made_you_reset", [&](DaemonWatch*) { return RunRapidReset(*connect, true); }},
      {"stalled", [&](DaemonWatch*) { return RunStalled(*connect); }},
      {"huge_header", [&](DaemonWatch*) { return RunHugeHeader(*connect); }},
      {"continuation", [&](DaemonWatch*) { return RunContinuation(*connect); }},
      {"hpack_bomb", [&](DaemonWatch*) { return RunHpackBomb(*connect); }},
      {"control", [&](DaemonWatch*) { return RunControl(*connect); }},
      {"hold", [&](DaemonWatch* watch) { return RunHold(*connect, watch); }},
  };
  const auto found = attacks.find(attack);
  if (found == attacks.end()) {
    std::fprintf(stderr,
                 "omd_attack: --attack must be one of rapid_reset, made_you_reset, "
                 "stalled, huge_header, continuation, hpack_bomb, control, hold\n");
    return kExitUsage;
  }
  const int pid = absl::GetFlag(FLAGS_pid);
  std::unique_ptr<DaemonWatch> watch;
  if (pid > 0) watch = std::make_unique<DaemonWatch>(pid);
  absl::StatusOr<Outcome> outcome = found->second(watch.get());
  if (!outcome.ok()) {
    std::fprintf(stderr, "omd_attack: %s\n", outcome.status().ToString().c_str());
    return outcome.status().code() == absl::StatusCode::kInvalidArgument ? kExitUsage
                                                                         : kExitNoConnection;
  }
  std::string line = absl::StrCat("attack=", attack, " ", outcome->figures);
  if (watch != nullptr) absl::StrAppend(&line, " ", watch->Figures());
  std::printf("%s\n", line.c_str());
  return outcome->connected ? kExitRan : kExitNoConnection;
}

}  // namespace
}  // namespace omd::testing

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(omd::testing::kUsage);
  return omd::testing::RunAttackCommand(absl::ParseCommandLine(argc, argv));
}

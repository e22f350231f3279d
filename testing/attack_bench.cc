// attack_bench: the long attack runs whose figures go in docs/SECURITY.md. The
// quick sibling of testing/attack_test.cc's checks: each scenario runs on a fresh
// real omd (node1 of cluster "test", nodes node1 node2, node2 at 127.0.0.2) while a
// peer (node2, from 127.0.0.2: testing/peer_load.h) calls BlacklistStatus back to
// back, and prints one row of what it cost omd (CPU time, not wall time: the
// machine is shared), what the peer saw, and what the attack saw. Then the
// refusal costs: omd's CPU per message for valid calls and for each way it
// refuses a forger.
//
//   tools/attack                         # builds -c opt, runs every scenario
//   tools/attack --duration=10s --scenarios=rapid_reset,descriptors
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/agent_client.h"
#include "crypto/envelope.h"
#include "proto/omd.pb.h"
#include "sync/mutex.h"
#include "testing/daemon_harness.h"
#include "testing/http2_attack.h"
#include "testing/peer_load.h"
#include "testing/process_stats.h"

ABSL_FLAG(absl::Duration, duration, absl::Seconds(4),
          "How long each attack lasts (the floods), is held (stalled_*, descriptors) or "
          "is measured (cost_*). Not used by huge_header_* (until the server closes), "
          "stalled_patient_12s (12 s) and sigterm (SIGTERM after 1 s).");
ABSL_FLAG(absl::Duration, after, absl::Seconds(5),
          "How long omd's CPU keeps being measured after each attack, before its "
          "resident memory is read again.");
ABSL_FLAG(absl::Duration, sample_interval, absl::Milliseconds(10),
          "How often omd's resident memory is sampled for its peak.");
ABSL_FLAG(std::vector<std::string>, scenarios, {},
          "Comma-separated scenarios to run, in the order of --help; default: all.");
ABSL_FLAG(int, in_flight, 4,
          "cost_valid and cost_blacklisted: callers at once, each on its own "
          "connection.");
ABSL_FLAG(int, nofile, 256, "descriptors: omd's RLIMIT_NOFILE, lowered after its start.");
ABSL_FLAG(int, log_lines, 0,
          "After each row, print up to this many of the warnings and errors its omd "
          "logged.");

namespace omd::testing {
namespace {

constexpr char kUsage[] =
    "Attacks real omd processes for a while and prints what each attack cost them.\n\n"
    "Usage: attack_bench [--duration=4s] [--scenarios=a,b,...] [flags]\n"
    "(tools/attack builds it -c opt with omd and om, and runs it.)\n\n"
    "Each scenario starts a fresh omd (node1 of cluster \"test\", nodes node1 node2,\n"
    "[cluster] addr@node2 = 127.0.0.2) from the runfiles ($TEST_SRCDIR, by default this\n"
    "binary's .runfiles directory), under $TEST_TMPDIR (by default a temporary\n"
    "directory removed at exit). While an attack runs, a peer (node2, from 127.0.0.2)\n"
    "calls BlacklistStatus back to back, reconnecting when a call fails.\n\n"
    "Scenarios:\n"
    "  baseline             the peer alone, --duration\n"
    "  rapid_reset          HEADERS + RST_STREAM, 4 connections reconnecting from\n"
    "                       127.0.5.1-127.0.5.250 in turn (CVE-2023-44487)\n"
    "  made_you_reset       the same, with WINDOW_UPDATE 0 making the server reset\n"
    "  continuation         endless CONTINUATION chains, 4 connections (CVE-2023-33953)\n"
    "  control              a PING flood, replies unread, 4 connections\n"
    "  hpack_bomb           one HPACK table entry referenced 65,536 times per block\n"
    "  stalled_greedy       160 connections from 160 sources x 100 streams announcing\n"
    "                       65,000 bytes and sending 64,000, held --duration\n"
    "  stalled_patient      the same with 4 streams each\n"
    "  stalled_patient_12s  the same, held 12 s (past the outsiders' 10 s request\n"
    "                       timeout)\n"
    "  huge_header_8M       one request with an 8 MiB header value\n"
    "  huge_header_32M      the same, 32 MiB\n"
    "  descriptors          omd's RLIMIT_NOFILE lowered to --nofile after its start,\n"
    "                       --nofile + 50 connections (preface sent) held --duration\n"
    "                       from 127.0.7.1-127.0.7.250; meanwhile, whether om (local)\n"
    "                       and a fresh connection of node2's get in; then how long\n"
    "                       until an outsider's fresh connection (127.0.8.1) gets the\n"
    "                       server's SETTINGS (CVE-2023-4785)\n"
    "  descriptors_160      the same with RLIMIT_NOFILE 160, which the outsiders' 64\n"
    "                       connections (3 descriptors each) would exceed\n"
    "  sigterm              a rapid reset flood, SIGTERM after 1 s: time until omd exits\n"
    "Refusal costs (omd CPU per message, --duration each, without the peer, whose\n"
    "calls omd's CPU would count):\n"
    "  cost_idle            nothing: omd's own background CPU\n"
    "  cost_valid           (a) valid BlacklistStatus calls, node2 from 127.0.0.2,\n"
    "                       --in_flight callers\n"
    "  cost_blacklisted     (b) a forger (node2, wrong secret) from 127.0.0.2, a\n"
    "                       member's source: 5 messages decrypted and counted, then\n"
    "                       measured: every message refused as blacklisted\n"
    "  cost_banned          (c) an outsider (127.0.10.1, node2, wrong secret): 5\n"
    "                       messages ban its source; once the kernel drops it (1.5 s\n"
    "                       later), measured: connection attempts in batches of 200\n"
    "  cost_invalid_rotating (d) forged messages from ever new outsider sources\n"
    "                       (127.1.0.1 on), 4 per source on one connection: each\n"
    "                       decrypted and counted, none reaching the ban at 5\n\n"
    "Columns: omd_cpu_s, omd's CPU seconds (user + system, all threads) during the\n"
    "attack; after_s, in the --after that followed; peak_MB, its largest resident\n"
    "memory sampled every --sample_interval during the attack; after_MB, resident\n"
    "memory at the end of --after; the peer's calls, failed calls, median and 99th\n"
    "percentile latency (failed calls included); the attack's connections opened\n"
    "(reconnections included), closed by the server, and how long after the start\n"
    "the server first closed one. Notes: the attack's own figures.\n"
    "For cost_*: messages (cost_banned: connection attempts), their rate, omd's CPU\n"
    "seconds, microseconds of it per message, and the ratio to cost_valid's.\n\n"
    "What omd and its clients suffered is in the figures, not the exit status: 0 if\n"
    "every scenario ran as meant, 1 if one did not (see its notes: omd did not start\n"
    "or stop cleanly, an attack could not connect, a refusal cost could not be\n"
    "measured as described), 2 for bad flags.";

constexpr char kPath[] = "/omd.v1.Agent/BlacklistStatus";
constexpr char kWrongSecret[] = "not-the-cluster-secret-0123456789";
constexpr char kLocalSource[] = "127.0.0.1";
constexpr char kBannedOutsider[] = "127.0.10.1";
// cost_invalid_rotating's sources: 127.1.0.1 and on, last octets 1 to 254.
constexpr uint32_t kRotatingFirst = (127u << 24) | (1u << 16);
constexpr int kInvalidPerSource = 4;
constexpr int kBlacklistThreshold = 5;

// ---------------------------------------------------------------------------
// Figures and their rows.

struct Row {
  std::string scenario;
  std::optional<double> cpu_s;
  std::optional<double> cpu_after_s;
  std::optional<double> peak_mb;
  std::optional<double> after_mb;
  std::optional<PeerLatencies> peer;
  std::optional<AttackStats> attack;
  std::vector<std::string> notes;
  bool failed = false;  // the scenario could not run as meant
};

struct CostRow {
  std::string scenario;
  int64_t messages = 0;
  absl::Duration measured;
  std::optional<double> cpu_s;
  std::vector<std::string> notes;
  bool failed = false;
};

// The value with `decimals` decimals, or "-" if there is none.
std::string Or(const std::optional<double>& value, int decimals) {
  return value.has_value() ? absl::StrFormat("%.*f", decimals, *value) : "-";
}

std::string Ms(absl::Duration duration) {
  return absl::StrFormat("%.2f", absl::ToDoubleMilliseconds(duration));
}

std::string Seconds(absl::Duration duration) {
  if (duration == absl::InfiniteDuration()) return "-";
  return absl::StrFormat("%.3fs", absl::ToDoubleSeconds(duration));
}

std::string Mb(int64_t bytes) { return absl::StrFormat("%.1fMB", bytes / 1048576.0); }

void PrintHeader() {
  std::printf("%-20s %9s %7s %7s %8s %6s %5s %7s %7s %6s %6s %9s  %s\n", "scenario",
              "omd_cpu_s", "after_s", "peak_MB", "after_MB", "calls", "fail", "p50_ms",
              "p99_ms", "opened", "closed", "1st_close", "notes");
}

void PrintRow(const Row& row) {
  const std::string calls = row.peer ? absl::StrCat(row.peer->calls) : "-";
  const std::string failures = row.peer ? absl::StrCat(row.peer->failures) : "-";
  const std::string p50 = row.peer && row.peer->calls > 0 ? Ms(row.peer->p50) : "-";
  const std::string p99 = row.peer && row.peer->calls > 0 ? Ms(row.peer->p99) : "-";
  const std::string opened = row.attack ? absl::StrCat(row.attack->connections_opened) : "-";
  const std::string closed =
      row.attack ? absl::StrCat(row.attack->connections_closed_by_server) : "-";
  const std::string first_close =
      row.attack ? Seconds(row.attack->first_server_close_after) : "-";
  std::printf("%-20s %9s %7s %7s %8s %6s %5s %7s %7s %6s %6s %9s  %s\n", row.scenario.c_str(),
              Or(row.cpu_s, 2).c_str(), Or(row.cpu_after_s, 2).c_str(),
              Or(row.peak_mb, 1).c_str(), Or(row.after_mb, 1).c_str(),
              calls.c_str(), failures.c_str(), p50.c_str(), p99.c_str(), opened.c_str(),
              closed.c_str(), first_close.c_str(), absl::StrJoin(row.notes, "; ").c_str());
  std::fflush(stdout);
}

void PrintCostHeader() {
  std::printf("\n%-22s %9s %8s %9s %8s %7s  %s\n", "refusal cost", "messages", "msg/s",
              "omd_cpu_s", "us/msg", "x_valid", "notes");
}

void PrintCostRow(const CostRow& row, std::optional<double> valid_us) {
  std::optional<double> us;
  if (row.cpu_s.has_value() && row.messages > 0) us = *row.cpu_s * 1e6 / row.messages;
  std::optional<double> ratio;
  if (us.has_value() && valid_us.has_value() && *valid_us > 0) ratio = *us / *valid_us;
  const double seconds = absl::ToDoubleSeconds(row.measured);
  const std::string rate =
      seconds > 0 ? absl::StrFormat("%.0f", row.messages / seconds) : std::string("-");
  std::printf("%-22s %9lld %8s %9s %8s %7s  %s\n", row.scenario.c_str(),
              static_cast<long long>(row.messages), rate.c_str(), Or(row.cpu_s, 2).c_str(),
              Or(us, 1).c_str(), Or(ratio, 2).c_str(),
              absl::StrJoin(row.notes, "; ").c_str());
  std::fflush(stdout);
}

std::optional<double> CostMicros(const CostRow& row) {
  if (!row.cpu_s.has_value() || row.messages <= 0) return std::nullopt;
  return *row.cpu_s * 1e6 / row.messages;
}

// ---------------------------------------------------------------------------
// The daemon under attack, and what it costs.

absl::StatusOr<std::unique_ptr<DaemonProcess>> StartOmd() {
  DaemonProcess::Options options;
  options.node.node_name = "node1";
  options.node.cluster_nodes = {"node1", "node2"};
  options.node.node_addresses = {{"node2", kPeerSource}};
  return DaemonProcess::Start(options);
}

std::optional<double> CpuSeconds(pid_t pid) {
  absl::StatusOr<double> cpu = ProcessCpuSeconds(pid);
  if (!cpu.ok()) return std::nullopt;
  return *cpu;
}

ConnectOptions From(const DaemonProcess& daemon, absl::string_view sources) {
  ConnectOptions connect;
  connect.target = daemon.address();
  connect.source_addresses = ParseSourceAddresses(sources).value();
  return connect;
}

// Measures omd from construction (with the peer calling, if asked) to
// AttackEnded, then for --after.
class Watch {
 public:
  Watch(const DaemonProcess& daemon, bool with_peer) : pid_(daemon.pid()) {
    if (with_peer) {
      peer_ = std::make_unique<PeerLoad>(daemon.address());
      absl::SleepFor(absl::Milliseconds(100));  // its connection is up
    }
    sampler_ = std::make_unique<RssSampler>(pid_, absl::GetFlag(FLAGS_sample_interval));
    start_cpu_ = CpuSeconds(pid_);
  }

  // The attack is over: omd's CPU and peak memory during it, the peer's calls.
  void AttackEnded(Row* row) {
    if (ended_) return;
    ended_ = true;
    end_cpu_ = CpuSeconds(pid_);
    if (start_cpu_ && end_cpu_) row->cpu_s = *end_cpu_ - *start_cpu_;
    sampler_->Stop();
    row->peak_mb = sampler_->max_rss_bytes() / 1048576.0;
    if (peer_ != nullptr) {
      row->peer = peer_->Stop();
      if (row->peer->failures > 0) {
        row->notes.push_back(absl::StrCat("peer's first failure: ", row->peer->first_failure));
      }
    }
  }

  // Waits --after: omd's CPU meanwhile, its resident memory at the end.
  void After(Row* row) {
    AttackEnded(row);
    absl::SleepFor(absl::GetFlag(FLAGS_after));
    absl::StatusOr<ProcessStats> after = ReadProcessStats(pid_, /*count_fds=*/false);
    if (!after.ok()) {
      row->notes.push_back("omd is gone");
      row->failed = true;
      return;
    }
    if (end_cpu_) row->cpu_after_s = after->cpu_seconds - *end_cpu_;
    row->after_mb = after->rss_bytes / 1048576.0;
  }

 private:
  const pid_t pid_;
  std::unique_ptr<PeerLoad> peer_;
  std::unique_ptr<RssSampler> sampler_;
  std::optional<double> start_cpu_;
  std::optional<double> end_cpu_;
  bool ended_ = false;
};

// The attack's figures, or why it did not run.
void Record(Row* row, const absl::StatusOr<AttackStats>& stats) {
  if (!stats.ok()) {
    row->failed = true;
    row->notes.push_back(absl::StrCat("attack: ", stats.status().ToString()));
    return;
  }
  row->attack = *stats;
  if (stats->connections_opened == 0) row->failed = true;
  if (stats->connect_failures > 0) {
    row->notes.push_back(absl::StrCat(stats->connect_failures, " connects failed (",
                                      stats->first_connect_error, ")"));
  }
}

std::string PerSecond(int64_t count, absl::Duration elapsed) {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  return seconds > 0 ? absl::StrFormat("%.0f/s", count / seconds) : "-";
}

// Warnings and errors in omd's log: "2026-11-25T01:02:03.456Z W message".
std::vector<std::string> LoggedProblems(const DaemonProcess& daemon) {
  std::vector<std::string> problems;
  for (absl::string_view line : absl::StrSplit(daemon.Log(), '\n')) {
    std::vector<absl::string_view> words = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    if (words.size() == 3 && (words[1] == "W" || words[1] == "E")) {
      problems.emplace_back(line);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------
// The attack scenarios.

// What the local node (node1, from 127.0.0.1) reads of the blacklist.
absl::StatusOr<v1::BlacklistStatusReply> BlacklistOf(const DaemonProcess& daemon);

// "blacklist: 12 entries (10x1, 2x5 invalid), 2 blocked": whether, and how much,
// an attack got counted.
std::string BlacklistSummary(const DaemonProcess& daemon, int* blocked_entries = nullptr) {
  absl::StatusOr<v1::BlacklistStatusReply> blacklist = BlacklistOf(daemon);
  if (!blacklist.ok()) return absl::StrCat("blacklist status: ", blacklist.status().ToString());
  std::map<uint32_t, int> by_count;
  int blocked = 0;
  for (const v1::BlacklistEntry& entry : blacklist->entries()) {
    ++by_count[entry.invalid_messages()];
    blocked += entry.blocked();
  }
  if (blocked_entries != nullptr) *blocked_entries = blocked;
  std::vector<std::string> counts;
  for (const auto& [count, entries] : by_count) counts.push_back(absl::StrCat(entries, "x", count));
  return absl::StrCat("blacklist: ", blacklist->entries_size(), " entries",
                      counts.empty() ? "" : absl::StrCat(" (", absl::StrJoin(counts, ", "),
                                                         " invalid)"),
                      ", ", blocked, " blocked");
}


Row Baseline(DaemonProcess& daemon) {
  Row row;
  Watch watch(daemon, /*with_peer=*/true);
  absl::SleepFor(absl::GetFlag(FLAGS_duration));
  watch.After(&row);
  row.notes.push_back(BlacklistSummary(daemon));
  return row;
}

Row Flood(DaemonProcess& daemon, const std::function<absl::StatusOr<AttackStats>()>& attack,
          const std::function<std::vector<std::string>(const AttackStats&)>& notes) {
  Row row;
  Watch watch(daemon, /*with_peer=*/true);
  absl::StatusOr<AttackStats> stats = attack();
  watch.AttackEnded(&row);
  Record(&row, stats);
  if (stats.ok()) {
    std::vector<std::string> more = notes(*stats);
    more.insert(more.begin(), absl::StrCat("attack lasted ", Seconds(stats->elapsed)));
    row.notes.insert(row.notes.begin(), more.begin(), more.end());
  }
  watch.After(&row);
  row.notes.push_back(BlacklistSummary(daemon));
  return row;
}

std::vector<std::string> ResetNotes(const AttackStats& stats) {
  std::vector<std::string> notes = {
      absl::StrCat(stats.streams_opened, " streams sent (",
                   PerSecond(stats.streams_opened, stats.elapsed), ")"),
      absl::StrCat(stats.resets_sent, " resets sent, ", stats.resets_received, " received"),
      absl::StrCat(stats.goaways_received, " GOAWAYs")};
  if (stats.connections_closed_by_server > 0) {
    notes.push_back(absl::StrCat("closed conns lived ",
                                 Seconds(stats.closed_connection_lifetime_median),
                                 " median, ", Seconds(stats.closed_connection_lifetime_max),
                                 " max"));
  }
  return notes;
}

Row RapidResetScenario(DaemonProcess& daemon, bool made_you_reset) {
  return Flood(
      daemon,
      [&] {
        RapidResetOptions attack;
        attack.connect = From(daemon, "127.0.5.1-127.0.5.250");
        attack.connections = 4;
        attack.duration = absl::GetFlag(FLAGS_duration);
        attack.made_you_reset = made_you_reset;
        return RapidReset(attack);
      },
      ResetNotes);
}

Row ContinuationScenario(DaemonProcess& daemon) {
  return Flood(
      daemon,
      [&] {
        ContinuationFloodOptions attack;
        attack.connect = From(daemon, "127.0.5.1-127.0.5.250");
        attack.connections = 4;
        attack.duration = absl::GetFlag(FLAGS_duration);
        return ContinuationFlood(attack);
      },
      [](const AttackStats& stats) {
        return std::vector<std::string>{
            absl::StrCat(Mb(stats.header_block_bytes_sent), " of header blocks in ",
                         stats.frames_sent, " frames"),
            absl::StrCat("closed conns lived ", Seconds(stats.closed_connection_lifetime_median),
                         " median, ", Seconds(stats.closed_connection_lifetime_max), " max")};
      });
}

Row ControlScenario(DaemonProcess& daemon) {
  return Flood(
      daemon,
      [&] {
        ControlFloodOptions attack;
        attack.connect = From(daemon, "127.0.5.1-127.0.5.250");
        attack.kind = ControlFloodOptions::Kind::kPing;
        attack.connections = 4;
        attack.duration = absl::GetFlag(FLAGS_duration);
        attack.read_replies = false;
        return ControlFlood(attack);
      },
      [](const AttackStats& stats) {
        return std::vector<std::string>{
            absl::StrCat(stats.control_frames_sent, " control frames sent (",
                         PerSecond(stats.control_frames_sent, stats.elapsed), ")"),
            absl::StrCat(stats.ping_acks_received, " PING ACKs read"),
            absl::StrCat("closed conns lived ", Seconds(stats.closed_connection_lifetime_median),
                         " median")};
      });
}

Row HpackBombScenario(DaemonProcess& daemon) {
  return Flood(
      daemon,
      [&] {
        HpackBombOptions attack;
        attack.connect = From(daemon, "127.0.5.1-127.0.5.250");
        attack.connections = 4;
        attack.duration = absl::GetFlag(FLAGS_duration);
        return HpackBomb(attack);
      },
      [](const AttackStats& stats) {
        return std::vector<std::string>{
            absl::StrCat(stats.streams_opened, " streams, ", Mb(stats.header_block_bytes_sent),
                         " of header blocks"),
            absl::StrCat(stats.headers_received, " HEADERS, ", stats.resets_received,
                         " RST_STREAM, ", stats.goaways_received, " GOAWAYs received"),
            absl::StrCat("closed conns lived ", Seconds(stats.closed_connection_lifetime_median),
                         " median")};
      });
}

Row StalledScenario(DaemonProcess& daemon, int streams, absl::Duration hold) {
  return Flood(
      daemon,
      [&] {
        StalledStreamsOptions attack;
        attack.connect = From(daemon, "127.0.6.1-127.0.6.160");
        attack.connections = 160;
        attack.streams_per_connection = streams;
        attack.announced_message_bytes = 65000;
        attack.sent_message_bytes = 64000;
        attack.hold = hold;
        return StalledStreams(attack);
      },
      [](const AttackStats& stats) {
        return std::vector<std::string>{
            absl::StrCat(stats.streams_opened, " streams, ", Mb(stats.data_bytes_sent),
                         " of DATA sent"),
            absl::StrCat("closed conns lived ", Seconds(stats.closed_connection_lifetime_min),
                         " min, ", Seconds(stats.closed_connection_lifetime_median),
                         " median, ", Seconds(stats.closed_connection_lifetime_max), " max")};
      });
}

Row HugeHeaderScenario(DaemonProcess& daemon, size_t bytes) {
  return Flood(
      daemon,
      [&] {
        HugeHeaderOptions attack;
        attack.connect = From(daemon, "127.0.5.50");
        attack.header_value_bytes = bytes;
        return HugeHeader(attack);
      },
      [](const AttackStats& stats) {
        return std::vector<std::string>{
            absl::StrCat(Mb(stats.header_block_bytes_sent), " of the header block sent"),
            absl::StrCat("server closed after ", Seconds(stats.first_server_close_after)),
            absl::StrCat(stats.headers_received, " HEADERS, ", stats.resets_received,
                         " RST_STREAM, ", stats.goaways_received, " GOAWAYs received")};
      });
}

Row DescriptorsScenario(DaemonProcess& daemon, int nofile) {
  Row row;
  const rlimit low = {static_cast<rlim_t>(nofile), static_cast<rlim_t>(nofile)};
  if (prlimit(daemon.pid(), RLIMIT_NOFILE, &low, nullptr) != 0) {
    row.failed = true;
    row.notes.push_back(absl::StrCat("prlimit: ", std::strerror(errno)));
    return row;
  }
  absl::StatusOr<ProcessStats> at_start = ReadProcessStats(daemon.pid());
  Watch watch(daemon, /*with_peer=*/true);
  const absl::Time start = absl::Now();
  HoldOptions hold;
  hold.connect = From(daemon, "127.0.7.1-127.0.7.250");
  hold.connections = nofile + 50;
  hold.send_preface = true;
  absl::StatusOr<std::unique_ptr<HeldConnections>> held = HeldConnections::Open(hold);
  if (!held.ok()) {
    watch.AttackEnded(&row);
    row.failed = true;
    row.notes.push_back(absl::StrCat("hold: ", held.status().ToString()));
    return row;
  }
  absl::SleepFor(absl::Milliseconds(300));  // omd has accepted what it will
  absl::StatusOr<ProcessStats> holding = ReadProcessStats(daemon.pid());
  const absl::Time om_start = absl::Now();
  OmResult om = RunOm(daemon.root(), {"daemon", "blacklist", "status"});
  const absl::Duration om_took = absl::Now() - om_start;
  // A fresh connection of node2's (the peer's own is older than the flood).
  const absl::StatusOr<absl::Duration> member =
      ProbeHttp2Server(From(daemon, kPeerSource), absl::Seconds(1));
  const absl::Time release_at = start + absl::GetFlag(FLAGS_duration);
  while (absl::Now() < release_at) {
    (*held)->CheckClosedByServer();
    absl::SleepFor(std::min(absl::Milliseconds(100), release_at - absl::Now()));
  }
  const int closed_by_server = (*held)->CheckClosedByServer();
  watch.AttackEnded(&row);
  (*held)->Close();
  const absl::Time released = absl::Now();
  absl::Status outsider = absl::UnavailableError("not tried");
  int probes = 0;
  while (!outsider.ok() && absl::Now() - released < absl::Seconds(10)) {
    ++probes;
    outsider = ProbeHttp2Server(From(daemon, "127.0.8.1"), absl::Seconds(1)).status();
    if (!outsider.ok()) absl::SleepFor(absl::Milliseconds(10));
  }
  const absl::Duration outsider_after = absl::Now() - released;

  AttackStats stats;
  stats.connections_opened = (*held)->opened();
  stats.connect_failures = (*held)->connect_failures();
  stats.connections_closed_by_server = closed_by_server;
  row.attack = stats;
  row.notes.push_back(absl::StrCat("nofile ", nofile, ", ", (*held)->attempted(),
                                   " connects in ", Seconds((*held)->connecting_took())));
  if ((*held)->connect_failures() > 0) {
    row.notes.push_back(absl::StrCat((*held)->connect_failures(), " connects failed (",
                                     (*held)->first_connect_error(), ")"));
  }
  if (at_start.ok() && holding.ok()) {
    row.notes.push_back(absl::StrCat("omd fds ", at_start->open_fds, " before, ",
                                     holding->open_fds, " while held"));
  }
  row.notes.push_back(om.exit_code == 0
                          ? absl::StrCat("om served in ", Seconds(om_took))
                          : absl::StrCat("om FAILED (exit ", om.exit_code, ", ",
                                         Seconds(om_took), "): ",
                                         absl::StripAsciiWhitespace(om.stderr_text)));
  row.notes.push_back(member.ok() ? absl::StrCat("a new member connection served in ",
                                                 Seconds(*member))
                                  : absl::StrCat("a new member connection NOT served: ",
                                                 member.status().ToString()));
  row.notes.push_back(outsider.ok()
                          ? absl::StrCat("outsider's SETTINGS ", Seconds(outsider_after),
                                         " after release (", probes, " probes)")
                          : absl::StrCat("outsider NOT served ", Seconds(outsider_after),
                                         " after release: ", outsider.ToString()));
  const bool exhausted =
      absl::StrContains(daemon.Log(), "accept: out of file descriptors");
  row.notes.push_back(exhausted ? "omd logged descriptor exhaustion"
                                : "omd did NOT run out of descriptors");
  watch.After(&row);
  row.notes.push_back(BlacklistSummary(daemon));
  return row;
}

Row SigtermScenario(DaemonProcess& daemon) {
  Row row;
  Watch watch(daemon, /*with_peer=*/true);
  std::optional<absl::StatusOr<AttackStats>> stats;
  std::thread flood([&] {
    RapidResetOptions attack;
    attack.connect = From(daemon, "127.0.5.1-127.0.5.250");
    attack.connections = 4;
    attack.duration = absl::Seconds(4);
    stats = RapidReset(attack);
  });
  absl::SleepFor(absl::Seconds(1));
  watch.AttackEnded(&row);
  const absl::Time signalled = absl::Now();
  const absl::Status stopped = daemon.Stop();  // SIGTERM, then waits for the exit
  const absl::Duration took = absl::Now() - signalled;
  flood.join();
  Record(&row, *stats);
  row.notes.insert(row.notes.begin(),
                   stopped.ok() ? absl::StrCat("SIGTERM after 1 s: omd exited 0 after ",
                                               Seconds(took))
                                : absl::StrCat("SIGTERM after 1 s: ", stopped.ToString(),
                                               " after ", Seconds(took)));
  if (!stopped.ok()) row.failed = true;
  return row;
}

// ---------------------------------------------------------------------------
// Refusal costs: clients and raw forgers.

absl::StatusOr<std::unique_ptr<client::AgentClient>> ClientFrom(const DaemonProcess& daemon,
                                                                const std::string& source,
                                                                const std::string& nodename,
                                                                const std::string& secret) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ChannelFromSource(source, daemon.address());
  if (!channel.ok()) return channel.status();
  client::AgentClient::Options options;
  options.channel = *channel;
  options.envelope.cluster = "test";
  options.envelope.nodename = nodename;
  options.envelope.secrets = {{1, secret}};
  options.recipient = "node1";
  options.reply_senders = {"node1"};
  options.timeout = absl::Seconds(5);
  return client::AgentClient::Create(std::move(options));
}

absl::Status CallOnce(client::AgentClient& client) {
  return client.Call<v1::BlacklistStatusReply>("BlacklistStatus", v1::BlacklistStatusRequest())
      .status();
}

// What the local node (node1, from 127.0.0.1) reads of the blacklist.
absl::StatusOr<v1::BlacklistStatusReply> BlacklistOf(const DaemonProcess& daemon) {
  absl::StatusOr<std::unique_ptr<client::AgentClient>> local =
      ClientFrom(daemon, kLocalSource, "node1", kTestSecret);
  if (!local.ok()) return local.status();
  return (*local)->Call<v1::BlacklistStatusReply>("BlacklistStatus",
                                                   v1::BlacklistStatusRequest());
}

std::string CodeCounts(const std::map<std::string, int64_t>& by_code) {
  std::vector<std::string> parts;
  for (const auto& [code, count] : by_code) parts.push_back(absl::StrCat(count, " ", code));
  return absl::StrJoin(parts, ", ");
}

// `clients` call BlacklistStatus back to back, one thread each, for `duration`.
std::map<std::string, int64_t> CallBackToBack(
    std::vector<std::unique_ptr<client::AgentClient>>& clients, absl::Duration duration) {
  sync::Mutex mutex;
  std::map<std::string, int64_t> by_code;
  const absl::Time deadline = absl::Now() + duration;
  std::vector<std::thread> threads;
  for (auto& client : clients) {
    threads.emplace_back([&, caller = client.get()] {
      std::map<std::string, int64_t> mine;
      while (absl::Now() < deadline) {
        ++mine[absl::StatusCodeToString(CallOnce(*caller).code())];
      }
      sync::MutexLock lock(&mutex);
      for (const auto& [code, count] : mine) by_code[code] += count;
    });
  }
  for (std::thread& thread : threads) thread.join();
  return by_code;
}

int64_t Total(const std::map<std::string, int64_t>& by_code) {
  int64_t total = 0;
  for (const auto& [code, count] : by_code) total += count;
  return total;
}

CostRow Idle(DaemonProcess& daemon) {
  CostRow row;
  const std::optional<double> before = CpuSeconds(daemon.pid());
  const absl::Time start = absl::Now();
  absl::SleepFor(absl::GetFlag(FLAGS_duration));
  const std::optional<double> after = CpuSeconds(daemon.pid());
  row.measured = absl::Now() - start;
  if (before && after) {
    row.cpu_s = *after - *before;
    row.notes.push_back(absl::StrFormat("%.1f ms of CPU per second, nothing connected",
                                        *row.cpu_s * 1e3 / absl::ToDoubleSeconds(row.measured)));
  }
  return row;
}

// (a) and (b): --in_flight callers from node2's source, each on a connection of its
// own, with the cluster's secret or not.
CostRow MemberCalls(DaemonProcess& daemon, bool forged) {
  CostRow row;
  const std::string secret = forged ? kWrongSecret : kTestSecret;
  std::vector<std::unique_ptr<client::AgentClient>> clients;
  for (int i = 0; i < std::max(1, absl::GetFlag(FLAGS_in_flight)); ++i) {
    absl::StatusOr<std::unique_ptr<client::AgentClient>> client =
        ClientFrom(daemon, kPeerSource, "node2", secret);
    if (!client.ok()) {
      row.failed = true;
      row.notes.push_back(client.status().ToString());
      return row;
    }
    clients.push_back(*std::move(client));
  }
  if (forged) {
    // The forger's first messages are decrypted, and counted: the 5th blocks it.
    std::map<std::string, int64_t> first;
    for (int i = 0; i < kBlacklistThreshold; ++i) {
      ++first[absl::StatusCodeToString(CallOnce(*clients[0]).code())];
    }
    row.notes.push_back(absl::StrCat("first ", kBlacklistThreshold, ": ", CodeCounts(first)));
  }
  // Every connection's first call, outside the measurement.
  for (auto& client : clients) CallOnce(*client).IgnoreError();

  const std::optional<double> before = CpuSeconds(daemon.pid());
  const absl::Time start = absl::Now();
  const std::map<std::string, int64_t> by_code =
      CallBackToBack(clients, absl::GetFlag(FLAGS_duration));
  const std::optional<double> after = CpuSeconds(daemon.pid());
  row.measured = absl::Now() - start;
  if (before && after) row.cpu_s = *after - *before;
  row.messages = Total(by_code);
  row.notes.push_back(absl::StrCat("measured: ", CodeCounts(by_code)));
  const std::string expected = forged ? "PERMISSION_DENIED" : "OK";
  if (by_code.size() != 1 || by_code.begin()->first != expected) {
    row.notes.push_back(absl::StrCat("NOT all ", expected));
    row.failed = true;
  }
  if (forged) {
    absl::StatusOr<v1::BlacklistStatusReply> blacklist = BlacklistOf(daemon);
    if (blacklist.ok()) {
      for (const v1::BlacklistEntry& entry : blacklist->entries()) {
        row.notes.push_back(absl::StrCat("entry ", entry.nodename(), "@", entry.address(), " ",
                                         entry.invalid_messages(), " invalid",
                                         entry.blocked() ? ", blocked" : ""));
      }
    }
  }
  return row;
}

uint32_t Ipv4(const std::string& text) {
  in_addr address{};
  inet_pton(AF_INET, text.c_str(), &address);
  return ntohl(address.s_addr);
}

std::string Ipv4Text(uint32_t host_order) {
  in_addr address{};
  address.s_addr = htonl(host_order);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &address, text, sizeof(text));
  return text;
}

// The next address of 127.1.0.1, 127.1.0.2, ... whose last octet is 1 to 254.
uint32_t NextRotatingSource(uint32_t address) {
  do {
    ++address;
  } while ((address & 0xff) == 0 || (address & 0xff) == 255);
  return address;
}

// A forged request from an outsider: node2's name, the wrong secret, sealed
// afresh (a random nonce and request id) with the connection's salt.
class Forger {
 public:
  explicit Forger(const std::string& target) : target_(target), codec_(EnvelopeFor()) {
    header_block_ = EncodeHeaderBlock(GrpcRequestHeaders(RequestOptions(), target_));
  }

  // The client preface, an empty SETTINGS, and `requests` forged calls on streams
  // 1, 3, 5...
  std::string Connection(int requests) const {
    const std::string salt = crypto::EnvelopeCodec::NewSalt();
    std::string out(http2::kClientPreface);
    http2::AppendFrame(&out, http2::kSettings, 0, 0, "");
    for (int i = 0; i < requests; ++i) {
      const uint32_t stream = 1 + 2 * static_cast<uint32_t>(i);
      const std::string envelope =
          codec_
              .Seal(crypto::Direction::kRequest, kPath, "node1", salt,
                    v1::BlacklistStatusRequest().SerializeAsString())
              .value()
              .SerializeAsString();
      std::string message(1, '\0');  // not compressed
      message += http2::BigEndian32(static_cast<uint32_t>(envelope.size()));
      message += envelope;
      http2::AppendFrame(&out, http2::kHeaders, http2::kFlagEndHeaders, stream, header_block_);
      http2::AppendFrame(&out, http2::kData, http2::kFlagEndStream, stream, message);
    }
    return out;
  }

 private:
  static crypto::EnvelopeOptions EnvelopeFor() {
    crypto::EnvelopeOptions options;
    options.cluster = "test";
    options.nodename = "node2";
    options.secrets = {{1, kWrongSecret}};
    return options;
  }

  const std::string target_;
  crypto::EnvelopeCodec codec_;
  std::string header_block_;
};

struct Exchange {
  bool connected = false;
  bool settings = false;  // the server's SETTINGS came: it served the connection
  int answers = 0;        // streams the server ended (HEADERS with END_STREAM)
  bool closed_by_server = false;
  std::string error;
};

// One connection from `source`: sends `bytes`, acknowledges the server's SETTINGS
// and PINGs, and reads until `answers` streams are answered, the server closes,
// or `timeout`. Closed with a reset, so that no TIME_WAIT piles up.
Exchange RawExchange(uint32_t source, const sockaddr_in& target, const std::string& bytes,
                     int answers, absl::Duration timeout) {
  Exchange result;
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    result.error = absl::StrCat("socket: ", std::strerror(errno));
    return result;
  }
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl(source);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&from), sizeof(from)) != 0 ||
      connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0) {
    result.error = absl::StrCat("connect from ", Ipv4Text(source), ": ", std::strerror(errno));
    close(fd);
    return result;
  }
  result.connected = true;
  const int on = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  const linger abort_on_close = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
  const auto send_all = [fd](absl::string_view out) {
    while (!out.empty()) {
      const ssize_t sent = send(fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent <= 0) return false;
      out.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  };
  if (!send_all(bytes)) result.closed_by_server = true;
  const absl::Time deadline = absl::Now() + timeout;
  std::string inbox;
  while (!result.closed_by_server && result.answers < answers) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      result.error = "timed out";
      break;
    }
    pollfd readable{fd, POLLIN, 0};
    if (poll(&readable, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) continue;
    char buffer[16384];
    const ssize_t received = recv(fd, buffer, sizeof(buffer), 0);
    if (received < 0 && errno == EINTR) continue;
    if (received <= 0) {
      result.closed_by_server = true;
      break;
    }
    inbox.append(buffer, static_cast<size_t>(received));
    size_t at = 0;
    std::string replies;
    while (inbox.size() - at >= http2::kFrameHeaderBytes) {
      const auto byte = [&](size_t i) { return static_cast<uint8_t>(inbox[at + i]); };
      const size_t length = (size_t{byte(0)} << 16) | (size_t{byte(1)} << 8) | byte(2);
      if (inbox.size() - at < http2::kFrameHeaderBytes + length) break;
      const uint8_t type = byte(3);
      const uint8_t flags = byte(4);
      const absl::string_view payload =
          absl::string_view(inbox).substr(at + http2::kFrameHeaderBytes, length);
      if (type == http2::kSettings && (flags & http2::kFlagAck) == 0) {
        result.settings = true;
        http2::AppendFrame(&replies, http2::kSettings, http2::kFlagAck, 0, "");
      } else if (type == http2::kPing && (flags & http2::kFlagAck) == 0) {
        http2::AppendFrame(&replies, http2::kPing, http2::kFlagAck, 0, payload);
      } else if (type == http2::kHeaders && (flags & http2::kFlagEndStream) != 0) {
        ++result.answers;
      } else if (type == http2::kGoaway) {
        result.closed_by_server = true;
      }
      at += http2::kFrameHeaderBytes + length;
    }
    inbox.erase(0, at);
    if (!replies.empty() && !send_all(replies)) result.closed_by_server = true;
  }
  close(fd);
  return result;
}

absl::StatusOr<sockaddr_in> TargetAddress(const DaemonProcess& daemon) {
  std::vector<std::string> host_port = absl::StrSplit(daemon.address(), ':');
  int port = 0;
  sockaddr_in target{};
  target.sin_family = AF_INET;
  if (host_port.size() != 2 || !absl::SimpleAtoi(host_port[1], &port) ||
      inet_pton(AF_INET, host_port[0].c_str(), &target.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not IPv4 host:port: ", daemon.address()));
  }
  target.sin_port = htons(static_cast<uint16_t>(port));
  return target;
}

// (c): an outsider's 5 forged messages ban its source; once the daemon has the
// kernel drop it, each attempt is a SYN that never gets an answer.
CostRow BannedOutsider(DaemonProcess& daemon) {
  CostRow row;
  absl::StatusOr<sockaddr_in> target = TargetAddress(daemon);
  if (!target.ok()) {
    row.failed = true;
    row.notes.push_back(target.status().ToString());
    return row;
  }
  const Forger forger(daemon.address());
  const uint32_t source = Ipv4(kBannedOutsider);
  const Exchange first =
      RawExchange(source, *target, forger.Connection(kBlacklistThreshold), kBlacklistThreshold,
                  absl::Seconds(5));
  row.notes.push_back(absl::StrCat("first ", kBlacklistThreshold, " on one connection: ",
                                   first.answers, " answered",
                                   first.error.empty() ? "" : ", " + first.error));
  // The ban applies to new connections at once (existing ones go within 0.5 s).
  const absl::Time banned_by = absl::Now() + absl::Seconds(2);
  bool banned = false;
  while (!banned && absl::Now() < banned_by) {
    const Exchange probe = RawExchange(source, *target, forger.Connection(1), 1, absl::Seconds(1));
    banned = probe.connected && !probe.settings && probe.closed_by_server;
  }
  if (!banned) {
    row.failed = true;
    row.notes.push_back("the source was NOT banned");
    return row;
  }

  // Within a second the daemon has the kernel drop the source (a socket filter):
  // its attempts then never complete. Measured once the filter is in: batches of
  // non-blocking connects (SYNs), each given 20 ms to complete.
  absl::SleepFor(absl::Milliseconds(1500));
  int64_t attempts = 0, completed = 0;
  const std::optional<double> before = CpuSeconds(daemon.pid());
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::GetFlag(FLAGS_duration);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  from.sin_addr.s_addr = htonl(source);
  while (absl::Now() < deadline) {
    std::vector<pollfd> batch;
    for (int i = 0; i < 200; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) break;
      bind(fd, reinterpret_cast<const sockaddr*>(&from), sizeof(from));
      connect(fd, reinterpret_cast<const sockaddr*>(&*target), sizeof(*target));
      batch.push_back({fd, POLLOUT, 0});
      ++attempts;
    }
    poll(batch.data(), batch.size(), 20);
    for (const pollfd& attempt : batch) {
      int error = -1;
      socklen_t length = sizeof(error);
      if ((attempt.revents & POLLOUT) &&
          getsockopt(attempt.fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0) {
        ++completed;
      }
      close(attempt.fd);
    }
  }
  const std::optional<double> after = CpuSeconds(daemon.pid());
  row.measured = absl::Now() - start;
  if (before && after) row.cpu_s = *after - *before;
  row.messages = attempts;
  row.notes.push_back(absl::StrCat("then, the kernel's filter in: ", attempts,
                                   " connection attempts, ", completed, " completed"));
  if (completed > 0) row.failed = true;
  return row;
}

// (d): forged messages from ever new outsider sources, 4 per source on one
// connection: each is decrypted and counted, and no source reaches the ban.
CostRow RotatingInvalid(DaemonProcess& daemon) {
  CostRow row;
  absl::StatusOr<sockaddr_in> target = TargetAddress(daemon);
  if (!target.ok()) {
    row.failed = true;
    row.notes.push_back(target.status().ToString());
    return row;
  }
  const Forger forger(daemon.address());
  int64_t connections = 0, answered = 0, short_connections = 0;
  std::string first_error;
  uint32_t source = kRotatingFirst;
  const std::optional<double> before = CpuSeconds(daemon.pid());
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::GetFlag(FLAGS_duration);
  while (absl::Now() < deadline && source < kRotatingFirst + (1u << 20)) {
    source = NextRotatingSource(source);
    const Exchange exchange = RawExchange(source, *target, forger.Connection(kInvalidPerSource),
                                          kInvalidPerSource, absl::Seconds(5));
    ++connections;
    answered += exchange.answers;
    if (exchange.answers < kInvalidPerSource && short_connections++ == 0) {
      first_error = absl::StrCat(exchange.answers, " answered, ",
                                 exchange.error.empty() ? "closed" : exchange.error);
    }
  }
  const std::optional<double> after = CpuSeconds(daemon.pid());
  row.measured = absl::Now() - start;
  if (before && after) row.cpu_s = *after - *before;
  row.messages = connections * kInvalidPerSource;
  row.notes.push_back(absl::StrCat(connections, " sources, ", answered, " answered"));
  if (short_connections > 0) {
    row.notes.push_back(absl::StrCat(short_connections, " connections not fully answered (",
                                     first_error, ")"));
    row.failed = true;
  }
  int blocked = 0;
  row.notes.push_back(BlacklistSummary(daemon, &blocked));
  if (blocked > 0) row.failed = true;
  return row;
}

// ---------------------------------------------------------------------------
// The run.

struct Scenario {
  std::string name;
  std::function<Row(DaemonProcess&)> attack;     // one of the two
  std::function<CostRow(DaemonProcess&)> cost;
};

std::vector<Scenario> AllScenarios() {
  const auto attack = [](std::string name, std::function<Row(DaemonProcess&)> run) {
    return Scenario{std::move(name), std::move(run), nullptr};
  };
  const auto cost = [](std::string name, std::function<CostRow(DaemonProcess&)> run) {
    return Scenario{std::move(name), nullptr, std::move(run)};
  };
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  return {
      attack("baseline", Baseline),
      attack("rapid_reset", [](DaemonProcess& d) { return RapidResetScenario(d, false); }),
      attack("made_you_reset", [](DaemonProcess& d) { return RapidResetScenario(d, true); }),
      attack("continuation", ContinuationScenario),
      attack("control", ControlScenario),
      attack("hpack_bomb", HpackBombScenario),
      attack("stalled_greedy",
             [duration](DaemonProcess& d) { return StalledScenario(d, 100, duration); }),
      attack("stalled_patient",
             [duration](DaemonProcess& d) { return StalledScenario(d, 4, duration); }),
      attack("stalled_patient_12s",
             [](DaemonProcess& d) { return StalledScenario(d, 4, absl::Seconds(12)); }),
      attack("huge_header_8M",
             [](DaemonProcess& d) { return HugeHeaderScenario(d, size_t{8} << 20); }),
      attack("huge_header_32M",
             [](DaemonProcess& d) { return HugeHeaderScenario(d, size_t{32} << 20); }),
      attack("descriptors",
             [](DaemonProcess& d) { return DescriptorsScenario(d, absl::GetFlag(FLAGS_nofile)); }),
      attack("descriptors_160", [](DaemonProcess& d) { return DescriptorsScenario(d, 160); }),
      attack("sigterm", SigtermScenario),
      cost("cost_idle", Idle),
      cost("cost_valid", [](DaemonProcess& d) { return MemberCalls(d, false); }),
      cost("cost_blacklisted", [](DaemonProcess& d) { return MemberCalls(d, true); }),
      cost("cost_banned", BannedOutsider),
      cost("cost_invalid_rotating", RotatingInvalid),
  };
}

void PrintLogged(const std::vector<std::string>& problems) {
  const int limit = absl::GetFlag(FLAGS_log_lines);
  for (int i = 0; i < limit && i < static_cast<int>(problems.size()); ++i) {
    std::printf("    | %s\n", problems[i].c_str());
  }
  if (limit > 0 && static_cast<int>(problems.size()) > limit) {
    std::printf("    | ... %zu more\n", problems.size() - limit);
  }
}

std::string LoadAverage() {
  char text[128] = {};
  FILE* file = std::fopen("/proc/loadavg", "r");
  if (file == nullptr) return "?";
  const size_t read = std::fread(text, 1, sizeof(text) - 1, file);
  std::fclose(file);
  return std::string(absl::StripAsciiWhitespace(absl::string_view(text, read)));
}

// Stops omd (SIGTERM); notes its log's warnings and errors, and an unclean exit.
void Finish(std::unique_ptr<DaemonProcess> daemon, std::vector<std::string>* notes,
            bool* failed, std::vector<std::string>* problems) {
  *problems = LoggedProblems(*daemon);
  const absl::Status stopped = daemon->Stop();  // nothing if it was already stopped
  if (!stopped.ok()) {
    *failed = true;
    const std::string text = stopped.ToString();
    notes->push_back(absl::StrCat("omd stop: ", text.substr(0, text.find('\n'))));
  }
  int warnings = 0, errors = 0;
  for (const std::string& line : *problems) {
    std::vector<absl::string_view> words = absl::StrSplit(line, absl::MaxSplits(' ', 2));
    if (words[1] == "E") {
      ++errors;
    } else {
      ++warnings;
    }
  }
  if (warnings + errors > 0) {
    notes->push_back(absl::StrCat("omd logged ", warnings, " W, ", errors, " E"));
  }
}

int RunBench(const std::vector<char*>& positional) {
  if (positional.size() > 1) {
    std::fprintf(stderr, "attack_bench: unexpected argument %s (see --help)\n", positional[1]);
    return 2;
  }
  std::vector<Scenario> scenarios = AllScenarios();
  const std::vector<std::string> chosen = absl::GetFlag(FLAGS_scenarios);
  if (!chosen.empty()) {
    std::vector<Scenario> selected;
    for (Scenario& scenario : scenarios) {
      if (std::find(chosen.begin(), chosen.end(), scenario.name) != chosen.end()) {
        selected.push_back(std::move(scenario));
      }
    }
    if (selected.size() != chosen.size()) {
      std::vector<std::string> names;
      for (const Scenario& scenario : AllScenarios()) names.push_back(scenario.name);
      std::fprintf(stderr, "attack_bench: --scenarios takes names among: %s\n",
                   absl::StrJoin(names, ",").c_str());
      return 2;
    }
    scenarios = std::move(selected);
  }
  if (absl::GetFlag(FLAGS_duration) <= absl::ZeroDuration() ||
      absl::GetFlag(FLAGS_after) < absl::ZeroDuration() || absl::GetFlag(FLAGS_nofile) < 64) {
    std::fprintf(stderr, "attack_bench: --duration must be positive, --after not negative, "
                         "--nofile at least 64\n");
    return 2;
  }

  std::printf("attack_bench: --duration=%s, CPU after each attack for %s, RSS sampled every "
              "%s; fresh omd per scenario; load average %s\n",
              absl::FormatDuration(absl::GetFlag(FLAGS_duration)).c_str(),
              absl::FormatDuration(absl::GetFlag(FLAGS_after)).c_str(),
              absl::FormatDuration(absl::GetFlag(FLAGS_sample_interval)).c_str(),
              LoadAverage().c_str());
  bool all_ran = true;
  bool attack_header = false, cost_header = false;
  std::optional<double> valid_us;
  for (const Scenario& scenario : scenarios) {
    absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = StartOmd();
    std::vector<std::string> problems;
    if (scenario.attack) {
      if (!attack_header) PrintHeader();
      attack_header = true;
      Row row;
      if (!daemon.ok()) {
        row.failed = true;
        row.notes.push_back(absl::StrCat("omd did not start: ", daemon.status().ToString()));
      } else {
        row = scenario.attack(**daemon);
        Finish(*std::move(daemon), &row.notes, &row.failed, &problems);
      }
      row.scenario = scenario.name;
      all_ran = all_ran && !row.failed;
      PrintRow(row);
    } else {
      if (!cost_header) PrintCostHeader();
      cost_header = true;
      CostRow row;
      if (!daemon.ok()) {
        row.failed = true;
        row.notes.push_back(absl::StrCat("omd did not start: ", daemon.status().ToString()));
      } else {
        row = scenario.cost(**daemon);
        Finish(*std::move(daemon), &row.notes, &row.failed, &problems);
      }
      row.scenario = scenario.name;
      if (scenario.name == "cost_valid") valid_us = CostMicros(row);
      all_ran = all_ran && !row.failed;
      PrintCostRow(row, valid_us);
    }
    PrintLogged(problems);
  }
  std::printf("load average %s\n", LoadAverage().c_str());
  return all_ran ? 0 : 1;
}

int Main(const std::vector<char*>& positional) {
  signal(SIGPIPE, SIG_IGN);  // a server's close under a send
  const OwnDirectories own("attack_bench");
  return RunBench(positional);
}

}  // namespace
}  // namespace omd::testing

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(omd::testing::kUsage);
  return omd::testing::Main(absl::ParseCommandLine(argc, argv));
}

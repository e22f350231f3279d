// omd's listener measured side by side with a plain gRPC echo service
// (tools/echo_server): each server a process of its own, driven by a load process
// of its own (tools/grpc_load, gRPC's callback client API), in alternating rounds
// so that the noise of a shared machine hits every server alike. For each number
// of calls in flight it prints, per server, requests per second, p50/p99/p99.9
// latency, the server's CPU per request and its share of a core (from /proc,
// over the whole load process), then the ratios the listener is held to
// (docs/BENCHMARKS.md):
// - omd / echo: throughput, CPU per request, p99;
// - a blacklisted sender / a valid one: daemon CPU per message that reaches gRPC,
//   and the share of a core each one's load takes (a blacklisted sender's
//   connections are held back after each refusal);
// - 1,000 names in cluster.nodes and a full blacklist / 3 names and none, on
//   Identify (whose own work does not grow with them);
// and, once, what an idle connected peer costs the daemon in memory.
#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "crypto/envelope.h"
#include "process/subprocess.h"
#include "proto/omd.pb.h"
#include "testing/daemon_harness.h"
#include "testing/process_stats.h"
#include "testing/runfiles.h"

ABSL_FLAG(std::vector<std::string>, in_flight, std::vector<std::string>({"1", "16", "64"}),
          "Calls in flight, one table each.");
ABSL_FLAG(int, channels, 4, "Channels (connections) of each load process.");
ABSL_FLAG(absl::Duration, round, absl::Seconds(2), "Measured time of one round.");
ABSL_FLAG(int, rounds, 3, "Rounds per server and number in flight, alternating servers.");
ABSL_FLAG(int, cluster_nodes, 1000, "Names in cluster.nodes of the large cluster's daemon.");
ABSL_FLAG(int, idle_peers, 200, "Idle connected peers whose memory is measured (0: none).");
ABSL_FLAG(std::string, baseline_omd, "",
          "Another build's omd (e.g. the previous commit's, built -c opt), measured "
          "beside this one on BlacklistStatus: before and after a change, in one run.");
ABSL_FLAG(absl::Duration, hold, absl::ZeroDuration(),
          "Before the rounds, print each server's pid and address and wait this long "
          "(to attach a profiler, or load a server by hand).");

namespace omd::testing {
namespace {

constexpr char kCluster[] = "bench";

std::string NodeName(int index) { return absl::StrCat("node", index); }

// Node k's address: 127.0.0.2 for node2, and distinct loopback addresses above.
std::string NodeAddress(int index) {
  return absl::StrCat("127.0.", index / 250, ".", index % 250 + (index < 250 ? 0 : 1));
}

// A server under load, and what its rounds measured.
struct Target {
  std::string name;
  pid_t pid = -1;
  std::vector<std::string> load_arguments;  // beyond --in_flight, --duration, --channels
  std::string expect = "OK";
  // Of one number in flight:
  int64_t calls = 0;        // measured
  int64_t total_calls = 0;  // warm-up included: what the CPU is divided by
  double seconds = 0;
  double server_cpu_seconds = 0;
  double wall_seconds = 0;  // of the load processes, start to end
  std::vector<int64_t> latencies_ns;
  // What the server burns with no load (e.g. heartbeats to peers that are not
  // running), CPU-seconds per second, subtracted from what a round measured.
  double idle_cpu_rate = 0;

  void Reset() {
    calls = total_calls = 0;
    seconds = server_cpu_seconds = wall_seconds = 0;
    latencies_ns.clear();
  }
  double rate() const { return seconds > 0 ? static_cast<double>(calls) / seconds : 0; }
  double load_cpu_seconds() const {
    return std::max(0.0, server_cpu_seconds - idle_cpu_rate * wall_seconds);
  }
  double cpu_us_per_call() const {
    return total_calls > 0 ? load_cpu_seconds() * 1e6 / static_cast<double>(total_calls) : 0;
  }
  // The share of a core the load takes from the server.
  double cpu_share() const { return wall_seconds > 0 ? load_cpu_seconds() / wall_seconds : 0; }
  double quantile_us(double q) const {
    if (latencies_ns.empty()) return 0;
    const size_t index = std::min(latencies_ns.size() - 1,
                                  static_cast<size_t>(q * static_cast<double>(latencies_ns.size())));
    return static_cast<double>(latencies_ns[index]) / 1e3;
  }
};

// The echo server, stopped with it.
class EchoServer {
 public:
  static absl::StatusOr<std::unique_ptr<EchoServer>> Start(const std::string& directory) {
    std::unique_ptr<EchoServer> echo(new EchoServer());
    const std::string address_file = directory + "/echo.address";
    absl::StatusOr<pid_t> pid = SpawnInBackground(
        {Runfile("tools/echo_server"), "--address_file=" + address_file},
        directory + "/echo.stderr");
    if (!pid.ok()) return pid.status();
    echo->pid_ = *pid;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      absl::StatusOr<std::string> address = config::ReadFileToString(address_file, 256);
      if (address.ok()) {
        echo->address_ = std::string(absl::StripAsciiWhitespace(*address));
        return echo;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return absl::DeadlineExceededError("echo_server did not start within 10 s");
  }
  ~EchoServer() {
    if (pid_ > 0) TerminateAndWait(pid_, absl::Seconds(5)).IgnoreError();
  }
  pid_t pid() const { return pid_; }
  const std::string& address() const { return address_; }

 private:
  EchoServer() = default;
  pid_t pid_ = -1;
  std::string address_;
};

absl::StatusOr<std::unique_ptr<DaemonProcess>> StartDaemon(int cluster_nodes,
                                                          const std::string& omd_path = "") {
  DaemonProcess::Options options;
  options.omd_path = omd_path;
  options.node.node_name = NodeName(1);
  options.node.cluster_name = kCluster;
  for (int i = 1; i <= cluster_nodes; ++i) {
    options.node.cluster_nodes.push_back(NodeName(i));
    if (i > 1) options.node.node_addresses[NodeName(i)] = NodeAddress(i);
  }
  options.node.listen_address = "127.0.0.1";
  // Request ids are held twice the skew: 20 s, so that a run's hundreds of
  // thousands of requests from one sender stay under its share of the guard.
  options.node.extra = "clock_skew = 10\n";
  return DaemonProcess::Start(std::move(options));
}

// Five messages from `sender` on `channel`, sealed with a secret that is not the
// cluster's: the daemon's threshold, after which the sender is blacklisted at the
// channel's source. (A sixth would be refused as blacklisted, and the connection
// held back: net::ConnectionGuard::HoldBack.)
absl::Status Blacklist(grpc::Channel& channel, const std::string& sender) {
  crypto::EnvelopeOptions options;
  options.cluster = kCluster;
  options.nodename = sender;
  options.secrets = {{1, "not-the-cluster-secret-0123456789"}};
  crypto::EnvelopeCodec forger(std::move(options));
  const std::string salt = crypto::EnvelopeCodec::NewSalt();
  for (int attempt = 0; attempt < 5; ++attempt) {
    absl::StatusOr<v1::Envelope> forged =
        forger.Seal(crypto::Direction::kRequest, "/omd.v1.Agent/BlacklistStatus", NodeName(1),
                    salt, "");
    if (!forged.ok()) return forged.status();
    grpc::Status status =
        CallAgentMethod(&channel, "BlacklistStatus", forged->SerializeAsString());
    if (status.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
      return absl::InternalError(absl::StrCat("a forged message from ", sender, " got ",
                                              status.error_code(), " ",
                                              status.error_message()));
    }
  }
  return absl::OkStatus();
}

// A client of `daemon` as member `node`, connected from that member's address.
absl::StatusOr<std::unique_ptr<client::AgentClient>> MemberClient(const DaemonProcess& daemon,
                                                                  int node) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ChannelFromSource(NodeAddress(node), daemon.address());
  if (!channel.ok()) return channel.status();
  client::AgentClient::Options options;
  options.channel = *channel;
  options.envelope.cluster = kCluster;
  options.envelope.nodename = NodeName(node);
  options.envelope.secrets = {{1, kTestSecret}};
  options.recipient = NodeName(1);
  options.reply_senders = {NodeName(1)};
  return client::AgentClient::Create(std::move(options));
}

// The senders `daemon` has blocked, as node2 sees them.
absl::StatusOr<int> BlockedSenders(const DaemonProcess& daemon) {
  absl::StatusOr<std::unique_ptr<client::AgentClient>> client = MemberClient(daemon, 2);
  if (!client.ok()) return client.status();
  absl::StatusOr<v1::BlacklistStatusReply> reply =
      (*client)->Call<v1::BlacklistStatusReply>("BlacklistStatus", v1::BlacklistStatusRequest());
  if (!reply.ok()) return reply.status();
  int blocked = 0;
  for (const v1::BlacklistEntry& entry : reply->entries()) blocked += entry.blocked() ? 1 : 0;
  return blocked;
}

// Blacklists `names` member names from node`first_name` on, from each of the first
// `sources` members' addresses (from node2's), one thread per source.
absl::Status FillBlacklist(const std::string& target, int first_name, int names, int sources) {
  std::vector<absl::Status> results(static_cast<size_t>(sources));
  std::vector<std::thread> threads;
  for (int s = 0; s < sources; ++s) {
    threads.emplace_back([&, s] {
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          ChannelFromSource(NodeAddress(2 + s), target);
      if (!channel.ok()) {
        results[s] = channel.status();
        return;
      }
      for (int name = first_name; name < first_name + names && results[s].ok(); ++name) {
        results[s] = Blacklist(**channel, NodeName(name));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& result : results) {
    if (!result.ok()) return result;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> ReadLatencies(const std::string& path) {
  absl::StatusOr<std::string> bytes = config::ReadFileToString(path, size_t{1} << 30);
  if (!bytes.ok()) return bytes.status();
  std::vector<int64_t> latencies(bytes->size() / sizeof(int64_t));
  std::memcpy(latencies.data(), bytes->data(), latencies.size() * sizeof(int64_t));
  return latencies;
}

// One round of the load process against `target`.
absl::Status RunRound(Target& target, int in_flight, const std::string& directory) {
  const std::string latencies_path = directory + "/latencies";
  process::ProcessOptions options;
  options.argv = {Runfile("tools/grpc_load"),
                  absl::StrCat("--in_flight=", in_flight),
                  absl::StrCat("--channels=", absl::GetFlag(FLAGS_channels)),
                  absl::StrCat("--duration=", absl::FormatDuration(absl::GetFlag(FLAGS_round))),
                  "--expect=" + target.expect,
                  "--latencies_out=" + latencies_path};
  options.argv.insert(options.argv.end(), target.load_arguments.begin(),
                      target.load_arguments.end());
  options.timeout = absl::GetFlag(FLAGS_round) + absl::Seconds(60);
  absl::StatusOr<double> cpu_before = ProcessCpuSeconds(target.pid);
  if (!cpu_before.ok()) return cpu_before.status();
  const absl::Time started = absl::Now();
  absl::StatusOr<process::ProcessResult> result = process::RunProcess(options);
  absl::StatusOr<double> cpu_after = ProcessCpuSeconds(target.pid);
  target.wall_seconds += absl::ToDoubleSeconds(absl::Now() - started);
  if (!result.ok()) return result.status();
  if (!cpu_after.ok()) return cpu_after.status();
  if (result->exit_code != 0) {
    return absl::InternalError(
        absl::StrCat(target.name, ": grpc_load failed: ", result->stderr_text));
  }
  // "calls=N total=T seconds=S"
  for (absl::string_view field :
       absl::StrSplit(absl::StripAsciiWhitespace(result->stdout_text), ' ')) {
    std::pair<absl::string_view, absl::string_view> key_value = absl::StrSplit(field, '=');
    int64_t number = 0;
    double real = 0;
    if (key_value.first == "calls" && absl::SimpleAtoi(key_value.second, &number)) {
      target.calls += number;
    } else if (key_value.first == "total" && absl::SimpleAtoi(key_value.second, &number)) {
      target.total_calls += number;
    } else if (key_value.first == "seconds" && absl::SimpleAtod(key_value.second, &real)) {
      target.seconds += real;
    }
  }
  target.server_cpu_seconds += *cpu_after - *cpu_before;
  absl::StatusOr<std::vector<int64_t>> latencies = ReadLatencies(latencies_path);
  if (!latencies.ok()) return latencies.status();
  target.latencies_ns.insert(target.latencies_ns.end(), latencies->begin(), latencies->end());
  return absl::OkStatus();
}

// The median of a process's resident size, sampled every 100 ms for 4 s: a
// daemon's heartbeat rounds to absent members allocate and free megabytes.
absl::StatusOr<double> MedianResidentBytes(pid_t pid) {
  std::vector<double> samples;
  for (int i = 0; i < 40; ++i) {
    absl::StatusOr<ProcessStats> stats = ReadProcessStats(pid, false);
    if (!stats.ok()) return stats.status();
    samples.push_back(static_cast<double>(stats->rss_bytes));
    absl::SleepFor(absl::Milliseconds(100));
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

// Resident memory a daemon holds for `peers` idle connections, each from a
// member's address, after one call each: on a daemon of its own that has served
// no load, so that no memory freed by earlier calls is there to be reused.
absl::Status MeasureIdlePeers(int cluster_nodes, int peers) {
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = StartDaemon(cluster_nodes);
  if (!daemon.ok()) return daemon.status();
  absl::SleepFor(absl::Seconds(3));  // its first heartbeat rounds
  absl::StatusOr<double> before = MedianResidentBytes((*daemon)->pid());
  if (!before.ok()) return before.status();
  std::vector<std::unique_ptr<client::AgentClient>> clients;
  for (int i = 2; i < 2 + peers; ++i) {
    absl::StatusOr<std::unique_ptr<client::AgentClient>> client = MemberClient(**daemon, i);
    if (!client.ok()) return client.status();
    absl::Status called =
        (*client)->Call<v1::BlacklistStatusReply>("BlacklistStatus", v1::BlacklistStatusRequest())
            .status();
    if (!called.ok()) return called;
    clients.push_back(*std::move(client));
  }
  absl::StatusOr<double> after = MedianResidentBytes((*daemon)->pid());
  if (!after.ok()) return after.status();
  std::printf("\nidle peers: a fresh daemon of %d names, %d peers connected, one call each, "
              "then idle; median resident size over 4 s: %.1f -> %.1f MiB, %.1f KiB per "
              "peer\n",
              cluster_nodes, peers, *before / (1 << 20), *after / (1 << 20),
              (*after - *before) / 1024.0 / peers);
  return (*daemon)->Stop();
}

void PrintTable(int in_flight, const std::vector<Target*>& targets) {
  std::printf("\n%d in flight, %d channels, %d rounds of %s per server\n", in_flight,
              absl::GetFlag(FLAGS_channels), absl::GetFlag(FLAGS_rounds),
              absl::FormatDuration(absl::GetFlag(FLAGS_round)).c_str());
  std::printf("%-20s %10s %10s %9s %9s %9s %14s %11s\n", "server", "calls", "req/s",
              "p50 us", "p99 us", "p99.9 us", "server us/req", "server cpu");
  for (Target* target : targets) {
    std::sort(target->latencies_ns.begin(), target->latencies_ns.end());
    std::printf("%-20s %10lld %10.0f %9.0f %9.0f %9.0f %14.1f %10.1f%%\n",
                target->name.c_str(), static_cast<long long>(target->calls), target->rate(),
                target->quantile_us(0.5), target->quantile_us(0.99), target->quantile_us(0.999),
                target->cpu_us_per_call(), 100 * target->cpu_share());
  }
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "versus_echo_bench: %s\n", status.ToString().c_str());
  return 1;
}

int Run() {
  OwnDirectories directories("omd-versus-echo");
  const std::string directory = NewTempDir("versus-echo");
  const std::string secret_file = directory + "/secret";
  absl::Status written = config::WriteFileAtomically(secret_file, kTestSecret, 0600);
  if (!written.ok()) return Fail(written);

  absl::StatusOr<std::unique_ptr<EchoServer>> echo = EchoServer::Start(directory);
  if (!echo.ok()) return Fail(echo.status());
  absl::StatusOr<std::unique_ptr<DaemonProcess>> omd = StartDaemon(3);
  if (!omd.ok()) return Fail(omd.status());
  absl::StatusOr<std::unique_ptr<DaemonProcess>> blacklisting = StartDaemon(3);
  if (!blacklisting.ok()) return Fail(blacklisting.status());
  const int large_size = absl::GetFlag(FLAGS_cluster_nodes);
  absl::StatusOr<std::unique_ptr<DaemonProcess>> large = StartDaemon(large_size);
  if (!large.ok()) return Fail(large.status());
  std::unique_ptr<DaemonProcess> baseline;
  if (!absl::GetFlag(FLAGS_baseline_omd).empty()) {
    absl::StatusOr<std::unique_ptr<DaemonProcess>> started =
        StartDaemon(3, absl::GetFlag(FLAGS_baseline_omd));
    if (!started.ok()) return Fail(started.status());
    baseline = *std::move(started);
  }

  // node3 is blacklisted at its own address; node2 stays welcome.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> node3_channel =
      ChannelFromSource(NodeAddress(3), (*blacklisting)->address());
  if (!node3_channel.ok()) return Fail(node3_channel.status());
  absl::Status blacklisted = Blacklist(**node3_channel, NodeName(3));
  if (!blacklisted.ok()) return Fail(blacklisted);
  // From node2..node6's addresses, member names from node7 on, until the members'
  // table (4,096 senders) is full but for one: with more, new senders would evict
  // each other's counts (a full table keeps its blocked senders first).
  constexpr int kSources = 5;
  const int names = std::min(large_size - 6, 4095 / kSources);
  const absl::Time fill_start = absl::Now();
  absl::Status filled = FillBlacklist((*large)->address(), 7, names, kSources);
  if (!filled.ok()) return Fail(filled);
  absl::StatusOr<int> blocked = BlockedSenders(**large);
  if (!blocked.ok()) return Fail(blocked.status());
  if (*blocked != names * kSources) {
    return Fail(absl::InternalError(absl::StrCat("the large cluster's daemon blocked ", *blocked,
                                                 " senders, not ", names * kSources)));
  }
  std::printf("large cluster: %d names; its blacklist filled with %d blocked senders in %s\n",
              large_size, *blocked,
              absl::FormatDuration(absl::Trunc(absl::Now() - fill_start, absl::Milliseconds(1)))
                  .c_str());

  auto omd_arguments = [&](const DaemonProcess& daemon, int sender,
                           const std::string& method) {
    return std::vector<std::string>{"--kind=omd",
                                    "--method=" + method,
                                    "--target=" + daemon.address(),
                                    "--secret_file=" + secret_file,
                                    absl::StrCat("--cluster=", kCluster),
                                    "--nodename=" + NodeName(sender),
                                    "--recipient=" + NodeName(1),
                                    "--source=" + NodeAddress(sender)};
  };
  // The echo's payload is an omd request's size.
  crypto::EnvelopeOptions envelope_options;
  envelope_options.cluster = kCluster;
  envelope_options.nodename = NodeName(2);
  envelope_options.secrets = {{1, kTestSecret}};
  const size_t request_bytes = crypto::EnvelopeCodec(std::move(envelope_options))
                                   .Seal(crypto::Direction::kRequest,
                                         "/omd.v1.Agent/BlacklistStatus", NodeName(1),
                                         crypto::EnvelopeCodec::NewSalt(), "")
                                   ->ByteSizeLong();

  Target echo_target;
  echo_target.name = "echo";
  echo_target.pid = (*echo)->pid();
  echo_target.load_arguments = {"--kind=echo", "--target=" + (*echo)->address(),
                                absl::StrCat("--payload_bytes=", request_bytes)};
  Target omd_target;
  omd_target.name = "omd";
  omd_target.pid = (*omd)->pid();
  omd_target.load_arguments = omd_arguments(**omd, 2, "BlacklistStatus");
  Target blacklisted_target;
  blacklisted_target.name = "omd blacklisted";
  blacklisted_target.pid = (*blacklisting)->pid();
  blacklisted_target.load_arguments = omd_arguments(**blacklisting, 3, "BlacklistStatus");
  blacklisted_target.expect = "PERMISSION_DENIED";
  // The cluster's size against a method whose own work does not grow with it
  // (BlacklistStatus lists the blacklist): Identify, on both daemons.
  Target small_target;
  small_target.name = "omd Identify";
  small_target.pid = (*omd)->pid();
  small_target.load_arguments = omd_arguments(**omd, 3, "Identify");
  Target large_target;
  large_target.name = absl::StrCat("omd ", large_size, " Identify");
  large_target.pid = (*large)->pid();
  large_target.load_arguments = omd_arguments(**large, 2, "Identify");
  std::vector<Target*> targets = {&echo_target, &omd_target, &blacklisted_target,
                                  &small_target, &large_target};
  Target baseline_target;
  if (baseline != nullptr) {
    baseline_target.name = "omd baseline";
    baseline_target.pid = baseline->pid();
    baseline_target.load_arguments = omd_arguments(*baseline, 2, "BlacklistStatus");
    targets.push_back(&baseline_target);
  }
  if (absl::GetFlag(FLAGS_hold) > absl::ZeroDuration()) {
    for (Target* target : targets) {
      std::printf("%s: pid %d, %s\n", target->name.c_str(), static_cast<int>(target->pid),
                  absl::StrJoin(target->load_arguments, " ").c_str());
    }
    std::fflush(stdout);
    absl::SleepFor(absl::GetFlag(FLAGS_hold));
  }
  std::printf("idle CPU (and threads), subtracted from each round's:");
  for (Target* target : targets) {
    absl::StatusOr<double> before = ProcessCpuSeconds(target->pid);
    absl::SleepFor(absl::Seconds(3));
    absl::StatusOr<ProcessStats> after = ReadProcessStats(target->pid, false);
    if (!before.ok() || !after.ok()) return Fail(before.ok() ? after.status() : before.status());
    target->idle_cpu_rate = (after->cpu_seconds - *before) / 3;
    std::printf(" %s %.1f%% (%d)", target->name.c_str(), 100 * target->idle_cpu_rate,
                after->threads);
  }
  std::printf("\n");

  std::printf("omd: BlacklistStatus (3 names, an empty blacklist) vs. an echo of %zu bytes; "
              "blacklisted: the same from node3, blacklisted at its address; Identify: 3 "
              "names and none vs. %d names and a full blacklist\n",
              request_bytes, large_size);
  std::vector<std::string> summary;
  for (const std::string& in_flight_text : absl::GetFlag(FLAGS_in_flight)) {
    int in_flight = 0;
    if (!absl::SimpleAtoi(in_flight_text, &in_flight) || in_flight < 1) {
      return Fail(absl::InvalidArgumentError("--in_flight: " + in_flight_text));
    }
    for (Target* target : targets) target->Reset();
    for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
      for (Target* target : targets) {
        absl::Status ran = RunRound(*target, in_flight, directory);
        if (!ran.ok()) return Fail(ran);
      }
    }
    PrintTable(in_flight, targets);
    if (baseline != nullptr) {
      std::printf("omd / baseline: throughput %.3f, CPU per request %.3f, p99 %.3f\n",
                  omd_target.rate() / baseline_target.rate(),
                  omd_target.cpu_us_per_call() / baseline_target.cpu_us_per_call(),
                  omd_target.quantile_us(0.99) / baseline_target.quantile_us(0.99));
    }
    summary.push_back(absl::StrFormat(
        "%-12d %12.3f %12.3f %12.3f %12.3f %12.3f %16.3f", in_flight,
        omd_target.rate() / echo_target.rate(),
        omd_target.cpu_us_per_call() / echo_target.cpu_us_per_call(),
        omd_target.quantile_us(0.99) / echo_target.quantile_us(0.99),
        blacklisted_target.cpu_us_per_call() / omd_target.cpu_us_per_call(),
        blacklisted_target.cpu_share() / omd_target.cpu_share(),
        large_target.cpu_us_per_call() / small_target.cpu_us_per_call()));
  }
  std::printf("\nratios (CPU per request; blacklisted vs. omd: per message that reaches "
              "gRPC, and the share of a core the sender's load takes)\n");
  std::printf("%-12s %12s %12s %12s %12s %12s %16s\n", "in flight", "omd/echo r/s",
              "omd/echo cpu", "omd/echo p99", "bl/omd msg", "bl/omd cpu/s", "large/small cpu");
  for (const std::string& line : summary) std::printf("%s\n", line.c_str());

  if (absl::GetFlag(FLAGS_idle_peers) > 0) {
    absl::Status measured = MeasureIdlePeers(large_size, absl::GetFlag(FLAGS_idle_peers));
    if (!measured.ok()) return Fail(measured);
  }
  return 0;
}

}  // namespace
}  // namespace omd::testing

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "omd's listener vs. a plain gRPC echo service, side by side (docs/BENCHMARKS.md).\n"
      "Usage: tools/bench [--in_flight=1,16,64] [--channels=4] [--round=2s] [--rounds=3] "
      "[--cluster_nodes=1000] [--idle_peers=200] [--baseline_omd=PATH] [--hold=DURATION]");
  absl::ParseCommandLine(argc, argv);
  return omd::testing::Run();
}

// logs_bench: what service log streams cost a daemon, and how fast a record
// reaches its readers.
//
//   bazel run -c opt //testing:logs_bench -- --followers=1000
//
// 1. Followers: one daemon, a one-node service, --followers follows of it
//    (om's kind: ServiceLogs with follow, through the control socket, on
//    --channels connections). The daemon's resident memory and CPU are read
//    from /proc before the followers, with them at rest, and while a record a
//    second is appended; and each record's latency from its append (by
//    service::ServiceLog, in this process) to each follower.
// 2. Latency across nodes: three daemons, a three-node service followed on
//    node1, --records records appended on node2 at --rate a second.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "config/atomic_file.h"
#include "service/service_log.h"
#include "sync/mutex.h"
#include "testing/daemon_harness.h"
#include "testing/process_stats.h"

ABSL_FLAG(int, followers, 1000, "Follows of one daemon (part 1).");
ABSL_FLAG(int, channels, 20, "Connections the followers share (100 streams each at most).");
ABSL_FLAG(absl::Duration, phase, absl::Seconds(10), "Each measured phase of part 1.");
ABSL_FLAG(int, records, 500, "Records appended on node2 in part 2.");
ABSL_FLAG(int, rate, 100, "Records a second in part 2.");

namespace omd::testing {
namespace {

constexpr char kPrefix[] = "bench sent_ns=";

// Latencies seen by every follower, in microseconds.
class Latencies {
 public:
  void Take(const v1::ServiceLogsReply& reply) {
    const int64_t now = absl::GetCurrentTimeNanos();
    sync::MutexLock lock(&mutex_);
    for (const v1::LogRecord& record : reply.records()) {
      absl::string_view message = record.message();
      int64_t sent = 0;
      if (absl::ConsumePrefix(&message, kPrefix) && absl::SimpleAtoi(message, &sent)) {
        micros_.push_back((now - sent) / 1000);
      }
    }
  }
  std::string Summary() {
    sync::MutexLock lock(&mutex_);
    if (micros_.empty()) return "no record received";
    std::sort(micros_.begin(), micros_.end());
    const auto at = [this](double q) {
      return micros_[std::min(micros_.size() - 1, static_cast<size_t>(q * micros_.size()))];
    };
    return absl::StrFormat("%d deliveries: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                           micros_.size(), at(0.5) / 1e3, at(0.99) / 1e3,
                           micros_.back() / 1e3);
  }
  size_t count() {
    sync::MutexLock lock(&mutex_);
    return micros_.size();
  }
  void Clear() {
    sync::MutexLock lock(&mutex_);
    micros_.clear();
  }

 private:
  sync::Mutex mutex_;
  std::vector<int64_t> micros_ ABSL_GUARDED_BY(mutex_);
};

void Die(const absl::Status& status) {
  std::fprintf(stderr, "logs_bench: %s\n", status.ToString().c_str());
  std::exit(1);
}

void WriteService(const std::string& root, const std::string& nodes) {
  absl::Status written = config::WriteFileAtomically(
      absl::StrCat(root, "/etc/web.conf"),
      absl::StrCat("[DEFAULT]\nnodes = ", nodes, "\ntopology = flex\n"), 0644);
  if (!written.ok()) Die(written);
}

void AppendStamped(const std::string& root) {
  service::ServiceLog log(root, "web");
  (void)log.Append(service::LogLevel::kInfo,
                   absl::StrCat(kPrefix, absl::GetCurrentTimeNanos()));
}

struct Follows {
  std::vector<std::unique_ptr<client::AgentClient>> clients;
  std::vector<std::unique_ptr<client::StreamCall>> calls;
};

Follows Follow(const std::string& root, int count, int channels, Latencies* latencies) {
  Follows follows;
  for (int c = 0; c < channels; ++c) {
    absl::StatusOr<std::unique_ptr<client::AgentClient>> client =
        ControlClient(root, absl::Seconds(30), /*own_connection=*/true);
    if (!client.ok()) Die(client.status());
    follows.clients.push_back(*std::move(client));
  }
  v1::ServiceLogsRequest request;
  request.set_svcname("web");
  request.set_follow(true);
  request.set_backlog(0);
  for (int i = 0; i < count; ++i) {
    client::AgentClient::StreamOptions options;
    options.timeout = absl::InfiniteDuration();
    absl::StatusOr<std::unique_ptr<client::StreamCall>> call =
        follows.clients[i % channels]->Stream<v1::ServiceLogsReply>(
            "ServiceLogs", request,
            [latencies](const v1::ServiceLogsReply& reply) { latencies->Take(reply); },
            [](absl::Status status) {
              if (!status.ok() && !absl::IsCancelled(status)) {
                std::fprintf(stderr, "a follow ended: %s\n", status.ToString().c_str());
              }
            },
            std::move(options));
    if (!call.ok()) Die(call.status());
    follows.calls.push_back(*std::move(call));
  }
  return follows;
}

ProcessStats Stats(pid_t pid) {
  absl::StatusOr<ProcessStats> stats = ReadProcessStats(pid, /*count_fds=*/false);
  if (!stats.ok()) Die(stats.status());
  return *stats;
}

void Followers() {
  const int count = absl::GetFlag(FLAGS_followers);
  const absl::Duration phase = absl::GetFlag(FLAGS_phase);
  DaemonProcess::Options options;
  options.node.node_name = "node1";
  absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
  if (!daemon.ok()) Die(daemon.status());
  const pid_t pid = (*daemon)->pid();
  WriteService((*daemon)->root(), "node1");
  AppendStamped((*daemon)->root());
  absl::SleepFor(absl::Seconds(1));
  const ProcessStats idle = Stats(pid);

  Latencies latencies;
  Follows follows =
      Follow((*daemon)->root(), count, absl::GetFlag(FLAGS_channels), &latencies);
  absl::SleepFor(absl::Seconds(2));  // every follow set up
  const ProcessStats rest_start = Stats(pid);
  absl::SleepFor(phase);
  const ProcessStats rest_end = Stats(pid);

  latencies.Clear();
  const ProcessStats load_start = Stats(pid);
  const absl::Time end = absl::Now() + phase;
  while (absl::Now() < end) {
    AppendStamped((*daemon)->root());
    absl::SleepFor(absl::Seconds(1));
  }
  absl::SleepFor(absl::Milliseconds(200));
  const ProcessStats load_end = Stats(pid);
  const double seconds = absl::ToDoubleSeconds(phase);
  std::printf("followers: %d follows of one daemon on %d connections\n", count,
              absl::GetFlag(FLAGS_channels));
  std::printf("  resident memory: %.1f MiB without them, %.1f MiB with them (%.1f KiB each)\n",
              idle.rss_bytes / 1048576.0, rest_end.rss_bytes / 1048576.0,
              (rest_end.rss_bytes - idle.rss_bytes) / 1024.0 / count);
  std::printf("  daemon CPU at rest: %.2f%% of a core\n",
              100 * (rest_end.cpu_seconds - rest_start.cpu_seconds) / seconds);
  std::printf("  daemon CPU with a record a second: %.2f%% of a core\n",
              100 * (load_end.cpu_seconds - load_start.cpu_seconds) / seconds);
  std::printf("  append to follower: %s\n", latencies.Summary().c_str());
  follows.calls.clear();
  for (absl::string_view line : absl::StrSplit((*daemon)->Log(), '\n')) {
    if (absl::StrContains(line, " W ") || absl::StrContains(line, " E ")) {
      std::printf("  daemon: %s\n", std::string(line).c_str());
    }
  }
  (void)(*daemon)->Stop();
}

void AcrossNodes() {
  std::string addresses[3];
  int ports[3];
  for (int i = 0; i < 3; ++i) {
    addresses[i] = absl::StrCat("127.0.0.", i + 1);
    absl::StatusOr<int> port = FreePort(addresses[i]);
    if (!port.ok()) Die(port.status());
    ports[i] = *port;
  }
  std::unique_ptr<DaemonProcess> nodes[3];
  for (int i = 0; i < 3; ++i) {
    DaemonProcess::Options options;
    options.node.node_name = absl::StrCat("node", i + 1);
    options.node.cluster_nodes = {"node1", "node2", "node3"};
    options.node.listen_address = addresses[i];
    options.node.port = ports[i];
    for (int j = 0; j < 3; ++j) {
      if (j != i) {
        options.node.node_addresses[absl::StrCat("node", j + 1)] =
            absl::StrCat(addresses[j], ":", ports[j]);
      }
    }
    absl::StatusOr<std::unique_ptr<DaemonProcess>> daemon = DaemonProcess::Start(options);
    if (!daemon.ok()) Die(daemon.status());
    nodes[i] = *std::move(daemon);
    WriteService(nodes[i]->root(), "node1 node2 node3");
  }
  Latencies latencies;
  Follows follows = Follow(nodes[0]->root(), 1, 1, &latencies);
  absl::SleepFor(absl::Seconds(2));
  const int records = absl::GetFlag(FLAGS_records);
  const absl::Duration gap = absl::Seconds(1) / absl::GetFlag(FLAGS_rate);
  for (int k = 0; k < records; ++k) {
    AppendStamped(nodes[1]->root());
    absl::SleepFor(gap);
  }
  absl::SleepFor(absl::Milliseconds(500));
  std::printf("across nodes: %d records appended on node2, followed on node1 (3-node service)\n",
              records);
  std::printf("  append to follower: %s\n", latencies.Summary().c_str());
  follows.calls.clear();
  for (auto& node : nodes) (void)node->Stop();
}

}  // namespace
}  // namespace omd::testing

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  const omd::testing::OwnDirectories own("logs_bench");
  omd::testing::Followers();
  omd::testing::AcrossNodes();
  return 0;
}

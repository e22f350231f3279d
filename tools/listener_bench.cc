// Load generator for the listener: requests per second, p50/p99 latency and CPU
// per request of BlacklistStatus in three modes, in alternating rounds of one run
// so that the ratios survive a noisy machine:
// - envelope: the daemon as it runs, through the connection guard;
// - direct: the same gate and handlers on a plain gRPC port, without the guard,
//   to show what relaying costs;
// - unencrypted: through the guard, with the cryptography switched off, to show
//   what the envelope costs.
// The guard's own cost is also read directly: the CPU time of its relaying thread
// per request. Results: docs/BENCHMARKS.md.
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/agent_client.h"
#include "config/atomic_file.h"
#include "config/envelope_options.h"
#include "config/node_config.h"
#include "proto/omd.pb.h"
#include "server/agent_service.h"
#include "daemon/daemon.h"
#include "server/dequeue_runner.h"
#include "server/handler_registry.h"
#include "server/listener.h"
#include "server/listener_handlers.h"

ABSL_FLAG(int, in_flight, 16, "Concurrent requests (client threads, one channel each).");
ABSL_FLAG(absl::Duration, round, absl::Seconds(2), "Length of one measured round.");
ABSL_FLAG(int, rounds, 3, "Rounds per mode, alternating sealed and unencrypted.");

namespace omd {
namespace {

constexpr char kSecret[] = "benchmark-secret-0123456789abcdef";

// A daemon's temporary root, removed with it (its node.conf holds a secret).
struct TemporaryRoot {
  std::string path;
  ~TemporaryRoot() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
};

// The daemon's gate and handlers served by gRPC itself on a port of its own.
struct DirectServer {
  std::unique_ptr<server::DequeueRunner> dequeue_runner;
  server::HandlerRegistry handlers;
  std::atomic<int64_t> dispatched{0};
  std::unique_ptr<server::AgentService> service;
  grpc::ResourceQuota quota{"omd-bench-direct"};
  std::unique_ptr<grpc::Server> server;
  std::string address;
};

absl::StatusOr<std::unique_ptr<DirectServer>> StartDirect(daemon::Daemon& daemon) {
  auto direct = std::make_unique<DirectServer>();
  server::DequeueRunner::Options dequeue;
  dequeue.argv = {"/bin/true"};
  direct->dequeue_runner = std::make_unique<server::DequeueRunner>(dequeue);
  absl::Status added = server::AddListenerHandlers(&daemon.gate(), direct->dequeue_runner.get(),
                                                   &direct->handlers);
  if (!added.ok()) return added;
  absl::StatusOr<std::unique_ptr<server::AgentService>> service =
      server::AgentService::Create(&daemon.gate(), &direct->handlers, &direct->dispatched);
  if (!service.ok()) return service.status();
  direct->service = *std::move(service);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(direct->service.get());
  server::Listener::ConfigureServer(server::Listener::Options(), direct->quota, builder);
  direct->server = builder.BuildAndStart();
  if (direct->server == nullptr) return absl::InternalError("cannot start the direct server");
  direct->address = absl::StrCat("127.0.0.1:", port);
  return direct;
}

struct Mode {
  std::string name;
  bool unencrypted = false;
  bool direct = false;
  TemporaryRoot root;  // outlives `daemon`, declared before it
  std::unique_ptr<daemon::Daemon> daemon;
  std::unique_ptr<DirectServer> direct_server;
  std::string target;
  std::vector<absl::Duration> latencies;
  int64_t requests = 0;
  absl::Duration elapsed;
  absl::Duration relay_cpu;    // the guard's thread
  absl::Duration process_cpu;  // everything: daemon and clients
};

absl::Duration ProcessCpuTime() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return absl::DurationFromTimeval(usage.ru_utime) + absl::DurationFromTimeval(usage.ru_stime);
}

absl::StatusOr<std::unique_ptr<daemon::Daemon>> StartDaemon(bool unencrypted,
                                                          TemporaryRoot& temporary) {
  char root_template[] = "/tmp/omd-bench.XXXXXX";
  const char* root = mkdtemp(root_template);
  if (root == nullptr) return absl::InternalError("mkdtemp failed");
  temporary.path = root;
  absl::Status made = config::MakeDirectories(absl::StrCat(root, "/etc"), 0700);
  if (!made.ok()) return made;
  absl::Status written = config::WriteFileAtomically(
      config::NodeConfigPath(root),
      absl::StrCat("[node]\nname = node1\n[cluster]\nname = bench\nsecret = ", kSecret,
                   "\nnodes = node1 node2\n[listener]\naddr = 127.0.0.1\nport = 0\n"),
      0600);
  if (!written.ok()) return written;
  daemon::Daemon::Options options;
  options.root = root;
  options.dequeue_command = {"/bin/true"};
  options.unencrypted_for_benchmark = unencrypted;
  return daemon::Daemon::Start(options);
}

// One round: `in_flight` threads call BlacklistStatus back to back.
absl::Status RunRound(Mode& mode, absl::Duration length) {
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  std::vector<std::unique_ptr<client::AgentClient>> clients;
  for (int i = 0; i < in_flight; ++i) {
    client::AgentClient::Options options;
    options.target = mode.target;
    options.envelope.cluster = "bench";
    options.envelope.nodename = "node2";
    options.envelope.secrets = {{1, kSecret}};
    options.envelope.unencrypted_for_benchmark = mode.unencrypted;
    options.recipient = "node1";
    options.reply_senders = {"node1"};
    absl::StatusOr<std::unique_ptr<client::AgentClient>> client =
        client::AgentClient::Create(std::move(options));
    if (!client.ok()) return client.status();
    // Connect and warm up outside the measurement.
    absl::Status warm = (*client)
                            ->Call<v1::BlacklistStatusReply>("BlacklistStatus",
                                                             v1::BlacklistStatusRequest())
                            .status();
    if (!warm.ok()) return warm;
    clients.push_back(*std::move(client));
  }
  std::vector<std::vector<absl::Duration>> latencies(in_flight);
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  const absl::Duration relay_cpu_before = mode.daemon->listener().guard_cpu_time();
  const absl::Duration process_cpu_before = ProcessCpuTime();
  const absl::Time start = absl::Now();
  const absl::Time end = start + length;
  for (int i = 0; i < in_flight; ++i) {
    threads.emplace_back([&, i] {
      while (absl::Now() < end) {
        const absl::Time sent = absl::Now();
        absl::Status status = clients[i]
                                  ->Call<v1::BlacklistStatusReply>(
                                      "BlacklistStatus", v1::BlacklistStatusRequest())
                                  .status();
        if (!status.ok()) {
          std::fprintf(stderr, "%s\n", status.ToString().c_str());
          failed = true;
          return;
        }
        latencies[i].push_back(absl::Now() - sent);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  mode.elapsed += absl::Now() - start;
  mode.relay_cpu += mode.daemon->listener().guard_cpu_time() - relay_cpu_before;
  mode.process_cpu += ProcessCpuTime() - process_cpu_before;
  for (const auto& thread_latencies : latencies) {
    mode.requests += static_cast<int64_t>(thread_latencies.size());
    mode.latencies.insert(mode.latencies.end(), thread_latencies.begin(),
                          thread_latencies.end());
  }
  return failed ? absl::InternalError("requests failed") : absl::OkStatus();
}

double Micros(absl::Duration duration) { return absl::ToDoubleMicroseconds(duration); }

int Run() {
  std::vector<Mode> modes(3);
  modes[0].name = "envelope";
  modes[1].name = "direct";
  modes[1].direct = true;
  modes[2].name = "unencrypted";
  modes[2].unencrypted = true;
  for (Mode& mode : modes) {
    absl::StatusOr<std::unique_ptr<daemon::Daemon>> daemon =
        StartDaemon(mode.unencrypted, mode.root);
    if (!daemon.ok()) {
      std::fprintf(stderr, "cannot start a daemon: %s\n", daemon.status().ToString().c_str());
      return 1;
    }
    mode.daemon = *std::move(daemon);
    mode.target = mode.daemon->address();
    if (mode.direct) {
      absl::StatusOr<std::unique_ptr<DirectServer>> direct = StartDirect(*mode.daemon);
      if (!direct.ok()) {
        std::fprintf(stderr, "%s\n", direct.status().ToString().c_str());
        return 1;
      }
      mode.direct_server = *std::move(direct);
      mode.target = mode.direct_server->address;
    }
  }
  for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
    for (Mode& mode : modes) {
      absl::Status status = RunRound(mode, absl::GetFlag(FLAGS_round));
      if (!status.ok()) {
        std::fprintf(stderr, "%s: %s\n", mode.name.c_str(), status.ToString().c_str());
        return 1;
      }
    }
  }
  std::printf("BlacklistStatus, %d in flight, %d rounds of %s per mode\n",
              absl::GetFlag(FLAGS_in_flight), absl::GetFlag(FLAGS_rounds),
              absl::FormatDuration(absl::GetFlag(FLAGS_round)).c_str());
  std::printf("%-12s %10s %10s %10s %10s %12s %12s\n", "mode", "requests", "req/s",
              "p50 us", "p99 us", "cpu us/req", "relay us/req");
  double rates[3];
  for (size_t i = 0; i < modes.size(); ++i) {
    Mode& mode = modes[i];
    std::sort(mode.latencies.begin(), mode.latencies.end());
    const size_t n = mode.latencies.size();
    if (n == 0) {
      std::fprintf(stderr, "%s: no request completed\n", mode.name.c_str());
      return 1;
    }
    rates[i] = static_cast<double>(mode.requests) / absl::ToDoubleSeconds(mode.elapsed);
    const double requests = static_cast<double>(mode.requests);
    std::printf("%-12s %10lld %10.0f %10.0f %10.0f %12.1f %12.1f\n", mode.name.c_str(),
                static_cast<long long>(mode.requests), rates[i],
                Micros(mode.latencies[n / 2]), Micros(mode.latencies[n * 99 / 100]),
                Micros(mode.process_cpu) / requests, Micros(mode.relay_cpu) / requests);
  }
  auto cpu_per_request = [](const Mode& mode) {
    return Micros(mode.process_cpu) / static_cast<double>(mode.requests);
  };
  std::printf("guarded/direct: throughput %.3f, CPU per request %.3f\n", rates[0] / rates[1],
              cpu_per_request(modes[0]) / cpu_per_request(modes[1]));
  std::printf("envelope/unencrypted throughput ratio: %.3f\n", rates[0] / rates[2]);
  std::printf("relay thread: %.1f us per request, %.1f%% of all CPU\n",
              Micros(modes[0].relay_cpu) / static_cast<double>(modes[0].requests),
              100 * absl::ToDoubleSeconds(modes[0].relay_cpu) /
                  absl::ToDoubleSeconds(modes[0].process_cpu));
  return 0;
}

}  // namespace
}  // namespace omd

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Load generator: BlacklistStatus through the envelope vs. unencrypted.\n"
      "Usage: tools/bench [--in_flight=16] [--round=2s] [--rounds=3]");
  absl::ParseCommandLine(argc, argv);
  return omd::Run();
}

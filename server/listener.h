// The listener: binds [listener] addr:port, accepts through the connection guard
// (net/connection_guard.h), and serves the gated services on a gRPC server that
// it watches and rebuilds.
//
// gRPC never listens itself: each admitted connection is handed to the current
// grpc::Server with AddInsecureChannelFromFd. So the port stays bound, and open,
// whatever happens to a gRPC server, and a server can be replaced while the
// listener keeps accepting. The listener's thread ("omd-listener"):
// - probes its own port every `probe_interval` with a grpc.health.v1 Check over
//   TCP, through the guard like any client; after `probe_failures` failures in a
//   row it builds a new gRPC server, sends new connections there, and shuts the
//   old one down (the spec's "listener thread restarted on unclean exit", for a
//   listener that hangs rather than exits);
// - keeps the process's memory under `memory_budget_bytes`: above 90% of it,
//   outsiders' connections are closed and refused until memory is back under 75%.
//
//   absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Bind(options);
//   ... a gate can now use (*listener)->directory() ...
//   absl::Status started = (*listener)->Start(make_services, &policy);
//   ...
//   (*listener)->Shutdown();
#ifndef OMD_SERVER_LISTENER_H_
#define OMD_SERVER_LISTENER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/address.h"
#include "net/connection_guard.h"
#include "sync/mutex.h"

namespace omd::server {

class Listener : public net::ConnectionSink, public net::ConnectionPolicy {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    int port = 1214;  // 0: any free port
    // gRPC parses a request whole before the gate sees it; every omd request is
    // small.
    size_t max_request_bytes = 64 << 10;
    int max_streams_per_connection = 100;
    // Header bytes of one call, as gRPC counts them (the guard refuses header
    // blocks over Http2Limits::max_header_block_bytes before gRPC sees them).
    int max_metadata_bytes = 16 << 10;
    // A connection without calls for this long is closed by gRPC.
    absl::Duration max_connection_idle = absl::Minutes(5);
    // The process's resident memory kept under this (see above); half of it is
    // gRPC's own ResourceQuota.
    size_t memory_budget_bytes = size_t{256} << 20;
    net::ConnectionGuard::Options guard;
    absl::Duration probe_interval = absl::Seconds(2);
    absl::Duration probe_timeout = absl::Seconds(2);
    int probe_failures = 3;
    // Whether the listener at `target` answers; default: a grpc.health.v1 Check
    // of the whole server over a fresh TCP connection.
    std::function<bool(const std::string& target, absl::Duration timeout)> probe;
    // How long Shutdown (and a rebuild) lets calls in flight finish.
    absl::Duration shutdown_grace = absl::Seconds(3);
    // Services that grpc.health.v1 reports SERVING (beside the whole server, "").
    std::vector<std::string> health_names;
  };

  // The services of one gRPC server; called again for each rebuilt server.
  using ServiceFactory =
      std::function<absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>>()>;

  // The gRPC settings of every server the listener builds (limits, flow control,
  // keepalive, memory quota). Public so that a benchmark can serve the same
  // services on a plain gRPC port, without the guard, to measure what it costs.
  static void ConfigureServer(const Options& options, grpc::ResourceQuota& quota,
                              grpc::ServerBuilder& builder);

  // Binds the socket (UNAVAILABLE if the address is in use or not local) and
  // raises the soft RLIMIT_NOFILE. Nothing is accepted until Start.
  static absl::StatusOr<std::unique_ptr<Listener>> Bind(Options options);
  ~Listener() override;

  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Starts serving. `policy` classifies sources and must outlive the listener.
  absl::Status Start(ServiceFactory services, net::ConnectionPolicy* policy);

  // "host:port" the listener is bound to.
  const std::string& address() const { return address_; }
  const net::PeerDirectory& directory() const { return directory_; }
  // Closes the connections from a source (e.g. once it is banned).
  void CloseConnectionsFrom(const net::IpAddress& source);
  // Has the kernel drop these sources' connection attempts (replaces the list).
  void DropSources(std::vector<net::IpAddress> sources);
  net::ConnectionGuard::Stats connection_stats() const;
  absl::Duration guard_cpu_time() const;
  // gRPC servers built after the first, because the probe failed.
  int64_t rebuilds() const { return rebuilds_.load(); }
  bool shedding_outsiders() const { return shedding_.load(); }

  // Health NOT_SERVING, stops accepting (the port is free again), lets calls in
  // flight finish within shutdown_grace, closes every connection. Idempotent.
  void Shutdown();

  // net::ConnectionSink: hands a connection to the current gRPC server.
  void Serve(int fd) override;
  // net::ConnectionPolicy: the given policy, and outsiders refused while shedding.
  net::PeerVerdict Classify(const net::IpAddress& address) override;

 private:
  // One gRPC server and the services it serves (which must outlive it).
  struct Generation {
    std::vector<std::unique_ptr<grpc::Service>> services;
    std::unique_ptr<grpc::Server> server;
  };

  explicit Listener(Options options);

  absl::StatusOr<std::unique_ptr<Generation>> BuildGeneration();
  void Rebuild();
  void WatchLoop();
  void CheckMemory();

  const Options options_;
  std::string address_;
  int port_ = 0;        // the bound one
  int listen_fd_ = -1;  // until Start hands it to the guard
  net::PeerDirectory directory_;
  ServiceFactory services_;
  net::ConnectionPolicy* policy_ = nullptr;
  std::unique_ptr<net::ConnectionGuard> guard_;
  grpc::ResourceQuota resource_quota_;

  sync::Mutex generation_mutex_;
  std::unique_ptr<Generation> generation_ ABSL_GUARDED_BY(generation_mutex_);

  sync::Mutex watch_mutex_;
  bool stopping_ ABSL_GUARDED_BY(watch_mutex_) = false;
  std::thread watcher_;
  std::atomic<int64_t> rebuilds_{0};
  std::atomic<bool> shedding_{false};
  std::atomic<bool> shut_down_{false};
};

}  // namespace omd::server

#endif  // OMD_SERVER_LISTENER_H_

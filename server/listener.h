// The listener: accepts TCP connections on [listener] addr:port and local ones on
// the control socket, through the connection guard (net/connection_guard.h), and
// serves the gated services on a gRPC server that it watches and rebuilds.
//
// gRPC never listens itself: each admitted connection is handed to the current
// grpc::Server with AddInsecureChannelFromFd. So a gRPC server can be replaced
// while the port stays open, and the TCP port can be moved, closed and opened
// again while the gRPC server, and the control channel, go on.
//
// Run is the body of the daemon's "listener" thread (daemon/supervisor.h). It
// binds the TCP port if it is not bound yet (returning the error if it cannot:
// the supervisor restarts it), then until asked to stop:
// - probes its own port every `probe_interval` with a grpc.health.v1 Check over
//   TCP, through the guard like any client; after `probe_failures` failures in a
//   row it builds a new gRPC server, sends new connections there, and shuts the
//   old one down (the spec's "listener thread restarted on unclean exit", for a
//   listener that hangs rather than exits);
// - keeps the process's memory under `memory_budget_bytes`: above 90% of it,
//   outsiders' connections are closed and refused until memory is back under 75%.
// Asked to stop, it closes the TCP port and, after a short grace for replies in
// flight, the TCP connections; the control channel stays. Shutdown and a rebuild
// first end the open server streams (StreamingService), which would otherwise hold
// the old server for its whole grace.
//
//   absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Bind(options);
//   ... a gate can now use (*listener)->directory() ...
//   absl::Status started = (*listener)->Start(make_services, &policy);
//   std::thread([&] { (*listener)->Run(stopped_within); });  // supervised, in omd
//   absl::Status moved = (*listener)->Accept("127.0.0.1", 1215);
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
#include "server/server_stream.h"
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
    // The local control channel: a UNIX socket (created mode 0600) whose peers
    // must have one of these uids; empty path: none.
    std::string control_socket_path;
    std::vector<uint32_t> control_uids;
    // How long TCP connections live on once the listener is stopped, so that
    // the reply to the request that stopped it gets out.
    absl::Duration stop_grace = absl::Milliseconds(500);
    // Called with "host:port" each time the TCP port is bound, and "" when it
    // is closed.
    std::function<void(const std::string& address)> on_address_change;
  };

  // The services of one gRPC server; called again for each rebuilt server.
  using ServiceFactory =
      std::function<absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>>()>;

  // The gRPC settings of every server the listener builds (limits, flow control,
  // keepalive, memory quota). Public so that a benchmark can serve the same
  // services on a plain gRPC port, without the guard, to measure what it costs.
  static void ConfigureServer(const Options& options, grpc::ResourceQuota& quota,
                              grpc::ServerBuilder& builder);

  // Binds the TCP socket of options.address:port (UNAVAILABLE if the address is
  // in use or not local) and the control socket, and raises the soft
  // RLIMIT_NOFILE. Nothing is accepted until Start.
  static absl::StatusOr<std::unique_ptr<Listener>> Bind(Options options);
  ~Listener() override;

  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Starts serving. `policy` classifies sources and must outlive the listener.
  absl::Status Start(ServiceFactory services, net::ConnectionPolicy* policy);

  // The body of the listener thread (see above). `stopped_within(d)` waits up to
  // d and tells whether the thread is asked to stop.
  absl::Status Run(const std::function<bool(absl::Duration)>& stopped_within);

  // Listens on `address`:`port` from now on (port 0: any free port; after a
  // stop, the one it had if it is still free). The new
  // socket is bound before the old one is closed where both can be bound at
  // once, else the old one is closed first; connections already accepted go
  // on either way. On failure the old socket, if any, keeps listening and the
  // error is returned. Bound to the same address and port already: nothing to
  // do. While the listener thread is stopped, this only records where Run will
  // listen.
  absl::Status Accept(const std::string& address, int port);
  // Closes the TCP port now and the TCP connections after stop_grace.
  void StopAccepting();

  // "host:port" the TCP socket is bound to; empty while it is closed.
  std::string address() const;
  const net::PeerDirectory& directory() const { return directory_; }
  // Closes the connections from a source (e.g. once it is banned).
  void CloseConnectionsFrom(const net::IpAddress& source);
  // net::ConnectionGuard::HoldBack, for the gate's blacklisted senders.
  void HoldBackConnection(uint64_t connection_id);
  // net::ConnectionGuard::ReleaseHolds, once the blacklist is cleared.
  void ReleaseHeldConnections();
  // Has the kernel drop these sources' connection attempts (replaces the list).
  void DropSources(std::vector<net::IpAddress> sources);
  net::ConnectionGuard::Stats connection_stats() const;
  absl::Duration guard_cpu_time() const;
  // gRPC servers built after the first, because the probe failed.
  int64_t rebuilds() const { return rebuilds_.load(); }
  bool shedding_outsiders() const { return shedding_.load(); }

  // Health NOT_SERVING, for every service; calls are still served.
  void StopServing();
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
  // Ends the open streams of the generation's services (server/server_stream.h).
  static void FinishStreams(const Generation& generation, const absl::Status& status);
  void CheckMemory();
  // Binds and hands the socket to the guard; accept_mutex_ held.
  absl::Status AcceptLocked(const std::string& address, int port)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(accept_mutex_);
  void SetAddress(std::string address);

  const Options options_;
  // Serializes binding, moving and closing the TCP socket.
  sync::Mutex accept_mutex_;
  bool run_wanted_ ABSL_GUARDED_BY(accept_mutex_) = false;  // Run is on
  std::string wanted_address_ ABSL_GUARDED_BY(accept_mutex_);
  int wanted_port_ ABSL_GUARDED_BY(accept_mutex_) = 0;
  std::string bound_address_ ABSL_GUARDED_BY(accept_mutex_);  // "" while closed
  int bound_port_ ABSL_GUARDED_BY(accept_mutex_) = 0;  // the one asked for (maybe 0)
  int actual_port_ ABSL_GUARDED_BY(accept_mutex_) = 0;  // the one bound (last)
  std::string last_address_ ABSL_GUARDED_BY(accept_mutex_);  // of actual_port_
  int listen_fd_ ABSL_GUARDED_BY(accept_mutex_) = -1;  // until Start hands it over
  int control_fd_ = -1;                                 // until Start hands it over
  mutable sync::Mutex address_mutex_;
  std::string address_ ABSL_GUARDED_BY(address_mutex_);
  net::PeerDirectory directory_;
  ServiceFactory services_;
  net::ConnectionPolicy* policy_ = nullptr;
  std::unique_ptr<net::ConnectionGuard> guard_;
  grpc::ResourceQuota resource_quota_;

  sync::Mutex generation_mutex_;
  std::unique_ptr<Generation> generation_ ABSL_GUARDED_BY(generation_mutex_);

  std::atomic<int64_t> rebuilds_{0};
  std::atomic<bool> shedding_{false};
  std::atomic<bool> shut_down_{false};
};

}  // namespace omd::server

#endif  // OMD_SERVER_LISTENER_H_

// The omd daemon: its configuration, the gated gRPC listener, health and
// reflection, and the background runner the empty packet triggers.
//
//   Daemon::Options options;
//   options.root = "/var/lib/omd";
//   absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
//   ... (*daemon)->Shutdown();
#ifndef OMD_SERVER_DAEMON_H_
#define OMD_SERVER_DAEMON_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "config/node_config.h"
#include "server/agent_service.h"
#include "server/dequeue_runner.h"
#include "server/gate.h"
#include "server/handler_registry.h"

namespace omd::server {

class Daemon {
 public:
  struct Options {
    // ROOT/etc/node.conf (created if missing), ROOT/var, ROOT/var/log.
    std::string root;
    // What the empty packet runs; empty: `<om> --root ROOT node dequeue actions`,
    // with the om binary found beside omd.
    std::vector<std::string> dequeue_command;
    absl::Duration dequeue_timeout = absl::Minutes(10);
    // Requests larger than this are refused by gRPC (RESOURCE_EXHAUSTED) before
    // the gate: gRPC parses a request whole, and every omd request is small.
    size_t max_request_bytes = 64 << 10;
    // Calls in flight at once on one connection.
    int max_streams_per_connection = 100;
    // How long Shutdown lets calls in flight finish.
    absl::Duration shutdown_grace = absl::Seconds(5);
    // Benchmarks only (tools/bench): envelopes carry their plaintext.
    bool unencrypted_for_benchmark = false;
  };

  static absl::StatusOr<std::unique_ptr<Daemon>> Start(Options options);

  ~Daemon();

  // "host:port" the listener is bound to; also written to
  // config::ListenerAddressPath(root).
  const std::string& address() const { return address_; }
  Gate& gate() { return *gate_; }
  const AgentService& agent_service() const { return *service_; }

  // Marks the health service NOT_SERVING, lets calls in flight finish, stops.
  void Shutdown();

 private:
  Daemon() = default;

  Options options_;
  std::string address_;
  std::unique_ptr<Gate> gate_;
  std::unique_ptr<DequeueRunner> dequeue_runner_;
  HandlerRegistry handlers_;
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace omd::server

#endif  // OMD_SERVER_DAEMON_H_

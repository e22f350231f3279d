// The omd daemon: its configuration, the guarded and gated listener, health and
// reflection, and the background work around them (the empty packet's runner, the
// housekeeping thread).
//
//   Daemon::Options options;
//   options.root = "/var/lib/omd";
//   absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
//   ... (*daemon)->Shutdown();
#ifndef OMD_DAEMON_DAEMON_H_
#define OMD_DAEMON_DAEMON_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/address_book.h"
#include "server/blacklist.h"
#include "server/dequeue_runner.h"
#include "server/gate.h"
#include "server/handler_registry.h"
#include "server/listener.h"
#include "server/replay_guard.h"
#include "sync/mutex.h"

namespace omd::daemon {

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
    absl::Duration shutdown_grace = absl::Seconds(3);
    // Connection caps and HTTP/2 limits, per class of source.
    net::ConnectionGuard::Options connections;
    // Benchmarks only (tools/bench): envelopes carry their plaintext.
    bool unencrypted_for_benchmark = false;
  };

  static absl::StatusOr<std::unique_ptr<Daemon>> Start(Options options);

  ~Daemon();

  // "host:port" the listener is bound to; also written to
  // config::ListenerAddressPath(root).
  const std::string& address() const { return listener_->address(); }
  server::Gate& gate() { return *gate_; }
  server::Listener& listener() { return *listener_; }
  server::ReplayGuard& replay_guard() { return *replay_guard_; }
  // Calls the gate admitted and passed on (to a handler, or UNIMPLEMENTED).
  int64_t dispatched_calls() const { return dispatched_calls_.load(); }

  // Marks the health service NOT_SERVING, stops accepting, lets calls in flight
  // finish, stops.
  void Shutdown();

 private:
  Daemon() = default;

  void Housekeeping();

  Options options_;
  std::unique_ptr<server::Listener> listener_;
  std::unique_ptr<server::Blacklist> blacklist_;
  std::unique_ptr<server::AddressBook> address_book_;
  std::unique_ptr<server::ReplayGuard> replay_guard_;
  std::unique_ptr<server::Gate> gate_;
  std::unique_ptr<server::DequeueRunner> dequeue_runner_;
  server::HandlerRegistry handlers_;
  std::atomic<int64_t> dispatched_calls_{0};

  sync::Mutex housekeeping_mutex_;
  bool stopping_ ABSL_GUARDED_BY(housekeeping_mutex_) = false;
  uint64_t bans_version_ = 0;  // the housekeeping thread's
  std::thread housekeeping_;
  bool shut_down_ = false;
};

}  // namespace omd::daemon

#endif  // OMD_DAEMON_DAEMON_H_

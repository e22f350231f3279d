// The omd daemon: its configuration (reloaded when node.conf changes), the
// guarded and gated listener with its local control channel, health and
// reflection, and its supervised threads (daemon/supervisor.h): "listener" (the
// TCP port, its probe and memory watch), "reloader" (node.conf), "housekeeper"
// (the replay journal, refusal summaries, banned sources), "heartbeat" (this
// node's state to the members, cluster/heartbeat.h), "monitor" (the service
// instances, monitor/monitor.h); and the service actions callers ask for
// (action/action_runner.h).
//
//   Daemon::Options options;
//   options.root = "/var/lib/omd";
//   absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
//   std::optional<StopKind> kind = (*daemon)->WaitForStopRequest(absl::Seconds(1));
//   if (kind.has_value()) (*daemon)->Stop(*kind);  // DaemonStop, or a signal
#ifndef OMD_DAEMON_DAEMON_H_
#define OMD_DAEMON_DAEMON_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "action/action_runner.h"
#include "cluster/cluster_lock.h"
#include "cluster/heartbeat.h"
#include "cluster/membership.h"
#include "cluster/node_states.h"
#include "cluster/peers.h"
#include "daemon/config_reloader.h"
#include "daemon/daemon_handlers.h"
#include "daemon/supervisor.h"
#include "logs/log_watcher.h"
#include "logs/logs_service.h"
#include "monitor/monitor.h"
#include "server/address_book.h"
#include "server/blacklist.h"
#include "server/dequeue_runner.h"
#include "server/gate.h"
#include "server/handler_registry.h"
#include "server/listener.h"
#include "server/replay_guard.h"
#include "sync/mutex.h"

namespace omd::daemon {

class Daemon final : public DaemonControl {
 public:
  struct Options {
    // ROOT/etc/node.conf (created if missing), ROOT/var, ROOT/var/log.
    std::string root;
    // What the empty packet runs; empty: `<om> --root ROOT node dequeue actions`,
    // with the om binary found beside omd.
    std::vector<std::string> dequeue_command;
    absl::Duration dequeue_timeout = absl::Minutes(10);
    // What a ServiceAction runs, before `<svcname> <command...>`; empty:
    // `<om> --root ROOT`, with the om binary found beside omd.
    std::vector<std::string> action_command;
    int max_running_actions = 8;  // past it, ServiceAction is RESOURCE_EXHAUSTED
    absl::Duration action_timeout = absl::Minutes(5);  // a request's timeout 0
    // Requests larger than this are refused by gRPC (RESOURCE_EXHAUSTED) before
    // the gate: gRPC parses a request whole, and every omd request is small.
    size_t max_request_bytes = 64 << 10;
    // Calls in flight at once on one connection.
    int max_streams_per_connection = 100;
    // How long Shutdown lets calls in flight finish.
    absl::Duration shutdown_grace = absl::Seconds(3);
    // Connection caps and HTTP/2 limits, per class of source.
    net::ConnectionGuard::Options connections;
    // How long a stop waits at most for the members to hear of the maintenance.
    absl::Duration maintenance_announce_bound = absl::Seconds(2);
    cluster::Heartbeat::Options heartbeat;
    // Between two rounds of the monitor's checks.
    absl::Duration monitor_interval = absl::Seconds(2);
    // How long a shutdown waits for each instance's lock (an action under way).
    absl::Duration shutdown_instance_bound = absl::Seconds(30);
    // Benchmarks only (tools/bench): envelopes carry their plaintext.
    bool unencrypted_for_benchmark = false;
  };

  static absl::StatusOr<std::unique_ptr<Daemon>> Start(Options given);

  ~Daemon();

  // "host:port" the TCP listener is bound to (empty while it is stopped); also
  // written to config::ListenerAddressPath(root).
  std::string address() const { return listener_->address(); }
  server::Gate& gate() { return *gate_; }
  server::Listener& listener() { return *listener_; }
  server::ReplayGuard& replay_guard() { return *replay_guard_; }
  // Calls the gate admitted and passed on (to a handler, or UNIMPLEMENTED).
  int64_t dispatched_calls() const { return dispatched_calls_.load(); }
  // Server streams open now (ServiceLogs).
  int64_t open_streams() const { return open_streams_.load(); }

  // Loads node.conf and applies it now (after the daemon wrote it itself); the
  // reloader thread does the same within its poll interval for any change.
  absl::Status ReloadConfig() { return reloader_->Reload(); }
  std::shared_ptr<const config::NodeConfig> config() const { return reloader_->config(); }

  // cluster/: calls to the other members' daemons, kept on this node's current
  // node.conf.
  cluster::Peers& peers() { return *peers_; }

  // DaemonControl, for the handlers and omd's main.
  v1::DaemonStatusReply Status() const override;
  absl::Status StartThread(absl::string_view id) override;
  absl::Status StopThread(absl::string_view id) override;
  void RequestStop(StopKind kind) override;

  // Waits up to `timeout` for RequestStop; its kind (the first one asked).
  std::optional<StopKind> WaitForStopRequest(absl::Duration timeout);

  // kShutdown first stops the local service instances; then (both kinds) health
  // goes NOT_SERVING, the threads stop, calls in flight finish, and the daemon
  // stops. Idempotent.
  void Stop(StopKind kind);
  // Stop(StopKind::kStop).
  void Shutdown() { Stop(StopKind::kStop); }

 private:
  Daemon() = default;

  // Applies a reloaded node.conf: the gate's view, the address book, the
  // listener's address.
  absl::Status ApplyConfig(const config::NodeConfig& config);
  absl::Status Housekeeping(const std::function<bool(absl::Duration)>& stopped_within);

  Options options_;
  std::unique_ptr<server::Listener> listener_;
  std::unique_ptr<server::Blacklist> blacklist_;
  std::unique_ptr<server::AddressBook> address_book_;
  std::unique_ptr<server::ReplayGuard> replay_guard_;
  std::unique_ptr<server::Gate> gate_;
  std::unique_ptr<server::DequeueRunner> dequeue_runner_;
  std::unique_ptr<action::ActionRunner> action_runner_;  // ServiceAction, ListActions
  std::unique_ptr<ConfigReloader> reloader_;
  std::unique_ptr<cluster::Peers> peers_;
  std::unique_ptr<cluster::NodeStates> node_states_;
  std::unique_ptr<cluster::Heartbeat> heartbeat_;
  // monitor/: after heartbeat_, which tells its states, so it goes first.
  std::unique_ptr<monitor::Monitor> monitor_;
  // logs/: this node's log files, watched for followers; the ServiceLogs
  // streams (on peers_), which go before the watcher.
  std::unique_ptr<logs::LogWatcher> log_watcher_;
  std::unique_ptr<logs::LogsService> logs_;
  // cluster/: this node's part of the cluster-wide lock, and the membership
  // changes (join, leave) that use it and peers_; after them, so that the
  // membership goes first.
  std::unique_ptr<cluster::ClusterLock> cluster_lock_;
  std::unique_ptr<cluster::Membership> membership_;
  server::HandlerRegistry handlers_;
  std::atomic<int64_t> dispatched_calls_{0};
  std::atomic<int64_t> open_streams_{0};
  Supervisor supervisor_;

  sync::Mutex stop_mutex_;
  std::optional<StopKind> stop_requested_ ABSL_GUARDED_BY(stop_mutex_);
  bool stopped_ ABSL_GUARDED_BY(stop_mutex_) = false;
  uint64_t bans_version_ = 0;  // the housekeeper thread's
  bool started_ = false;       // Start went through: there is something to stop
};

}  // namespace omd::daemon

#endif  // OMD_DAEMON_DAEMON_H_

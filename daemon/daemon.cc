#include "daemon/daemon.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "action/action_handlers.h"
#include "client/action_queue.h"
#include "client/service_action_check.h"
#include "client/service_commands.h"
#include "cluster/cluster_handlers.h"
#include "cluster/state_handlers.h"
#include "config/atomic_file.h"
#include "config/envelope_options.h"
#include "config/node_config.h"
#include "google/protobuf/stubs/logging.h"
#include "log/log.h"
#include "monitor/monitor_handlers.h"
#include "net/address.h"
#include "process/subprocess.h"
#include "rpc/peer.h"
#include "server/agent_service.h"
#include "service/service_handlers.h"
#include "server/listener_handlers.h"

namespace omd::daemon {
namespace {

constexpr absl::string_view kAgentServiceName = "omd.v1.Agent";
constexpr absl::Duration kHousekeepingInterval = absl::Seconds(1);

// The om binary installed or built beside omd: same directory, or bazel-bin's
// client/ next to server/.
std::string OmBesideThisBinary() {
  std::string dir = process::CurrentExecutablePath();
  if (dir.empty()) return "om";
  dir.resize(dir.rfind('/'));
  for (const std::string& candidate : {dir + "/om", dir + "/../client/om"}) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "om";  // looked up in PATH when run
}

std::shared_ptr<const server::ClusterView> MakeClusterView(
    const config::NodeConfig& config, bool unencrypted_for_benchmark) {
  auto view = std::make_shared<server::ClusterView>();
  view->nodes.insert(config.cluster_nodes.begin(), config.cluster_nodes.end());
  crypto::EnvelopeOptions envelope = config::EnvelopeOptionsFor(config);
  envelope.unencrypted_for_benchmark = unencrypted_for_benchmark;
  view->codec = std::make_shared<crypto::EnvelopeCodec>(std::move(envelope));
  return view;
}

// protobuf logs an ERROR for each string field with invalid UTF-8 that it parses:
// from the network, one line per forged message. The gate counts those messages
// against their source and logs a rate-limited summary instead.
void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  if (message.find("invalid UTF-8") != std::string::npos) return;
  if (level >= google::protobuf::LOGLEVEL_ERROR) {
    OMD_LOG(ERROR, "protobuf %s:%d: %s", file, line, message);
  } else {
    OMD_LOG(WARNING, "protobuf %s:%d: %s", file, line, message);
  }
}

std::vector<net::IpAddress> LocalAddresses(const config::NodeConfig& config) {
  std::vector<net::IpAddress> local = net::LocalInterfaceAddresses();
  if (std::optional<net::IpAddress> own = net::IpAddress::Parse(config.listener_addr)) {
    local.push_back(*own);  // 127.0.0.2 on a test host is not an interface's
  }
  return local;
}

// The members' addresses whose host is an IP address ([cluster] addr@<node> =
// host:port): where their connections come from. A DNS name is not resolved.
std::vector<net::IpAddress> MemberAddresses(const config::NodeConfig& config) {
  std::vector<net::IpAddress> members;
  for (const std::string& node : config.cluster_nodes) {
    auto it = config.node_addresses.find(node);
    if (node == config.node_name || it == config.node_addresses.end()) continue;
    absl::StatusOr<rpc::HostPort> host_port = rpc::SplitHostPort(it->second, config::kDefaultPort);
    if (!host_port.ok()) continue;  // not expected: node_config made it
    if (std::optional<net::IpAddress> address = net::IpAddress::Parse(host_port->host)) {
      members.push_back(*address);
    }
  }
  return members;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(Options given) {
  google::protobuf::SetLogHandler(&ProtobufLog);
  std::unique_ptr<Daemon> daemon(new Daemon());
  // Set before any thread starts: the reloader's ApplyConfig reads it.
  daemon->options_ = std::move(given);
  const Options& options = daemon->options_;
  absl::StatusOr<config::NodeConfig> config =
      config::LoadOrCreateNodeConfig(options.root);
  if (!config.ok()) return config.status();
  const config::NodeConfig& node = *config;

  server::Listener::Options listener;
  listener.address = node.listener_addr;
  listener.port = node.listener_port;
  listener.max_request_bytes = options.max_request_bytes;
  listener.max_streams_per_connection = options.max_streams_per_connection;
  listener.memory_budget_bytes = node.memory_budget_bytes;
  listener.guard = options.connections;
  listener.health_names = {std::string(kAgentServiceName)};
  listener.shutdown_grace = options.shutdown_grace;
  listener.control_socket_path = config::ControlSocketPath(options.root);
  // Root, and the daemon's own user: who may use om on this node anyway.
  listener.control_uids = {0, static_cast<uint32_t>(geteuid())};
  const std::string address_path = config::ListenerAddressPath(options.root);
  listener.on_address_change = [address_path](const std::string& address) {
    if (address.empty()) {
      unlink(address_path.c_str());
      return;
    }
    absl::Status recorded =
        config::WriteFileAtomically(address_path, address + "\n", 0644);
    if (!recorded.ok()) OMD_LOG(WARNING, "%s", recorded.ToString());
  };
  absl::StatusOr<std::unique_ptr<server::Listener>> bound =
      server::Listener::Bind(std::move(listener));
  if (!bound.ok()) return bound.status();  // "cannot listen on 127.0.0.1:1214: ..."
  daemon->listener_ = *std::move(bound);

  daemon->blacklist_ = std::make_unique<server::Blacklist>(server::Blacklist::Options());
  daemon->address_book_ = std::make_unique<server::AddressBook>(
      server::AddressBook::Options(), daemon->blacklist_.get());
  daemon->address_book_->SetLocal(LocalAddresses(node));
  daemon->address_book_->SetConfiguredMembers(MemberAddresses(node));

  server::ReplayGuard::Options replay;
  replay.clock_skew = node.clock_skew;
  replay.retention = 2 * node.clock_skew;
  replay.sync_interval = kHousekeepingInterval;
  replay.journal_path = absl::StrCat(options.root, "/var/replay.journal");
  absl::StatusOr<std::unique_ptr<server::ReplayGuard>> replay_guard =
      server::ReplayGuard::Create(replay);
  if (!replay_guard.ok()) return replay_guard.status();
  daemon->replay_guard_ = *std::move(replay_guard);

  server::Gate::Options gate;
  server::Listener* const listener_ptr = daemon->listener_.get();
  gate.on_source_banned = [listener_ptr](const net::IpAddress& source) {
    listener_ptr->CloseConnectionsFrom(source);
  };
  gate.on_blacklisted_message = [listener_ptr](uint64_t connection_id) {
    listener_ptr->HoldBackConnection(connection_id);
  };
  gate.on_blacklist_cleared = [listener_ptr] { listener_ptr->ReleaseHeldConnections(); };
  daemon->gate_ = std::make_unique<server::Gate>(
      std::move(gate), MakeClusterView(node, options.unencrypted_for_benchmark),
      daemon->blacklist_.get(), daemon->replay_guard_.get(), daemon->address_book_.get(),
      &daemon->listener_->directory());

  // Actions a crashed `om node dequeue actions` left half-run are failed, with a
  // note, before anything dequeues again.
  absl::StatusOr<int> recovered = client::RecoverInterruptedActions(options.root);
  if (!recovered.ok()) OMD_LOG(WARNING, "actions: %s", recovered.status().ToString());
  server::DequeueRunner::Options dequeue;
  dequeue.argv = options.dequeue_command;
  if (dequeue.argv.empty()) {
    dequeue.argv = {
        OmBesideThisBinary(), "--root", options.root, "node", "dequeue", "actions"};
  }
  dequeue.timeout = options.dequeue_timeout;
  daemon->dequeue_runner_ = std::make_unique<server::DequeueRunner>(std::move(dequeue));

  // ServiceAction: `om --root ROOT <svcname> <command...>`, om's global flags
  // kept out of the command.
  action::ActionRunner::Options actions;
  actions.argv_prefix = options.action_command;
  if (actions.argv_prefix.empty()) {
    actions.argv_prefix = {OmBesideThisBinary(), "--root", options.root};
  }
  actions.check_command = [](absl::string_view svcname,
                             absl::Span<const std::string> command) {
    return client::CheckServiceActionCommand(client::ServiceCommands(), svcname, command);
  };
  actions.max_running = options.max_running_actions;
  actions.default_timeout = options.action_timeout;
  daemon->action_runner_ = std::make_unique<action::ActionRunner>(std::move(actions));

  Daemon* const self = daemon.get();
  daemon->peers_ = std::make_unique<cluster::Peers>(cluster::Peers::Options());
  daemon->peers_->SetConfig(node);
  daemon->node_states_ = std::make_unique<cluster::NodeStates>(cluster::NodeStates::Options());
  // --- monitor/: the node's and the instances' monitors, told around by the
  // heartbeats. ---
  monitor::Monitor::Options monitor;
  monitor.root = options.root;
  monitor.interval = options.monitor_interval;
  monitor.settle = 3 * options.heartbeat.interval;
  monitor.announce = [self] {
    (void)self->heartbeat_->AnnounceToLiveMembers(cluster::NodeState::kUp,
                                                  self->options_.heartbeat.timeout);
  };
  daemon->monitor_ = std::make_unique<monitor::Monitor>(
      std::move(monitor), [self] { return self->reloader_->config(); },
      [self](absl::string_view node) {
        return self->node_states_->Get(node).state == cluster::NodeState::kUp;
      });
  cluster::Heartbeat::Options heartbeat = options.heartbeat;
  heartbeat.describe = [self](v1::AnnounceStateRequest* request) {
    self->monitor_->Describe(request);
  };
  daemon->heartbeat_ = std::make_unique<cluster::Heartbeat>(
      std::move(heartbeat), daemon->peers_.get(), daemon->node_states_.get(),
      [self] { return self->reloader_->config(); });
  ConfigReloader::Options reloader;
  reloader.root = options.root;
  daemon->reloader_ = std::make_unique<ConfigReloader>(
      reloader, node,
      [self](const config::NodeConfig& config) { return self->ApplyConfig(config); });

  absl::Status added = server::AddListenerHandlers(
      daemon->gate_.get(), daemon->dequeue_runner_.get(), &daemon->handlers_);
  if (added.ok()) added = AddDaemonHandlers(self, &daemon->handlers_);
  if (added.ok()) {
    added = cluster::AddStateHandlers(
        daemon->node_states_.get(), &daemon->handlers_,
        [self](absl::string_view node, const v1::AnnounceStateRequest& request) {
          self->monitor_->OnPeerAnnounce(node, request);
        });
  }
  if (added.ok()) added = monitor::AddMonitorHandlers(daemon->monitor_.get(), &daemon->handlers_);
  if (added.ok()) added = service::AddServiceHandlers(options.root, &daemon->handlers_);
  // --- logs/: ServiceLogs. ---
  daemon->log_watcher_ = std::make_unique<logs::LogWatcher>(logs::LogWatcher::Options{options.root});
  logs::LogsService::Options logs;
  logs.root = options.root;
  daemon->logs_ = std::make_unique<logs::LogsService>(
      logs, daemon->log_watcher_.get(), daemon->peers_.get(),
      [self] { return self->reloader_->config(); });
  if (added.ok()) {
    added = daemon->handlers_.AddServerStream<v1::ServiceLogsRequest, v1::ServiceLogsReply>(
        "ServiceLogs",
        [self](const server::Caller& caller, const v1::ServiceLogsRequest& request,
               logs::LogsService::Stream stream) {
          self->logs_->Serve(caller, request, std::move(stream));
        });
  }
  if (added.ok()) added = action::AddActionHandlers(daemon->action_runner_.get(), &daemon->handlers_);
  if (!added.ok()) return added;

  // --- cluster/: the cluster-wide lock, join and leave (on peers_). ---
  daemon->cluster_lock_ = std::make_unique<cluster::ClusterLock>(cluster::ClusterLock::Options());
  cluster::Membership::Options membership;
  membership.root = options.root;
  // A membership change wrote node.conf: the gate takes it now, not at the
  // reloader's next look.
  membership.config_written = [self] {
    absl::Status reloaded = self->ReloadConfig();
    if (!reloaded.ok()) {
      OMD_LOG(WARNING, "reloading node.conf after a membership change: %s", reloaded.ToString());
    }
  };
  daemon->membership_ = std::make_unique<cluster::Membership>(
      std::move(membership), daemon->cluster_lock_.get(), daemon->peers_.get());
  added = cluster::AddClusterHandlers(daemon->membership_.get(), &daemon->handlers_);
  if (!added.ok()) return added;
  // --- end of cluster/. ---

  absl::Status started = daemon->listener_->Start(
      [self]() -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
        absl::StatusOr<std::unique_ptr<server::AgentService>> agent =
            server::AgentService::Create(self->gate_.get(), &self->handlers_,
                                         &self->dispatched_calls_, &self->open_streams_);
        if (!agent.ok()) return agent.status();
        std::vector<std::unique_ptr<grpc::Service>> services;
        services.push_back(*std::move(agent));
        return services;
      },
      daemon->address_book_.get());
  if (!started.ok()) return started;

  // Stopped in the reverse order: the listener first.
  daemon->supervisor_.Add("housekeeper", [self](const StopSignal& stop) {
    return self->Housekeeping([&stop](absl::Duration d) { return stop.WaitFor(d); });
  });
  daemon->supervisor_.Add("reloader", [self](const StopSignal& stop) {
    return self->reloader_->Run([&stop](absl::Duration d) { return stop.WaitFor(d); });
  });
  daemon->supervisor_.Add("heartbeat", [self](const StopSignal& stop) {
    return self->heartbeat_->Run([&stop](absl::Duration d) { return stop.WaitFor(d); });
  });
  daemon->supervisor_.Add("monitor", [self](const StopSignal& stop) {
    return self->monitor_->Run([&stop](absl::Duration d) { return stop.WaitFor(d); });
  });
  daemon->supervisor_.Add("listener", [self](const StopSignal& stop) {
    return self->listener_->Run([&stop](absl::Duration d) { return stop.WaitFor(d); });
  });
  daemon->supervisor_.StartAll();
  daemon->started_ = true;

  if (std::optional<absl::Time> floor = daemon->replay_guard_->floor()) {
    OMD_LOG(WARNING, "refusing requests sent before %s: %s",
            absl::FormatTime(*floor, absl::UTCTimeZone()),
            daemon->replay_guard_->floor_reason());
  }
  OMD_LOG(INFO, "omd %s of cluster %s listening on %s and %s", node.node_name,
          node.cluster_name, daemon->address(),
          config::ControlSocketPath(daemon->options_.root));
  return daemon;
}

absl::Status Daemon::ApplyConfig(const config::NodeConfig& config) {
  gate_->SetClusterView(MakeClusterView(config, options_.unencrypted_for_benchmark));
  address_book_->SetLocal(LocalAddresses(config));
  address_book_->SetConfiguredMembers(MemberAddresses(config));
  peers_->SetConfig(config);
  return listener_->Accept(config.listener_addr, config.listener_port);
}

// Every second: the replay journal to disk, refusal summaries to the log, and
// banned outsiders' sources to the kernel's filter.
absl::Status Daemon::Housekeeping(
    const std::function<bool(absl::Duration)>& stopped_within) {
  while (!stopped_within(kHousekeepingInterval)) {
    absl::Status synced = replay_guard_->Sync();
    if (!synced.ok()) OMD_LOG(WARNING, "replay journal: %s", synced.ToString());
    gate_->refusals().Flush(absl::Now());
    if (const uint64_t version = blacklist_->bans_version(); version != bans_version_) {
      bans_version_ = version;
      listener_->DropSources(
          address_book_->OutsidersOnly(blacklist_->BannedSources(), absl::Now()));
    }
  }
  return absl::OkStatus();
}

v1::DaemonStatusReply Daemon::Status() const {
  v1::DaemonStatusReply reply;
  const std::shared_ptr<const config::NodeConfig> config = reloader_->config();
  reply.set_nodename(config->node_name);
  for (const ThreadState& state : supervisor_.States()) {
    v1::ThreadStatus* thread = reply.add_threads();
    thread->set_id(state.id);
    thread->set_state(state.state);
    thread->set_restarts(state.restarts);
    thread->set_last_error(state.last_error);
  }
  std::vector<std::string> nodes = config->cluster_nodes;
  std::sort(nodes.begin(), nodes.end());
  for (const std::string& name : nodes) {
    v1::NodeStatus* node = reply.add_nodes();
    node->set_nodename(name);
    // This node is up: it answers. The others are as they told it.
    if (name == config->node_name) {
      node->set_state("up");
    } else {
      const cluster::NodeStates::Entry entry = node_states_->Get(name);
      node->set_state(std::string(cluster::NodeStateName(entry.state)));
      if (entry.last_seen != absl::InfinitePast()) {
        node->set_last_seen_unix_ms(absl::ToUnixMillis(entry.last_seen));
      }
    }
    node->set_address(name == config->node_name ? listener_->address()
                                                 : config::PeerTarget(*config, name));
  }
  const ConfigReloader::State reload = reloader_->state();
  v1::ConfigStatus* status = reply.mutable_config();
  status->set_path(reload.path);
  status->set_mtime_unix_ms(absl::ToUnixMillis(reload.mtime));
  status->set_loaded_unix_ms(absl::ToUnixMillis(reload.loaded_at));
  status->set_reload_error(reload.error);
  status->set_cluster_name(config->cluster_name);
  status->set_key_generation(config->key_generation);
  status->set_listener_address(listener_->address());
  status->set_control_socket(config::ControlSocketPath(options_.root));
  const net::ConnectionGuard::Stats stats = listener_->connection_stats();
  v1::ListenerStatus* listener = reply.mutable_listener();
  for (int i = 0; i < net::kPeerClasses; ++i) {
    (*listener->mutable_open_connections())[std::string(
        net::PeerClassName(static_cast<net::PeerClass>(i)))] = stats.open[i];
  }
  listener->set_accepted(stats.accepted);
  listener->set_refused_by_policy(stats.refused_by_policy);
  listener->set_refused_by_cap(stats.refused_by_cap);
  listener->set_refused_by_rate(stats.refused_by_rate);
  listener->set_refused_out_of_descriptors(stats.refused_out_of_descriptors);
  listener->set_evicted(stats.evicted);
  listener->set_closed_for_abuse(stats.closed_for_abuse);
  listener->set_held_back(stats.held_back);
  listener->set_dropped_sources(stats.dropped_sources);
  listener->set_control_accepted(stats.control_accepted);
  listener->set_control_refused(stats.control_refused);
  listener->set_rebuilds(listener_->rebuilds());
  listener->set_shedding_outsiders(listener_->shedding_outsiders());
  *reply.mutable_node_monitor() = monitor_->Node();
  v1::LogsStatus& logs = *reply.mutable_logs();
  logs.set_streams(logs_->streams());
  logs.set_upstreams(logs_->upstreams());
  logs.set_subscriptions(log_watcher_->subscriptions());
  logs.set_followed_files(log_watcher_->followed_files());
  return reply;
}

absl::Status Daemon::StartThread(absl::string_view id) { return supervisor_.Start(id); }

absl::Status Daemon::StopThread(absl::string_view id) { return supervisor_.Stop(id); }

void Daemon::RequestStop(StopKind kind) {
  sync::MutexLock lock(&stop_mutex_);
  if (!stop_requested_.has_value()) stop_requested_ = kind;
}

std::optional<StopKind> Daemon::WaitForStopRequest(absl::Duration timeout) {
  sync::MutexLock lock(&stop_mutex_);
  stop_mutex_.AwaitWithTimeout([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(
                                   stop_mutex_) { return stop_requested_.has_value(); },
                               timeout);
  return stop_requested_;
}

void Daemon::Stop(StopKind kind) {
  {
    sync::MutexLock lock(&stop_mutex_);
    if (stopped_) return;
    stopped_ = true;
    if (!stop_requested_.has_value()) stop_requested_ = kind;
  }
  // The monitor first: no action starts after this, and the ones under way end
  // (their process groups terminated). A stop leaves the instances as they are;
  // a shutdown stops them, while the peers can still hear of it.
  if (started_) (void)supervisor_.Stop("monitor");
  if (monitor_ != nullptr) monitor_->Stop();
  if (kind == StopKind::kShutdown && monitor_ != nullptr) {
    const std::vector<std::string> stopped =
        monitor_->StopLocalInstances(options_.shutdown_instance_bound);
    if (stopped.empty()) OMD_LOG(INFO, "shutdown: no local service instance to stop");
    for (const std::string& line : stopped) OMD_LOG(INFO, "shutdown: %s", line);
  }
  // Health first, so that whoever watches it stops sending; the members hear
  // of the maintenance (an unreachable one delays nothing past the bound); the
  // port closes, calls in flight get their grace, then the threads stop.
  if (listener_ != nullptr) listener_->StopServing();
  // cluster/: a join or leave in progress ends, and every one waiting is
  // answered, while the listener can still send the replies.
  if (membership_ != nullptr) membership_->Stop();
  // Running actions end (cancelled); their sync callers get that reply now.
  if (action_runner_ != nullptr) action_runner_->Stop();
  // Log streams never end by themselves: ended here, while replies still go out.
  if (logs_ != nullptr) logs_->Stop();
  if (log_watcher_ != nullptr) log_watcher_->Stop();
  if (started_) {
    (void)supervisor_.Stop("heartbeat");  // no "up" after the "maintenance"
    const std::vector<std::string> told = heartbeat_->AnnounceToLiveMembers(
        cluster::NodeState::kMaintenance, options_.maintenance_announce_bound);
    OMD_LOG(INFO, "maintenance announced to %d member(s)", told.size());
  }
  if (listener_ != nullptr) listener_->Shutdown();
  supervisor_.StopAll();
  dequeue_runner_.reset();
  if (gate_ != nullptr) gate_->refusals().Flush(absl::InfiniteFuture());
  replay_guard_.reset();  // synced, marked clean
  OMD_LOG(INFO, "omd stopped");
}

Daemon::~Daemon() { Shutdown(); }

}  // namespace omd::daemon

#include "daemon/daemon.h"

#include <pthread.h>
#include <unistd.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "config/atomic_file.h"
#include "config/envelope_options.h"
#include "config/node_config.h"
#include "google/protobuf/stubs/logging.h"
#include "log/log.h"
#include "net/address.h"
#include "process/subprocess.h"
#include "rpc/peer.h"
#include "server/agent_service.h"
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

std::shared_ptr<const server::ClusterView> MakeClusterView(const config::NodeConfig& config,
                                                   bool unencrypted_for_benchmark) {
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

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(Options options) {
  google::protobuf::SetLogHandler(&ProtobufLog);
  std::unique_ptr<Daemon> daemon(new Daemon());
  absl::StatusOr<config::NodeConfig> config = config::LoadOrCreateNodeConfig(options.root);
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
  absl::StatusOr<std::unique_ptr<server::Listener>> bound = server::Listener::Bind(std::move(listener));
  if (!bound.ok()) return bound.status();  // "cannot listen on 127.0.0.1:1214: ..."
  daemon->listener_ = *std::move(bound);

  daemon->blacklist_ = std::make_unique<server::Blacklist>(server::Blacklist::Options());
  daemon->address_book_ =
      std::make_unique<server::AddressBook>(server::AddressBook::Options(), daemon->blacklist_.get());
  daemon->address_book_->SetLocal(LocalAddresses(node));
  daemon->address_book_->SetConfiguredMembers(MemberAddresses(node));

  server::ReplayGuard::Options replay;
  replay.clock_skew = node.clock_skew;
  replay.retention = 2 * node.clock_skew;
  replay.sync_interval = kHousekeepingInterval;
  replay.journal_path = absl::StrCat(options.root, "/var/replay.journal");
  absl::StatusOr<std::unique_ptr<server::ReplayGuard>> replay_guard = server::ReplayGuard::Create(replay);
  if (!replay_guard.ok()) return replay_guard.status();
  daemon->replay_guard_ = *std::move(replay_guard);

  server::Gate::Options gate;
  server::Listener* const listener_ptr = daemon->listener_.get();
  gate.on_source_banned = [listener_ptr](const net::IpAddress& source) {
    listener_ptr->CloseConnectionsFrom(source);
  };
  daemon->gate_ = std::make_unique<server::Gate>(
      std::move(gate), MakeClusterView(node, options.unencrypted_for_benchmark),
      daemon->blacklist_.get(), daemon->replay_guard_.get(), daemon->address_book_.get(),
      &daemon->listener_->directory());

  server::DequeueRunner::Options dequeue;
  dequeue.argv = options.dequeue_command;
  if (dequeue.argv.empty()) {
    dequeue.argv = {OmBesideThisBinary(), "--root", options.root, "node", "dequeue",
                    "actions"};
  }
  dequeue.timeout = options.dequeue_timeout;
  daemon->dequeue_runner_ = std::make_unique<server::DequeueRunner>(std::move(dequeue));

  absl::Status added = server::AddListenerHandlers(daemon->gate_.get(),
                                           daemon->dequeue_runner_.get(),
                                           &daemon->handlers_);
  if (!added.ok()) return added;

  Daemon* const self = daemon.get();
  absl::Status started = daemon->listener_->Start(
      [self]() -> absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> {
        absl::StatusOr<std::unique_ptr<server::AgentService>> agent =
            server::AgentService::Create(self->gate_.get(), &self->handlers_, &self->dispatched_calls_);
        if (!agent.ok()) return agent.status();
        std::vector<std::unique_ptr<grpc::Service>> services;
        services.push_back(*std::move(agent));
        return services;
      },
      daemon->address_book_.get());
  if (!started.ok()) return started;

  daemon->housekeeping_ = std::thread([self] { self->Housekeeping(); });
  pthread_setname_np(daemon->housekeeping_.native_handle(), "omd-housekeep");
  absl::Status recorded = config::WriteFileAtomically(
      config::ListenerAddressPath(options.root), daemon->address() + "\n", 0644);
  if (!recorded.ok()) return recorded;
  if (std::optional<absl::Time> floor = daemon->replay_guard_->floor()) {
    OMD_LOG(WARNING, "refusing requests sent before %s: %s",
            absl::FormatTime(*floor, absl::UTCTimeZone()),
            daemon->replay_guard_->floor_reason());
  }
  daemon->options_ = std::move(options);
  OMD_LOG(INFO, "omd %s of cluster %s listening on %s", node.node_name, node.cluster_name,
          daemon->address());
  return daemon;
}

// Every second: the replay journal to disk, refusal summaries to the log, and
// banned outsiders' sources to the kernel's filter.
void Daemon::Housekeeping() {
  while (true) {
    {
      sync::MutexLock lock(&housekeeping_mutex_);
      if (housekeeping_mutex_.AwaitWithTimeout(
              [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(housekeeping_mutex_) { return stopping_; },
              kHousekeepingInterval)) {
        return;
      }
    }
    absl::Status synced = replay_guard_->Sync();
    if (!synced.ok()) OMD_LOG(WARNING, "replay journal: %s", synced.ToString());
    gate_->refusals().Flush(absl::Now());
    if (const uint64_t version = blacklist_->bans_version(); version != bans_version_) {
      bans_version_ = version;
      listener_->DropSources(
          address_book_->OutsidersOnly(blacklist_->BannedSources(), absl::Now()));
    }
  }
}

void Daemon::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (listener_ != nullptr) listener_->Shutdown();
  if (housekeeping_.joinable()) {
    {
      sync::MutexLock lock(&housekeeping_mutex_);
      stopping_ = true;
    }
    housekeeping_.join();
  }
  dequeue_runner_.reset();
  if (gate_ != nullptr) gate_->refusals().Flush(absl::InfiniteFuture());
  replay_guard_.reset();  // synced, marked clean
  OMD_LOG(INFO, "omd stopped");
}

Daemon::~Daemon() { Shutdown(); }

}  // namespace omd::daemon

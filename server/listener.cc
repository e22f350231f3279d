#include "server/listener.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_posix.h>
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "log/log.h"
#include "net/listen_socket.h"
#include "net/unix_socket.h"
#include "posix/memory.h"
#include "proto/health.grpc.pb.h"
#include "rpc/peer.h"

namespace omd::server {
namespace {

// Shed outsiders above this share of the memory budget, until under the second.
constexpr double kShedAbove = 0.90;
constexpr double kShedUntilBelow = 0.75;
constexpr absl::Duration kMemoryCheckInterval = absl::Seconds(1);

bool HealthCheck(const std::string& target, absl::Duration timeout) {
  grpc::ChannelArguments arguments;
  // A fresh connection each time: the probe must go through accept, as a new
  // client would, not ride a connection that predates a problem.
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  return stub->Check(&context, request, &response).ok() &&
         response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

// Where this host reaches the listener: a wildcard address is reached on loopback.
std::string ProbeTarget(const std::string& address, int port) {
  if (address == "0.0.0.0") return rpc::JoinHostPort("127.0.0.1", port);
  if (address == "::") return rpc::JoinHostPort("::1", port);
  return rpc::JoinHostPort(address, port);
}

}  // namespace

Listener::Listener(Options options)
    : options_(std::move(options)), resource_quota_("omd-listener") {
  // gRPC's own accounting: half the budget, the rest being everything else.
  resource_quota_.Resize(options_.memory_budget_bytes / 2);
}

absl::StatusOr<std::unique_ptr<Listener>> Listener::Bind(Options options) {
  // Process-wide settings of every grpc::ServerBuilder: health and reflection.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  net::RaiseFileLimit();
  std::unique_ptr<Listener> listener(new Listener(std::move(options)));
  {
    sync::MutexLock lock(&listener->accept_mutex_);
    listener->run_wanted_ = true;
    absl::Status bound =
        listener->AcceptLocked(listener->options_.address, listener->options_.port);
    if (!bound.ok()) return bound;
  }
  if (!listener->options_.control_socket_path.empty()) {
    absl::StatusOr<int> control =
        net::ListenUnix(listener->options_.control_socket_path, 0600);
    if (!control.ok()) return control.status();
    listener->control_fd_ = *control;
  }
  return listener;
}

Listener::~Listener() {
  Shutdown();
  sync::MutexLock lock(&accept_mutex_);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (control_fd_ >= 0) close(control_fd_);
}

std::string Listener::address() const {
  sync::MutexLock lock(&address_mutex_);
  return address_;
}

void Listener::SetAddress(std::string address) {
  {
    sync::MutexLock lock(&address_mutex_);
    if (address_ == address) return;
    address_ = address;
  }
  if (options_.on_address_change) options_.on_address_change(address);
}

absl::Status Listener::AcceptLocked(const std::string& address, int port) {
  wanted_address_ = address;
  wanted_port_ = port;
  if (!bound_address_.empty() && bound_address_ == address && bound_port_ == port) {
    return absl::OkStatus();
  }
  // Before Start the socket waits in listen_fd_; after, the guard holds it.
  auto install = [this](net::ListenSocket socket) ABSL_EXCLUSIVE_LOCKS_REQUIRED(accept_mutex_) {
    if (guard_ != nullptr) {
      guard_->SetListenSocket(socket.fd);
    } else {
      if (listen_fd_ >= 0) close(listen_fd_);
      listen_fd_ = socket.fd;
    }
  };
  // Any free port, asked again after a stop: the one it had, if still free, so
  // that a restarted listener is where its clients last found it.
  absl::StatusOr<net::ListenSocket> socket =
      port == 0 && actual_port_ != 0 && bound_address_.empty() && address == last_address_
          ? net::Listen(address, actual_port_)
          : absl::UnavailableError("");
  if (!socket.ok()) socket = net::Listen(address, port);
  if (!socket.ok() && !bound_address_.empty()) {
    // Both cannot be bound at once (e.g. 0.0.0.0 and 127.0.0.1 on one port):
    // the old one goes first, and comes back if the new one still fails.
    const std::string old_address = bound_address_;
    const int old_port = actual_port_;
    install(net::ListenSocket());
    socket = net::Listen(address, port);
    if (!socket.ok()) {
      absl::StatusOr<net::ListenSocket> restored = net::Listen(old_address, old_port);
      if (restored.ok()) {
        install(*restored);
        return socket.status();
      }
      OMD_LOG(ERROR, "listener: cannot listen on %s again: %s", old_address,
              restored.status().ToString());
      bound_address_.clear();
      SetAddress("");
      return socket.status();
    }
  }
  if (!socket.ok()) return socket.status();  // "cannot listen on 127.0.0.1:1214: ..."
  const int bound_port = socket->port;
  install(*socket);
  bound_address_ = address;
  last_address_ = address;
  bound_port_ = port;
  actual_port_ = bound_port;
  SetAddress(rpc::JoinHostPort(address, bound_port));
  return absl::OkStatus();
}

absl::Status Listener::Accept(const std::string& address, int port) {
  sync::MutexLock lock(&accept_mutex_);
  if (!run_wanted_) {
    wanted_address_ = address;
    wanted_port_ = port;
    return absl::OkStatus();
  }
  return AcceptLocked(address, port);
}

void Listener::StopAccepting() {
  sync::MutexLock lock(&accept_mutex_);
  run_wanted_ = false;
  if (guard_ != nullptr) {
    guard_->StopAccepting();
    guard_->CloseAcceptedAfter(options_.stop_grace);
  } else if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
  }
  bound_address_.clear();
  SetAddress("");
}

void Listener::ConfigureServer(const Options& options, grpc::ResourceQuota& quota,
                               grpc::ServerBuilder& builder) {
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_request_bytes));
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_streams_per_connection);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, options.max_metadata_bytes);
  // No bandwidth-delay probing: it grows what a client may send unasked (the
  // stream window, and the frame size with it) to megabytes, which a stalled
  // request then holds. Requests are small; replies follow the client's window.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  // HTTP/2's default, which clients then keep to; the guard refuses larger frames.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE,
                             static_cast<int>(options.guard.member.http2.max_frame_bytes));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(
                                 options.max_connection_idle)));
  // Long log streams: accept the client's keepalive pings (client/agent_client.cc).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
}

absl::StatusOr<std::unique_ptr<Listener::Generation>> Listener::BuildGeneration() {
  auto generation = std::make_unique<Generation>();
  absl::StatusOr<std::vector<std::unique_ptr<grpc::Service>>> services = services_();
  if (!services.ok()) return services.status();
  generation->services = *std::move(services);
  grpc::ServerBuilder builder;
  for (const std::unique_ptr<grpc::Service>& service : generation->services) {
    builder.RegisterService(service.get());
  }
  // No listening port: connections arrive from the guard (Serve).
  ConfigureServer(options_, resource_quota_, builder);
  generation->server = builder.BuildAndStart();
  if (generation->server == nullptr) {
    return absl::InternalError("cannot start a gRPC server");
  }
  for (const std::string& name : options_.health_names) {
    generation->server->GetHealthCheckService()->SetServingStatus(name, true);
  }
  return generation;
}

absl::Status Listener::Start(ServiceFactory services, net::ConnectionPolicy* policy) {
  services_ = std::move(services);
  policy_ = policy;
  absl::StatusOr<std::unique_ptr<Generation>> generation = BuildGeneration();
  if (!generation.ok()) return generation.status();
  {
    sync::MutexLock lock(&generation_mutex_);
    generation_ = *std::move(generation);
  }
  net::ConnectionGuard::Options guard_options = options_.guard;
  guard_options.control_fd = control_fd_;
  guard_options.control_uids = options_.control_uids;
  sync::MutexLock lock(&accept_mutex_);
  absl::StatusOr<std::unique_ptr<net::ConnectionGuard>> guard = net::ConnectionGuard::Start(
      listen_fd_, std::move(guard_options), this, this, &directory_);
  if (!guard.ok()) return guard.status();
  listen_fd_ = -1;  // the guard's now, and so is control_fd_
  control_fd_ = -1;
  guard_ = *std::move(guard);
  return absl::OkStatus();
}

void Listener::Serve(int fd) {
  sync::MutexLock lock(&generation_mutex_);
  if (generation_ == nullptr) {  // shutting down
    close(fd);
    return;
  }
  grpc::AddInsecureChannelFromFd(generation_->server.get(), fd);
}

net::PeerVerdict Listener::Classify(const net::IpAddress& address) {
  net::PeerVerdict verdict = policy_->Classify(address);
  if (verdict.peer_class == net::PeerClass::kOther && shedding_.load()) verdict.refused = true;
  return verdict;
}

void Listener::HoldBackConnection(uint64_t connection_id) {
  if (guard_ != nullptr) guard_->HoldBack(connection_id);
}

void Listener::ReleaseHeldConnections() {
  if (guard_ != nullptr) guard_->ReleaseHolds();
}

void Listener::CloseConnectionsFrom(const net::IpAddress& source) {
  if (guard_ != nullptr) guard_->CloseConnectionsFrom(source);
}

void Listener::DropSources(std::vector<net::IpAddress> sources) {
  if (guard_ != nullptr) guard_->DropSources(std::move(sources));
}

net::ConnectionGuard::Stats Listener::connection_stats() const {
  return guard_ != nullptr ? guard_->stats() : net::ConnectionGuard::Stats();
}

absl::Duration Listener::guard_cpu_time() const {
  return guard_ != nullptr ? guard_->thread_cpu_time() : absl::ZeroDuration();
}

void Listener::FinishStreams(const Generation& generation, const absl::Status& status) {
  for (const std::unique_ptr<grpc::Service>& service : generation.services) {
    if (auto* streaming = dynamic_cast<StreamingService*>(service.get())) {
      streaming->FinishStreams(status);
    }
  }
}

void Listener::Rebuild() {
  if (shut_down_.load()) return;
  absl::StatusOr<std::unique_ptr<Generation>> fresh = BuildGeneration();
  if (!fresh.ok()) {
    OMD_LOG(ERROR, "listener: cannot rebuild the gRPC server: %s", fresh.status().ToString());
    return;
  }
  std::unique_ptr<Generation> old;
  {
    sync::MutexLock lock(&generation_mutex_);
    if (generation_ == nullptr) return;  // shut down meanwhile
    old = std::move(generation_);
    generation_ = *std::move(fresh);
  }
  rebuilds_.fetch_add(1);
  // Its connections end with it; their clients reconnect to the new server. Its
  // streams would hold the shutdown for its whole grace.
  FinishStreams(*old, absl::UnavailableError("the listener is restarting; call again"));
  old->server->Shutdown(absl::ToChronoTime(absl::Now() + options_.shutdown_grace));
  old->server->Wait();
  OMD_LOG(WARNING, "listener: gRPC server rebuilt (%d so far)", rebuilds_.load());
}

void Listener::CheckMemory() {
  const size_t resident = posix::ResidentBytes();
  const double budget = static_cast<double>(options_.memory_budget_bytes);
  if (!shedding_.load() && resident > kShedAbove * budget) {
    shedding_.store(true);
    guard_->CloseClass(net::PeerClass::kOther);
    OMD_LOG(WARNING,
            "memory %d MiB, over %d%% of the %d MiB budget: outsiders' connections closed "
            "and refused",
            resident >> 20, static_cast<int>(kShedAbove * 100),
            options_.memory_budget_bytes >> 20);
  } else if (shedding_.load()) {
    malloc_trim(0);  // freed connections' memory goes back to the system
    if (posix::ResidentBytes() < kShedUntilBelow * budget) {
      shedding_.store(false);
      OMD_LOG(INFO, "memory back to %d MiB: outsiders accepted again", posix::ResidentBytes() >> 20);
    }
  }
}

absl::Status Listener::Run(const std::function<bool(absl::Duration)>& stopped_within) {
  {
    sync::MutexLock lock(&accept_mutex_);
    run_wanted_ = true;
    absl::Status bound = AcceptLocked(wanted_address_, wanted_port_);
    if (!bound.ok()) return bound;
  }
  const std::function<bool(const std::string&, absl::Duration)> probe =
      options_.probe ? options_.probe : HealthCheck;
  const absl::Duration tick = std::min(kMemoryCheckInterval, options_.probe_interval);
  absl::Time next_probe = absl::Now() + options_.probe_interval;
  int failures = 0;
  while (!stopped_within(tick)) {
    CheckMemory();
    if (absl::Now() < next_probe) continue;
    std::string target;
    {
      sync::MutexLock lock(&accept_mutex_);
      if (bound_address_.empty()) {
        return absl::UnavailableError(
            absl::StrCat("not listening on ", rpc::JoinHostPort(wanted_address_, wanted_port_)));
      }
      target = ProbeTarget(bound_address_, actual_port_);
    }
    if (probe(target, options_.probe_timeout)) {
      failures = 0;
    } else if (++failures >= options_.probe_failures) {
      OMD_LOG(WARNING, "listener: %s did not answer %d health checks in a row: rebuilding",
              target, failures);
      Rebuild();
      failures = 0;
    }
    next_probe = absl::Now() + options_.probe_interval;
  }
  StopAccepting();
  return absl::OkStatus();
}

void Listener::StopServing() {
  sync::MutexLock lock(&generation_mutex_);
  if (generation_ != nullptr) generation_->server->GetHealthCheckService()->Shutdown();
}

void Listener::Shutdown() {
  if (shut_down_.exchange(true)) return;
  std::unique_ptr<Generation> generation;
  StopServing();
  {
    sync::MutexLock lock(&accept_mutex_);
    run_wanted_ = false;
    if (guard_ != nullptr) guard_->StopAccepting();
    bound_address_.clear();
  }
  SetAddress("");
  {
    sync::MutexLock lock(&generation_mutex_);
    generation = std::move(generation_);
  }
  if (generation != nullptr) {
    // A followed stream never ends by itself: ended first, it lets the shutdown
    // finish as soon as the other calls do.
    FinishStreams(*generation, absl::UnavailableError("the daemon is stopping"));
    // The guard goes on relaying meanwhile, so that replies in flight get out.
    generation->server->Shutdown(absl::ToChronoTime(absl::Now() + options_.shutdown_grace));
    generation->server->Wait();
  }
  if (guard_ != nullptr) guard_->Stop();
}

}  // namespace omd::server

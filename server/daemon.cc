#include "server/daemon.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <unistd.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "config/atomic_file.h"
#include "config/envelope_options.h"
#include "log/log.h"
#include "process/subprocess.h"
#include "rpc/peer.h"
#include "server/listener_handlers.h"

namespace omd::server {
namespace {

constexpr absl::string_view kAgentServiceName = "omd.v1.Agent";

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

std::shared_ptr<const ClusterView> MakeClusterView(const config::NodeConfig& config,
                                                   bool unencrypted_for_benchmark) {
  auto view = std::make_shared<ClusterView>();
  view->nodes.insert(config.cluster_nodes.begin(), config.cluster_nodes.end());
  crypto::EnvelopeOptions envelope = config::EnvelopeOptionsFor(config);
  envelope.unencrypted_for_benchmark = unencrypted_for_benchmark;
  view->codec = std::make_shared<crypto::EnvelopeCodec>(std::move(envelope));
  return view;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(Options options) {
  std::unique_ptr<Daemon> daemon(new Daemon());
  absl::StatusOr<config::NodeConfig> config = config::LoadOrCreateNodeConfig(options.root);
  if (!config.ok()) return config.status();
  const config::NodeConfig& node = *config;

  Gate::Options gate_options;
  gate_options.replay_guard.window = node.clock_skew;
  daemon->gate_ = std::make_unique<Gate>(
      gate_options, MakeClusterView(node, options.unencrypted_for_benchmark));

  DequeueRunner::Options dequeue;
  dequeue.argv = options.dequeue_command;
  if (dequeue.argv.empty()) {
    dequeue.argv = {OmBesideThisBinary(), "--root", options.root, "node", "dequeue",
                    "actions"};
  }
  dequeue.timeout = options.dequeue_timeout;
  daemon->dequeue_runner_ = std::make_unique<DequeueRunner>(std::move(dequeue));

  absl::Status added = AddListenerHandlers(daemon->gate_.get(),
                                           daemon->dequeue_runner_.get(),
                                           &daemon->handlers_);
  if (!added.ok()) return added;
  absl::StatusOr<std::unique_ptr<AgentService>> service =
      AgentService::Create(daemon->gate_.get(), &daemon->handlers_);
  if (!service.ok()) return service.status();
  daemon->service_ = *std::move(service);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(rpc::JoinHostPort(node.listener_addr, node.listener_port),
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(daemon->service_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_request_bytes));
  // gRPC sets SO_REUSEPORT by default: a second omd on the same port would start
  // and silently receive half of the connections. Fail instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_streams_per_connection);
  // Long log streams: accept the client's keepalive pings (client/agent_client.cc).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  daemon->server_ = builder.BuildAndStart();
  if (daemon->server_ == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", rpc::JoinHostPort(node.listener_addr, node.listener_port),
        " (address in use or not local?)"));
  }
  daemon->server_->GetHealthCheckService()->SetServingStatus(
      std::string(kAgentServiceName), true);
  daemon->address_ = rpc::JoinHostPort(node.listener_addr, port);
  absl::Status recorded = config::WriteFileAtomically(
      config::ListenerAddressPath(options.root), daemon->address_ + "\n", 0644);
  if (!recorded.ok()) return recorded;
  daemon->options_ = std::move(options);
  OMD_LOG(INFO, "omd %s of cluster %s listening on %s", node.node_name,
          node.cluster_name, daemon->address_);
  return daemon;
}

void Daemon::Shutdown() {
  if (server_ == nullptr) return;
  server_->GetHealthCheckService()->Shutdown();  // every service NOT_SERVING
  server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.shutdown_grace));
  server_->Wait();
  server_.reset();
  dequeue_runner_.reset();
  OMD_LOG(INFO, "omd stopped");
}

Daemon::~Daemon() { Shutdown(); }

}  // namespace omd::server

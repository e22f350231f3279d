#include "testing/daemon_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/create_channel_posix.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/support/sync_stream.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "config/atomic_file.h"
#include "config/envelope_options.h"
#include "config/node_config.h"
#include "net/listen_socket.h"
#include "net/unix_socket.h"
#include "posix/unique_fd.h"
#include "process/subprocess.h"
#include "proto/health.grpc.pb.h"
#include "rpc/agent_methods.h"

extern char** environ;

namespace omd::testing {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

std::string OmdPath() { return Runfile("daemon/omd"); }
std::string OmPath() { return Runfile("client/om"); }

std::string NewTempDir(const std::string& prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(base != nullptr ? base : "/tmp", "/", prefix, ".XXXXXX");
  if (mkdtemp(path.data()) == nullptr) return "";
  return path;
}

absl::Status WriteNodeConf(const std::string& root, const NodeConfSpec& spec) {
  absl::Status made = config::MakeDirectories(root + "/etc", 0700);
  if (!made.ok()) return made;
  const std::vector<std::string> nodes =
      spec.cluster_nodes.empty() ? std::vector<std::string>{spec.node_name}
                                 : spec.cluster_nodes;
  std::string addresses;
  for (const auto& [node, address] : spec.node_addresses) {
    absl::StrAppend(&addresses, "addr@", node, " = ", address, "\n");
  }
  const std::string text = absl::StrCat(
      "[node]\nname = ", spec.node_name, "\n\n[cluster]\nname = ", spec.cluster_name,
      "\nsecret = ", spec.secret, "\nkey_generation = ", spec.key_generation,
      spec.previous_secret.empty() ? "" : "\nprevious_secret = ", spec.previous_secret,
      "\nnodes = ", absl::StrJoin(nodes, " "), "\n", addresses,
      "\n[listener]\naddr = ", spec.listen_address, "\nport = ", spec.port, "\n",
      spec.extra);
  return config::WriteFileAtomically(root + "/etc/node.conf", text, 0600);
}

absl::StatusOr<pid_t> SpawnInBackground(std::vector<std::string> argv,
                                        const std::string& log_path) {
  std::vector<char*> c_argv;
  for (std::string& arg : argv) c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, c_argv[0], &actions, nullptr, c_argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    errno = spawned;
    return Errno(absl::StrCat("spawn ", argv[0]));
  }
  return pid;
}

absl::StatusOr<int> TerminateAndWait(pid_t pid, absl::Duration grace) {
  kill(pid, SIGTERM);
  const absl::Time deadline = absl::Now() + grace;
  int wait_status = 0;
  while (waitpid(pid, &wait_status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &wait_status, 0);
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid, " ignored SIGTERM for ", absl::FormatDuration(grace)));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return wait_status;
}

absl::StatusOr<std::unique_ptr<DaemonProcess>> DaemonProcess::Start(Options options) {
  std::unique_ptr<DaemonProcess> daemon(new DaemonProcess());
  daemon->root_ = !options.root.empty() ? options.root : NewTempDir(options.node.node_name);
  if (daemon->root_.empty()) return Errno("mkdtemp");
  if (!options.keep_node_conf || options.root.empty()) {
    absl::Status written = WriteNodeConf(daemon->root_, options.node);
    if (!written.ok()) return written;
  }
  absl::Status made = config::MakeDirectories(daemon->root_ + "/var/log", 0755);
  if (!made.ok()) return made;

  std::vector<std::string> argv = {options.omd_path.empty() ? OmdPath() : options.omd_path,
                                   "--root", daemon->root_};
  argv.insert(argv.end(), options.extra_flags.begin(), options.extra_flags.end());
  absl::StatusOr<pid_t> pid = SpawnInBackground(argv, daemon->root_ + "/var/log/omd.stderr");
  if (!pid.ok()) return pid.status();
  daemon->pid_ = *pid;

  const absl::Time deadline = absl::Now() + options.start_timeout;
  const std::string address_file = config::ListenerAddressPath(daemon->root_);
  while (absl::Now() < deadline) {
    int wait_status = 0;
    if (waitpid(daemon->pid_, &wait_status, WNOHANG) == daemon->pid_) {
      daemon->pid_ = -1;
      return absl::InternalError(
          absl::StrCat("omd exited during start:\n", daemon->Log()));
    }
    absl::StatusOr<std::string> address = config::ReadFileToString(address_file, 4096);
    if (address.ok()) {
      daemon->address_ = std::string(absl::StripAsciiWhitespace(*address));
      absl::StatusOr<bool> serving = IsServing(daemon->address_);
      if (serving.ok() && *serving) return daemon;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("omd did not serve within ", absl::FormatDuration(options.start_timeout),
                   ":\n", daemon->Log()));
}

absl::Status DaemonProcess::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  absl::StatusOr<int> wait_status = TerminateAndWait(pid_, absl::Seconds(15));
  pid_ = -1;
  if (!wait_status.ok()) return wait_status.status();
  if (!WIFEXITED(*wait_status) || WEXITSTATUS(*wait_status) != 0) {
    return absl::InternalError(absl::StrCat("omd exited with status ", *wait_status, ":\n",
                                            Log()));
  }
  return absl::OkStatus();
}

DaemonProcess::~DaemonProcess() { Stop().IgnoreError(); }

std::string DaemonProcess::Log() const {
  return config::ReadFileToString(root_ + "/var/log/omd.stderr", 1 << 20).value_or("");
}

OmResult RunOm(const std::string& root, const std::vector<std::string>& args) {
  return RunOmWithEnvironment(root, {}, args);
}

OmResult RunOmWithEnvironment(const std::string& root,
                              const std::vector<std::string>& env_arguments,
                              const std::vector<std::string>& args) {
  process::ProcessOptions options;
  if (!env_arguments.empty()) {
    options.argv = {"/usr/bin/env"};
    options.argv.insert(options.argv.end(), env_arguments.begin(), env_arguments.end());
  }
  options.argv.insert(options.argv.end(), {OmPath(), "--root", root});
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.timeout = absl::Seconds(60);
  OmResult result;
  absl::StatusOr<process::ProcessResult> run = process::RunProcess(options);
  if (!run.ok()) {
    result.stderr_text = run.status().ToString();
    return result;
  }
  result.exit_code = run->exit_code;
  result.stdout_text = run->stdout_text;
  result.stderr_text = run->stderr_text;
  return result;
}

absl::StatusOr<posix::UniqueFd> ConnectFromSource(const std::string& source_ip,
                                                  const std::string& target,
                                                  absl::Duration timeout) {
  std::vector<std::string> host_port = absl::StrSplit(target, ':');
  int port = 0;
  if (host_port.size() != 2 || !absl::SimpleAtoi(host_port[1], &port)) {
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 host:port: ", target));
  }
  sockaddr_in source{};
  source.sin_family = AF_INET;
  sockaddr_in destination{};
  destination.sin_family = AF_INET;
  destination.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, source_ip.c_str(), &source.sin_addr) != 1 ||
      inet_pton(AF_INET, host_port[0].c_str(), &destination.sin_addr) != 1) {
    return absl::InvalidArgumentError("bad IPv4 address");
  }
  posix::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.is_open()) return Errno("socket");
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&source), sizeof(source)) != 0 ||
      (connect(fd.get(), reinterpret_cast<sockaddr*>(&destination), sizeof(destination)) != 0 &&
       errno != EINPROGRESS)) {
    return Errno(absl::StrCat("connect from ", source_ip, " to ", target));
  }
  pollfd connecting{fd.get(), POLLOUT, 0};
  int error_number = 0;
  socklen_t length = sizeof(error_number);
  if (poll(&connecting, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1 ||
      getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error_number, &length) != 0 ||
      error_number != 0) {
    return absl::UnavailableError(absl::StrCat("connect from ", source_ip, " to ", target,
                                               ": no answer within ",
                                               absl::FormatDuration(timeout), " or refused"));
  }
  return fd;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelFromSource(
    const std::string& source_ip, const std::string& target) {
  absl::StatusOr<posix::UniqueFd> fd = ConnectFromSource(source_ip, target, absl::Seconds(3));
  if (!fd.ok()) return fd.status();
  return grpc::CreateInsecureChannelFromFd(target, fd->Release());
}

grpc::Status CallAgentMethod(grpc::Channel* channel, const std::string& method_name,
                             const std::string& request_bytes) {
  const google::protobuf::MethodDescriptor* method =
      rpc::AgentService().FindMethodByName(method_name);
  if (method == nullptr) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, method_name);
  const std::string path = rpc::MethodPath(*method);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  if (method->server_streaming()) {
    std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
        grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
            channel,
            grpc::internal::RpcMethod(path.c_str(), grpc::internal::RpcMethod::SERVER_STREAMING),
            &context, request));
    grpc::ByteBuffer reply;
    while (reader->Read(&reply)) {
    }
    return reader->Finish();
  }
  grpc::ByteBuffer reply;
  return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      channel, grpc::internal::RpcMethod(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC),
      &context, request, &reply);
}

absl::StatusOr<bool> IsServing(const std::string& target, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return absl::UnavailableError(status.error_message());
  }
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
}

absl::StatusOr<std::unique_ptr<client::AgentClient>> ControlClient(const std::string& root,
                                                                   absl::Duration timeout,
                                                                   bool own_connection) {
  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(root);
  if (!config.ok()) return config.status();
  absl::StatusOr<std::string> target = net::UnixTarget(config::ControlSocketPath(root));
  if (!target.ok()) return target.status();
  client::AgentClient::Options options;
  options.target = *target;
  options.envelope = config::EnvelopeOptionsFor(*config);
  options.recipient = config->node_name;
  options.reply_senders = {config->node_name};
  options.timeout = timeout;
  if (own_connection) {
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    options.channel =
        grpc::CreateCustomChannel(*target, grpc::InsecureChannelCredentials(), arguments);
  }
  return client::AgentClient::Create(std::move(options));
}

OwnDirectories::OwnDirectories(const std::string& name) {
  if (std::getenv("TEST_SRCDIR") == nullptr) {
    std::error_code error;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
    if (!error) setenv("TEST_SRCDIR", (self.string() + ".runfiles").c_str(), 1);
  }
  if (std::getenv("TEST_TMPDIR") != nullptr) return;
  std::string dir = absl::StrCat("/tmp/", name, ".XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) return;
  setenv("TEST_TMPDIR", dir.c_str(), 1);
  temporary_ = dir;
}

OwnDirectories::~OwnDirectories() {
  if (temporary_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(temporary_, ignored);
}

absl::StatusOr<int> FreePort(const std::string& address) {
  absl::StatusOr<net::ListenSocket> probe = net::Listen(address, 0);
  if (!probe.ok()) return probe.status();
  close(probe->fd);
  return probe->port;
}

}  // namespace omd::testing

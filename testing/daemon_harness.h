// Real omd processes for tests: each on a temporary root with its own node.conf,
// listening on a free port of a chosen loopback address; started, awaited until
// grpc.health.v1 says SERVING, and stopped with SIGTERM. Also runs the real om
// binary against them, and opens channels from a chosen source address, so that
// tests can play several nodes and an impostor on one machine (127.0.0.0/8).
//
//   DaemonProcess::Options options;
//   options.node_name = "node1";
//   options.cluster_nodes = {"node1", "node2"};
//   auto daemon = DaemonProcess::Start(options).value();
//   OmResult result = RunOm(daemon->root(), {"daemon", "blacklist", "status"});
#ifndef OMD_TESTING_DAEMON_HARNESS_H_
#define OMD_TESTING_DAEMON_HARNESS_H_

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/agent_client.h"
#include "posix/unique_fd.h"
#include "testing/runfiles.h"

namespace omd::testing {

inline constexpr char kTestSecret[] = "harness-secret-0123456789abcdef";

// Paths of the binaries under test, from the test's runfiles.
std::string OmdPath();
std::string OmPath();

// For a benchmark run outside `bazel test` (bazel run, or the binary itself):
// omd and om from this binary's runfiles, and a temporary directory of its own
// for the daemons' roots (/tmp/<name>.XXXXXX), removed when it goes. Under
// `bazel test`, it changes nothing.
class OwnDirectories {
 public:
  explicit OwnDirectories(const std::string& name);
  ~OwnDirectories();
  OwnDirectories(const OwnDirectories&) = delete;
  OwnDirectories& operator=(const OwnDirectories&) = delete;

 private:
  std::string temporary_;  // empty: not ours
};

// A port of `address` free now (bound, then released), for a daemon to be told
// to listen on, so that the other nodes can be told where it is beforehand.
absl::StatusOr<int> FreePort(const std::string& address);

// A fresh directory under $TEST_TMPDIR.
std::string NewTempDir(const std::string& prefix);

// Writes ROOT/etc/node.conf (mode 0600) for a test node.
struct NodeConfSpec {
  std::string node_name = "node1";
  std::string cluster_name = "test";
  std::string secret = kTestSecret;
  uint32_t key_generation = 1;
  std::string previous_secret;  // empty: none
  std::vector<std::string> cluster_nodes;  // empty: just node_name
  // [cluster] addr@<node> = <address>, e.g. {{"node2", "127.0.0.2"}}.
  std::map<std::string, std::string> node_addresses;
  std::string listen_address = "127.0.0.1";
  int port = 0;
  std::string extra;  // appended verbatim, so in [listener] unless it opens a section
};
absl::Status WriteNodeConf(const std::string& root, const NodeConfSpec& spec);

// A program started in the background, its standard input /dev/null and its
// standard error `log_path`: its pid.
absl::StatusOr<pid_t> SpawnInBackground(std::vector<std::string> argv,
                                        const std::string& log_path);

// SIGTERM, then waits up to `grace`, then SIGKILL (DEADLINE_EXCEEDED): the wait
// status of a process that exited in time.
absl::StatusOr<int> TerminateAndWait(pid_t pid, absl::Duration grace);

class DaemonProcess {
 public:
  struct Options {
    NodeConfSpec node;
    std::vector<std::string> extra_flags;  // passed to omd
    // A root to start in (e.g. a stopped daemon's, to restart it); empty: a new
    // temporary one. Its node.conf is written from `node` either way, unless
    // `keep_node_conf` (a restart on the node.conf the daemon left, e.g. after
    // it joined a cluster).
    std::string root;
    bool keep_node_conf = false;
    absl::Duration start_timeout = absl::Seconds(20);
    // The omd binary; empty: this build's (OmdPath()). Benchmarks pass another
    // build's to compare the two side by side.
    std::string omd_path;
  };

  static absl::StatusOr<std::unique_ptr<DaemonProcess>> Start(Options options);

  ~DaemonProcess();

  // SIGTERM, then waits; an error if omd did not exit 0 within the grace period.
  absl::Status Stop();

  const std::string& root() const { return root_; }
  const std::string& address() const { return address_; }  // "host:port"
  pid_t pid() const { return pid_; }
  // What omd wrote to stderr so far (its log).
  std::string Log() const;

 private:
  DaemonProcess() = default;

  std::string root_;
  std::string address_;
  pid_t pid_ = -1;
};

struct OmResult {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
};

// Runs `om --root ROOT args...`.
OmResult RunOm(const std::string& root, const std::vector<std::string>& args);
// The same through env(1) with `env_arguments` first (e.g. "EDITOR=x", or "-u",
// "EDITOR"), to run om in an environment of the test's choosing.
OmResult RunOmWithEnvironment(const std::string& root,
                              const std::vector<std::string>& env_arguments,
                              const std::vector<std::string>& args);

// A TCP connection to `target` ("a.b.c.d:port") from `source_ip`, non-blocking,
// once its handshake has completed; UNAVAILABLE if it did not within `timeout`
// (a source the daemon drops in the kernel never completes it).
absl::StatusOr<posix::UniqueFd> ConnectFromSource(const std::string& source_ip,
                                                  const std::string& target,
                                                  absl::Duration timeout);

// A channel to `target` whose connection leaves from `source_ip`, e.g. 127.0.0.3
// (connected within 3 s).
absl::StatusOr<std::shared_ptr<grpc::Channel>> ChannelFromSource(
    const std::string& source_ip, const std::string& target);

// One call of an Agent method (unary or server streaming: the stream is read to
// its end) with ready-made request bytes, e.g. a serialized Envelope, or garbage.
grpc::Status CallAgentMethod(grpc::Channel* channel, const std::string& method_name,
                             const std::string& request_bytes);

// A client of the daemon of `root` through its control socket, sealing as that
// node, as om does; each call within `timeout`. gRPC shares one connection among
// channels to the same target; with `own_connection`, this client has one of its
// own (as separate om processes have).
absl::StatusOr<std::unique_ptr<client::AgentClient>> ControlClient(
    const std::string& root, absl::Duration timeout = absl::Seconds(30),
    bool own_connection = false);

// grpc.health.v1 Check of `service` ("" for the whole server).
absl::StatusOr<bool> IsServing(const std::string& target, const std::string& service = "");

}  // namespace omd::testing

#endif  // OMD_TESTING_DAEMON_HARNESS_H_

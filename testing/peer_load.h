// A cluster peer calling a daemon back to back while something else (an attack)
// goes on: node2, from its own address, BlacklistStatus after BlacklistStatus,
// reconnecting whenever a call fails. Its latencies say whether the daemon kept
// serving its members.
//
//   PeerLoad peer(daemon->address());  // starts calling at once
//   ... attack ...
//   PeerLatencies served = peer.Stop();
//   EXPECT_EQ(served.failures, 0) << served.first_failure;
#ifndef OMD_TESTING_PEER_LOAD_H_
#define OMD_TESTING_PEER_LOAD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "client/agent_client.h"
#include "sync/mutex.h"
#include "testing/daemon_harness.h"

namespace omd::testing {

// node2's address in the attack tests' cluster: node1 knows it (addr@node2), so
// connections from it are a member's.
inline constexpr char kPeerSource[] = "127.0.0.2";

struct PeerLatencies {
  int64_t calls = 0;
  int64_t failures = 0;
  std::string first_failure;
  // Of every call, failed ones included; zero if there was none.
  absl::Duration p50, p99, max;
};

class PeerLoad {
 public:
  struct Options {
    std::string source = kPeerSource;
    std::string cluster = "test";
    std::string nodename = "node2";
    std::string recipient = "node1";
    std::string secret = kTestSecret;
    absl::Duration timeout = absl::Seconds(5);     // of each call
    absl::Duration pause = absl::Milliseconds(5);  // between calls
  };

  // Starts calling `target` ("host:port") on a thread of its own.
  explicit PeerLoad(std::string target) : PeerLoad(std::move(target), Options()) {}
  PeerLoad(std::string target, Options options);
  ~PeerLoad();  // stops

  PeerLoad(const PeerLoad&) = delete;
  PeerLoad& operator=(const PeerLoad&) = delete;

  // Stops calling (after the call in flight) and returns what it saw. Idempotent.
  PeerLatencies Stop();

 private:
  // A fresh connection from options_.source; null if it cannot connect.
  std::unique_ptr<client::AgentClient> Connect();
  void Run();

  const std::string target_;
  const Options options_;
  std::atomic<bool> stopping_{false};
  sync::Mutex mutex_;
  PeerLatencies result_ ABSL_GUARDED_BY(mutex_);
  std::vector<absl::Duration> samples_ ABSL_GUARDED_BY(mutex_);
  std::thread thread_;  // last: started once the fields above exist
};

}  // namespace omd::testing

#endif  // OMD_TESTING_PEER_LOAD_H_

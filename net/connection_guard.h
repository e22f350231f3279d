// The front of omd's listener: accepts TCP connections itself, decides who may
// connect, and relays each connection's bytes to gRPC through a socket pair while
// an Http2Inspector reads the frame headers going both ways.
//
// Why not let gRPC accept: Debian's gRPC 1.51 stops accepting for good after one
// EMFILE (CVE-2023-4785), has no caps on connections, and cannot defend itself
// against rapid reset or giant header blocks (net/http2_inspector.h). Here:
// - the accept loop survives EMFILE with a reserve descriptor: it frees it, accepts,
//   and either makes room (closing an outsider's connection for a local or member
//   one) or closes the newcomer, so the backlog never jams;
// - every source belongs to a class (ConnectionPolicy): the local node, cluster
//   members, and everyone else. Each class has its own caps, in all and per
//   source (an IPv4 address or an IPv6 /64), so a flood from outside never takes
//   the members' or the local node's room. The local class makes room by closing
//   its least recently active connection rather than refusing;
// - a connection that breaks its class' HTTP/2 limits is closed at once, before
//   what it just sent reaches gRPC.
//
// gRPC sees each connection as "fd:N" (its end of the pair); PeerDirectory says
// who is behind it, so the gate can count senders by their real address.
//
//   ConnectionGuard::Options options;  // per-class limits
//   PeerDirectory directory;
//   auto guard =
//       ConnectionGuard::Start(listen_fd, options, &policy, &sink, &directory).value();
//   ... directory.Find(context->peer()) ...
//   guard->Stop();
#ifndef OMD_NET_CONNECTION_GUARD_H_
#define OMD_NET_CONNECTION_GUARD_H_

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
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "net/address.h"
#include "net/http2_inspector.h"
#include "sync/mutex.h"

namespace omd::net {

enum class PeerClass : uint8_t { kLocal = 0, kMember = 1, kOther = 2 };
inline constexpr int kPeerClasses = 3;
absl::string_view PeerClassName(PeerClass peer_class);

struct PeerVerdict {
  PeerClass peer_class = PeerClass::kOther;
  bool refused = false;  // e.g. a blacklisted outsider: closed at once
};

// Who may connect. Called on the guard's thread for every accepted connection:
// must be cheap and must not block.
class ConnectionPolicy {
 public:
  virtual ~ConnectionPolicy() = default;
  virtual PeerVerdict Classify(const IpAddress& address) = 0;
};

// Where admitted connections go (gRPC, in the daemon).
class ConnectionSink {
 public:
  virtual ~ConnectionSink() = default;
  // Takes ownership of `fd`, a connected, non-blocking stream socket.
  virtual void Serve(int fd) = 0;
};

struct ConnectionInfo {
  uint64_t id = 0;
  IpAddress address;  // 127.0.0.1 for the control channel
  PeerClass peer_class = PeerClass::kOther;
  // Accepted on the local control socket, from a process of an allowed uid.
  bool control_channel = false;
  uint32_t uid = 0;  // the control channel's peer (SO_PEERCRED)
};

// Who is behind each descriptor handed to the sink. gRPC names such a connection
// "fd:N" in ServerContext::peer(), and keeps N open while any call of it runs.
class PeerDirectory {
 public:
  // `grpc_peer` is "fd:N".
  std::optional<ConnectionInfo> Find(absl::string_view grpc_peer) const;
  std::optional<ConnectionInfo> FindFd(int fd) const;
  void Add(int fd, const ConnectionInfo& info);
  // Only if `fd` still belongs to connection `id`.
  void Remove(int fd, uint64_t id);

 private:
  mutable sync::Mutex mutex_;
  absl::flat_hash_map<int, ConnectionInfo> by_fd_ ABSL_GUARDED_BY(mutex_);
};

struct ClassLimits {
  size_t max_connections = 64;
  size_t max_connections_per_source = 4;  // 0: no cap per source
  // At max_connections, close the class' least recently active connection to
  // make room, instead of refusing the newcomer.
  bool evict_when_full = false;
  RateLimit new_connections_per_source;  // accepts; no limit by default
  // A connection older than this is closed; infinite by default (log streams
  // live long).
  absl::Duration max_connection_age = absl::InfiniteDuration();
  Http2Limits http2;
};

class ConnectionGuard {
 public:
  struct Options {
    Options();  // the default limits of each class
    ClassLimits local;
    ClassLimits member;
    ClassLimits other;
    // Bytes read at once from either side; also the most a connection buffers
    // per direction when the other side is slow.
    size_t read_chunk_bytes = 32 << 10;
    // How often time limits (preface, stalled requests) are checked.
    absl::Duration sweep_interval = absl::Milliseconds(250);
    // Descriptors kept for everything but connections (files, pipes, gRPC).
    size_t reserved_descriptors = 128;
    // A listening UNIX socket (the guard takes it; -1: none): the local control
    // channel. Its connections are relayed as local-class ones, named as the
    // control channel in the directory, if the peer's uid (SO_PEERCRED) is one
    // of control_uids; others are closed at once.
    int control_fd = -1;
    std::vector<uint32_t> control_uids;
  };

  struct Stats {
    uint64_t accepted = 0;
    uint64_t refused_by_policy = 0;   // banned or shed
    uint64_t refused_by_cap = 0;      // class or per-source cap
    uint64_t refused_by_rate = 0;     // per-source accept rate
    uint64_t refused_out_of_descriptors = 0;
    uint64_t evicted = 0;             // closed to make room
    uint64_t closed_for_abuse = 0;    // broke an HTTP/2 limit
    uint64_t held_back = 0;           // HoldBack()s applied
    uint64_t descriptor_exhaustion = 0;  // EMFILE/ENFILE seen by accept
    size_t dropped_sources = 0;          // by the kernel, now
    uint64_t control_accepted = 0;       // on the control socket
    uint64_t control_refused = 0;        // on the control socket: another uid
    size_t open[kPeerClasses] = {};
  };

  // Serves connections accepted on `listen_fd` (listening, non-blocking; the guard
  // takes it; -1: none yet), recording each in `directory`. `policy`, `sink` and `directory`
  // must outlive the guard. Caps are lowered to fit RLIMIT_NOFILE (3 descriptors
  // per connection), with a warning.
  static absl::StatusOr<std::unique_ptr<ConnectionGuard>> Start(int listen_fd,
                                                                Options options,
                                                                ConnectionPolicy* policy,
                                                                ConnectionSink* sink,
                                                                PeerDirectory* directory);
  ~ConnectionGuard();

  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  // Replaces the listening TCP socket (the guard takes `fd`; -1: none) and waits
  // until the old one is closed, its waiting connections accepted first.
  // Connections go on. Never call it from a sink or policy (the guard's thread).
  void SetListenSocket(int fd);
  // SetListenSocket(-1): the port is free again when it returns.
  void StopAccepting();
  // Closes every connection and stops the thread. Idempotent.
  void Stop();

  // Closes every connection from `source_key` (an IpAddress::SourceKey()), e.g.
  // when it is banned: within half a second, after the reply in flight.
  void CloseConnectionsFrom(const IpAddress& source_key);
  // Stops reading from connection `id` for a while, for a sender the gate refused
  // as blacklisted on it: 250 ms the first time, twice as long each time after,
  // 4 s at most (to the sweep's granularity). Its further messages wait in the
  // kernel's buffers, costing omd nothing, so a blacklisted sender on a member's
  // source, which must not be refused at the connection (the real member sends
  // from it), gets a few messages a second per connection to the gate. Replies
  // still flow; its other connections, and everyone else's, go on. Asynchronous.
  void HoldBack(uint64_t id);
  // Ends every hold, and starts each connection's next one at 250 ms again (the
  // blacklist was cleared: its senders are welcome again). Asynchronous.
  void ReleaseHolds();
  // Closes the TCP connections accepted so far, once `grace` has passed (e.g.
  // when the port is closed on purpose). Control channel ones are not the
  // guard's. Asynchronous.
  void CloseAcceptedAfter(absl::Duration grace);
  // Closes every connection of a class (memory pressure). Asynchronous.
  void CloseClass(PeerClass peer_class);
  // Has the kernel drop the TCP segments of these sources (SourceKey()s) before
  // they are accepted: their connect()s then time out and cost omd nothing
  // (net/source_filter.h). Replaces the previous list; empty drops nothing.
  // Asynchronous.
  void DropSources(std::vector<IpAddress> sources);

  Stats stats() const;
  // CPU time the guard's thread has used: what relaying costs.
  absl::Duration thread_cpu_time() const;

 private:
  class Loop;

  ConnectionGuard() = default;

  void Post(std::function<void(Loop&)> command);

  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace omd::net

#endif  // OMD_NET_CONNECTION_GUARD_H_

#include "net/connection_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <list>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "log/log.h"
#include "net/source_filter.h"

namespace omd::net {
namespace {

// Accepts handled per wake-up, so that relaying is not starved by a flood.
constexpr int kAcceptsPerWakeup = 64;
constexpr int kEventsPerWait = 256;
// Accepts at most when the listening socket is replaced: its backlog.
constexpr int kAcceptsWhenDraining = 4096;
// Descriptors a relayed connection holds: the client's socket, both ends of the
// pair (gRPC's until gRPC closes it).
constexpr size_t kDescriptorsPerConnection = 3;
// How long accepting pauses after an error that retrying at once cannot fix.
constexpr absl::Duration kAcceptPause = absl::Milliseconds(100);
// Per-source accept buckets kept at most; beyond, they start over.
constexpr size_t kMaxAcceptBuckets = 8192;
constexpr absl::Duration kAbuseLogInterval = absl::Seconds(10);
// How long a banned source's connections live on, for the refusal in flight.
constexpr absl::Duration kBannedSourceGrace = absl::Milliseconds(200);
// HoldBack: how long a connection's bytes are left unread, doubled each time.
constexpr absl::Duration kFirstHold = absl::Milliseconds(250);
constexpr absl::Duration kLongestHold = absl::Seconds(4);
// Where the control channel's connections come from, for the gate's records.
const IpAddress kLoopback = *IpAddress::Parse("127.0.0.1");

enum class WatchKind : uint8_t { kListen, kControl, kWake, kClient, kRelay };

// The guard's clock, for deadlines and rates: monotonic, so that a step of the
// wall clock neither stretches them nor fires them all at once. An absl::Time
// only for its arithmetic.
absl::Time MonotonicNow() {
  return absl::UnixEpoch() +
         absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

}  // namespace

absl::string_view PeerClassName(PeerClass peer_class) {
  switch (peer_class) {
    case PeerClass::kLocal:
      return "local";
    case PeerClass::kMember:
      return "member";
    case PeerClass::kOther:
      return "other";
  }
  return "other";
}

std::optional<ConnectionInfo> PeerDirectory::Find(absl::string_view grpc_peer) const {
  int fd = -1;
  if (!absl::ConsumePrefix(&grpc_peer, "fd:") || !absl::SimpleAtoi(grpc_peer, &fd)) {
    return std::nullopt;
  }
  return FindFd(fd);
}

std::optional<ConnectionInfo> PeerDirectory::FindFd(int fd) const {
  sync::MutexLock lock(&mutex_);
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return std::nullopt;
  return it->second;
}

void PeerDirectory::Add(int fd, const ConnectionInfo& info) {
  sync::MutexLock lock(&mutex_);
  by_fd_[fd] = info;
}

void PeerDirectory::Remove(int fd, uint64_t id) {
  sync::MutexLock lock(&mutex_);
  auto it = by_fd_.find(fd);
  if (it != by_fd_.end() && it->second.id == id) by_fd_.erase(it);
}

ConnectionGuard::Options::Options() {
  // The local node: never refused; at the cap, its least recently active
  // connection makes room.
  local.max_connections = 512;
  local.max_connections_per_source = 0;
  local.evict_when_full = true;
  // Members: generous, but a source cannot hold the whole class.
  member.max_connections = 256;
  member.max_connections_per_source = 64;
  // Everyone else (joiners, strangers): a small budget of their own.
  other.max_connections = 64;
  other.max_connections_per_source = 4;
  other.new_connections_per_source = {20, 5};
  // Joiners and strangers have nothing long to do.
  other.max_connection_age = absl::Minutes(10);
  other.http2.preface_timeout = absl::Seconds(5);
  other.http2.max_incomplete_requests = 16;
  other.http2.max_incomplete_request_bytes = 256 << 10;
  other.http2.request_timeout = absl::Seconds(10);
  other.http2.resets = {50, 10};
  other.http2.new_streams = {200, 100};
  other.http2.control_frames = {200, 100};
}

// Everything the guard's thread owns. Only that thread touches it, except the
// command queue and the counters.
class ConnectionGuard::Loop {
 public:
  Loop(int listen_fd, Options options, ConnectionPolicy* policy, ConnectionSink* sink,
       PeerDirectory* directory)
      : options_(std::move(options)),
        policy_(policy),
        sink_(sink),
        directory_(directory),
        listen_fd_(listen_fd),
        control_fd_(options_.control_fd) {
    classes_[static_cast<int>(PeerClass::kLocal)].limits = &options_.local;
    classes_[static_cast<int>(PeerClass::kMember)].limits = &options_.member;
    classes_[static_cast<int>(PeerClass::kOther)].limits = &options_.other;
    scratch_.resize(options_.read_chunk_bytes);
  }

  ~Loop() {
    for (auto& [id, connection] : connections_) CloseFds(*connection);
    if (listen_fd_ >= 0) close(listen_fd_);
    if (control_fd_ >= 0) close(control_fd_);
    if (reserve_fd_ >= 0) close(reserve_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  absl::Status Init() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0 || reserve_fd_ < 0) {
      return absl::InternalError(absl::StrCat("connection guard: ", std::strerror(errno)));
    }
    Watch(wake_fd_, &wake_watch_, EPOLLIN);
    if (listen_fd_ >= 0) Watch(listen_fd_, &listen_watch_, EPOLLIN);
    if (control_fd_ >= 0) Watch(control_fd_, &control_watch_, EPOLLIN);
    return absl::OkStatus();
  }

  void Run() {
    epoll_event events[kEventsPerWait];
    const int timeout_ms =
        std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.sweep_interval));
    absl::Time last_sweep = MonotonicNow();
    while (!stopping_) {
      const int count = epoll_wait(epoll_fd_, events, kEventsPerWait, timeout_ms);
      const absl::Time now = MonotonicNow();
      for (int i = 0; i < count; ++i) {
        auto* watch = static_cast<WatchPoint*>(events[i].data.ptr);
        switch (watch->kind) {
          case WatchKind::kListen:
            AcceptReady(now);
            break;
          case WatchKind::kControl:
            AcceptControl();
            break;
          case WatchKind::kWake:
            RunCommands();
            break;
          case WatchKind::kClient:
          case WatchKind::kRelay:
            OnEvent(*watch->connection, watch->kind, events[i].events, now);
            break;
        }
      }
      if (now - last_sweep >= options_.sweep_interval) {
        Sweep(now);
        last_sweep = now;
      }
      closed_.clear();  // connections closed during this round, freed now
    }
    CloseWhere([](const Connection&) { return true; });
    closed_.clear();
    StopAccepting();
    final_cpu_time_ns_.store(absl::ToInt64Nanoseconds(ThisThreadCpuTime()));
  }

  static absl::Duration ThisThreadCpuTime() {
    timespec spent{};
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spent) != 0) return absl::ZeroDuration();
    return absl::DurationFromTimespec(spent);
  }

  absl::Duration final_cpu_time() const {
    return absl::Nanoseconds(final_cpu_time_ns_.load());
  }

  void Post(std::function<void(Loop&)> command) {
    {
      sync::MutexLock lock(&commands_mutex_);
      commands_.push_back(std::move(command));
    }
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }

  void Stop() { stopping_ = true; }

  void StopAccepting() { SetListenSocket(-1); }

  // Replaces the listening socket (-1: none). What already waits in the old one's
  // backlog is accepted first, so that no connection the kernel completed is
  // reset; the new one gets the current source filter.
  void SetListenSocket(int fd) {
    if (listen_fd_ >= 0) {
      if (!accept_paused_) {
        AcceptReady(MonotonicNow(), /*drain=*/true);
        if (listen_fd_ >= 0 && !accept_paused_) {
          epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        }
      }
      if (listen_fd_ >= 0) close(listen_fd_);
    }
    listen_fd_ = fd;
    accept_paused_ = false;
    if (listen_fd_ < 0) return;
    if (!dropped_list_.empty()) DropSources(dropped_list_);
    Watch(listen_fd_, &listen_watch_, EPOLLIN);
  }

  // The local control channel: trusted by the peer's uid, not its address.
  void AcceptControl() {
    for (int i = 0; i < kAcceptsPerWakeup; ++i) {
      int fd = accept4(control_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0 && (errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
        // Out of descriptors: the local operator is never refused. The reserve
        // takes it, and two outsiders' connections make room (as in accept).
        NoteExhaustion(errno, MonotonicNow());
        close(reserve_fd_);
        fd = accept4(control_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) MakeRoomFor(PeerClass::kLocal);
        reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);  // retried by Sweep if not
      }
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) PauseControl();
        return;  // EAGAIN
      }
      ucred credentials{};
      socklen_t length = sizeof(credentials);
      const bool known =
          getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 &&
          length == sizeof(credentials);
      if (!known || std::find(options_.control_uids.begin(), options_.control_uids.end(),
                              credentials.uid) == options_.control_uids.end()) {
        control_refused_.fetch_add(1, std::memory_order_relaxed);
        OMD_LOG(WARNING, "control channel: refused a connection from uid %d",
                known ? static_cast<int>(credentials.uid) : -1);
        close(fd);
        continue;
      }
      control_accepted_.fetch_add(1, std::memory_order_relaxed);
      // Relayed like a TCP connection of the local class: the same caps (its
      // least recently active connection makes room) and the same way into gRPC
      // (a connection handed over as it is misbehaved in gRPC when descriptors ran
      // out).
      PeerVerdict local;
      local.peer_class = PeerClass::kLocal;
      Relay(fd, kLoopback, local, MonotonicNow(), /*out_of_descriptors=*/false,
            credentials.uid);
    }
  }

  void HoldBack(uint64_t id, absl::Time now) {
    auto found = connections_.find(id);
    if (found == connections_.end() || found->second->client_fd < 0) return;
    Connection& connection = *found->second;
    connection.held_until =
        now + std::min(kFirstHold * (int64_t{1} << std::min(connection.holds, 8)), kLongestHold);
    connection.held = true;
    ++connection.holds;
    held_back_.fetch_add(1, std::memory_order_relaxed);
    UpdateInterest(connection);
  }

  void ReleaseHolds() {
    for (auto& [id, connection] : connections_) {
      connection->holds = 0;
      if (!connection->held || connection->client_fd < 0) continue;
      connection->held = false;
      UpdateInterest(*connection);
    }
  }

  // Not at once: the refusal that got the source banned must reach it first.
  void CloseConnectionsFrom(const IpAddress& source_key) {
    closing_sources_.emplace_back(source_key, MonotonicNow() + kBannedSourceGrace);
  }

  void CloseDueSources(absl::Time now) {
    for (auto it = closing_sources_.begin(); it != closing_sources_.end();) {
      if (it->second > now) {
        ++it;
        continue;
      }
      const IpAddress source = it->first;
      it = closing_sources_.erase(it);
      CloseWhere([&source](const Connection& connection) { return connection.source == source; });
    }
  }

  // Closes every connection `matches`; collected first, since closing erases.
  template <typename Predicate>
  void CloseWhere(Predicate matches) {
    std::vector<Connection*> victims;
    for (auto& [id, connection] : connections_) {
      if (matches(*connection)) victims.push_back(connection.get());
    }
    for (Connection* victim : victims) Close(*victim);
  }

  void DropSources(const std::vector<IpAddress>& sources) {
    dropped_list_ = sources;
    if (listen_fd_ < 0) return;
    absl::Status attached = AttachSourceFilter(listen_fd_, sources);
    if (!attached.ok()) {
      // E.g. EPERM in a user namespace that does not own the network namespace.
      if (!filter_failure_logged_) {
        OMD_LOG(WARNING, "%s: banned sources are refused at accept instead",
                attached.message());
        filter_failure_logged_ = true;
      }
      filtering_ = false;
      dropped_sources_.store(0);
      return;
    }
    filtering_ = !sources.empty();
    dropped_sources_.store(sources.size());
  }

  // Connections accepted so far, not later ones, once `grace` has passed.
  // `before`: the first id not to close, read when the caller asked (a
  // connection accepted between the call and this command is spared).
  void CloseAcceptedAfter(uint64_t before, absl::Duration grace) {
    closing_before_id_.emplace_back(before, MonotonicNow() + grace);
  }

  // The id the next accepted connection gets; any thread.
  uint64_t next_id() const { return next_id_.load(std::memory_order_acquire); }

  void CloseDueAccepted(absl::Time now) {
    for (auto it = closing_before_id_.begin(); it != closing_before_id_.end();) {
      if (it->second > now) {
        ++it;
        continue;
      }
      const uint64_t before = it->first;
      it = closing_before_id_.erase(it);
      CloseWhere([before](const Connection& connection) { return connection.id < before; });
    }
  }

  void CloseClass(PeerClass peer_class) {
    CloseWhere([peer_class](const Connection& connection) {
      return connection.peer_class == peer_class;
    });
  }

  Stats stats() const {
    Stats stats;
    stats.accepted = accepted_.load(std::memory_order_relaxed);
    stats.refused_by_policy = refused_by_policy_.load(std::memory_order_relaxed);
    stats.refused_by_cap = refused_by_cap_.load(std::memory_order_relaxed);
    stats.refused_by_rate = refused_by_rate_.load(std::memory_order_relaxed);
    stats.refused_out_of_descriptors =
        refused_out_of_descriptors_.load(std::memory_order_relaxed);
    stats.evicted = evicted_.load(std::memory_order_relaxed);
    stats.closed_for_abuse = closed_for_abuse_.load(std::memory_order_relaxed);
    stats.held_back = held_back_.load(std::memory_order_relaxed);
    stats.descriptor_exhaustion = descriptor_exhaustion_.load(std::memory_order_relaxed);
    stats.dropped_sources = dropped_sources_.load(std::memory_order_relaxed);
    stats.control_accepted = control_accepted_.load(std::memory_order_relaxed);
    stats.control_refused = control_refused_.load(std::memory_order_relaxed);
    for (int i = 0; i < kPeerClasses; ++i) {
      stats.open[i] = open_[i].load(std::memory_order_relaxed);
    }
    return stats;
  }

 private:
  struct Connection;
  struct WatchPoint {
    WatchKind kind;
    Connection* connection = nullptr;
  };
  struct Connection {
    uint64_t id = 0;
    IpAddress address;
    IpAddress source;
    PeerClass peer_class = PeerClass::kOther;
    absl::Time accepted_at;
    int client_fd = -1;
    int relay_fd = -1;  // our end of the pair
    int sink_fd = -1;   // gRPC's end, its "fd:N"
    std::string to_relay;   // read from the client, not yet written to gRPC
    std::string to_client;  // read from gRPC, not yet written to the client
    std::unique_ptr<Http2Inspector> inspector;
    std::list<Connection*>::iterator lru_position;
    WatchPoint client_watch{WatchKind::kClient};
    WatchPoint relay_watch{WatchKind::kRelay};
    uint32_t client_interest = 0;
    uint32_t relay_interest = 0;
    // HoldBack: the client's bytes are not read until held_until.
    bool held = false;
    absl::Time held_until;
    int holds = 0;
  };
  struct ClassState {
    const ClassLimits* limits = nullptr;
    size_t open = 0;
    absl::flat_hash_map<IpAddress, size_t> per_source;
    absl::flat_hash_map<IpAddress, TokenBucket> accept_buckets;
    std::list<Connection*> lru;  // least recently active first
  };

  ClassState& StateOf(PeerClass peer_class) { return classes_[static_cast<int>(peer_class)]; }

  void Watch(int fd, WatchPoint* watch, uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.ptr = watch;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event);
  }

  void SetInterest(int fd, WatchPoint* watch, uint32_t* current, uint32_t wanted) {
    if (*current == wanted) return;
    epoll_event event{};
    event.events = wanted;
    event.data.ptr = watch;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event);
    *current = wanted;
  }

  // Read a side only when nothing read from it waits to be written: a slow
  // reader holds at most one chunk per direction, and TCP pushes back.
  void UpdateInterest(Connection& connection) {
    SetInterest(connection.client_fd, &connection.client_watch, &connection.client_interest,
                (connection.to_relay.empty() && !connection.held ? EPOLLIN : 0u) |
                    (connection.to_client.empty() ? 0u : EPOLLOUT));
    SetInterest(connection.relay_fd, &connection.relay_watch, &connection.relay_interest,
                (connection.to_client.empty() ? EPOLLIN : 0u) |
                    (connection.to_relay.empty() ? 0u : EPOLLOUT));
  }

  void RunCommands() {
    uint64_t drained;
    (void)!read(wake_fd_, &drained, sizeof(drained));
    std::vector<std::function<void(Loop&)>> commands;
    {
      sync::MutexLock lock(&commands_mutex_);
      commands.swap(commands_);
    }
    for (auto& command : commands) command(*this);
  }

  // `drain`: until the backlog is empty, not kAcceptsPerWakeup at most.
  void AcceptReady(absl::Time now, bool drain = false) {
    const int most = drain ? kAcceptsWhenDraining : kAcceptsPerWakeup;
    for (int i = 0; i < most && listen_fd_ >= 0; ++i) {
      sockaddr_storage address{};
      socklen_t length = sizeof(address);
      const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        OnAccepted(fd, address, length, now, /*out_of_descriptors=*/false);
        continue;
      }
      switch (errno) {
        case EAGAIN:
          return;
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
          continue;
        case EMFILE:
        case ENFILE:
          NoteExhaustion(errno, now);
          if (!AcceptWithReserve(now)) {
            PauseAccepting(now);
            return;
          }
          continue;
        default:  // ENOBUFS, ENOMEM: retrying at once would spin
          PauseAccepting(now);
          return;
      }
    }
  }

  void NoteExhaustion(int error_number, absl::Time now) {
    descriptor_exhaustion_.fetch_add(1, std::memory_order_relaxed);
    if (now - last_exhaustion_log_ < kAbuseLogInterval) return;
    last_exhaustion_log_ = now;
    OMD_LOG(WARNING,
            "accept: out of file descriptors (%s): outsiders' connections are refused, the "
            "local node's and members' take their room",
            error_number == EMFILE ? "RLIMIT_NOFILE" : "system-wide limit");
  }

  // Out of descriptors, for a connection of `peer_class`: closes two connections,
  // which frees what it and the reserve need. Outsiders make room for the node and
  // its peers, never the reverse; the local node may also take its own least
  // recently active one. False if there was not enough to close.
  bool MakeRoomFor(PeerClass peer_class) {
    if (peer_class == PeerClass::kOther) return false;
    int freed = 0;
    while (freed < 2 && (EvictFrom(PeerClass::kOther) ||
                         (peer_class == PeerClass::kLocal && EvictFrom(PeerClass::kLocal)))) {
      ++freed;
    }
    return freed == 2;
  }

  // Out of descriptors: free the reserve, accept the next connection with it, and
  // either make room for it (a local or member source) or close it, so the queue
  // of waiting connections keeps moving. False if there was no reserve.
  bool AcceptWithReserve(absl::Time now) {
    if (reserve_fd_ < 0) return false;
    close(reserve_fd_);
    reserve_fd_ = -1;
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) OnAccepted(fd, address, length, now, /*out_of_descriptors=*/true);
    reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);  // retried by Sweep if not
    return true;
  }

  // Out of descriptors with no reserve left: the control socket stays readable,
  // so it leaves epoll until the next sweep rather than spin.
  void PauseControl() {
    if (control_paused_) return;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, control_fd_, nullptr);
    control_paused_ = true;
  }

  void PauseAccepting(absl::Time now) {
    if (accept_paused_ || listen_fd_ < 0) return;
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
    accept_paused_ = true;
    accept_resumes_at_ = now + kAcceptPause;
  }

  // Closes the least recently active connection of `peer_class`; false if none.
  bool EvictFrom(PeerClass peer_class) {
    ClassState& state = StateOf(peer_class);
    if (state.lru.empty()) return false;
    evicted_.fetch_add(1, std::memory_order_relaxed);
    Close(*state.lru.front());
    return true;
  }

  void Refuse(int fd, std::atomic<uint64_t>& counter) {
    counter.fetch_add(1, std::memory_order_relaxed);  // before the peer can see the close
    close(fd);
  }

  void OnAccepted(int fd, const sockaddr_storage& storage, socklen_t length, absl::Time now,
                  bool out_of_descriptors) {
    // Inherited from the listening socket: an established connection must not
    // run the filter on every segment.
    if (filtering_) DetachSourceFilter(fd);
    std::optional<IpAddress> address =
        IpAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&storage), length);
    if (!address.has_value()) {
      Refuse(fd, refused_by_policy_);
      return;
    }
    const PeerVerdict verdict = policy_->Classify(*address);
    if (verdict.refused) {
      Refuse(fd, refused_by_policy_);
      return;
    }
    Relay(fd, *address, verdict, now, out_of_descriptors, /*control_uid=*/std::nullopt);
  }

  // Checks the class's caps and relays the connection to the sink through a
  // socket pair, with an Http2Inspector on the way. `control_uid`: a control
  // channel connection, from that uid.
  void Relay(int fd, const IpAddress& accepted_address, const PeerVerdict& verdict,
             absl::Time now, bool out_of_descriptors, std::optional<uint32_t> control_uid) {
    const IpAddress* const address = &accepted_address;
    const IpAddress source = address->SourceKey();
    ClassState& state = StateOf(verdict.peer_class);
    const ClassLimits& limits = *state.limits;
    if (limits.new_connections_per_source.burst > 0) {
      if (state.accept_buckets.size() >= kMaxAcceptBuckets) state.accept_buckets.clear();
      if (!state.accept_buckets[source].Take(limits.new_connections_per_source, now)) {
        Refuse(fd, refused_by_rate_);
        return;
      }
    }
    if (limits.max_connections_per_source > 0) {
      auto it = state.per_source.find(source);
      if (it != state.per_source.end() && it->second >= limits.max_connections_per_source) {
        Refuse(fd, refused_by_cap_);
        return;
      }
    }
    if (state.open >= limits.max_connections &&
        !(limits.evict_when_full && EvictFrom(verdict.peer_class))) {
      Refuse(fd, refused_by_cap_);
      return;
    }
    if (out_of_descriptors && !MakeRoomFor(verdict.peer_class)) {
      Refuse(fd, refused_out_of_descriptors_);
      return;
    }
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
      // Accepted with the last descriptor or two: short of the pair's. The same
      // exhaustion as in accept, handled the same way.
      const bool exhausted = errno == EMFILE || errno == ENFILE;
      if (exhausted) NoteExhaustion(errno, now);
      if (!exhausted || !MakeRoomFor(verdict.peer_class) ||
          socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
        Refuse(fd, refused_out_of_descriptors_);
        return;
      }
    }
    const int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));

    auto owned = std::make_unique<Connection>();
    Connection& connection = *owned;
    connection.id = next_id_.fetch_add(1, std::memory_order_acq_rel);
    connection.address = *address;
    connection.source = source;
    connection.peer_class = verdict.peer_class;
    connection.accepted_at = now;
    connection.client_fd = fd;
    connection.relay_fd = pair[0];
    connection.sink_fd = pair[1];
    connection.inspector = std::make_unique<Http2Inspector>(&limits.http2, now);
    connection.client_watch.connection = &connection;
    connection.relay_watch.connection = &connection;
    connection.client_interest = EPOLLIN;
    connection.relay_interest = EPOLLIN;
    state.lru.push_back(&connection);
    connection.lru_position = std::prev(state.lru.end());
    ++state.open;
    ++state.per_source[source];
    open_[static_cast<int>(verdict.peer_class)].fetch_add(1, std::memory_order_relaxed);
    Watch(connection.client_fd, &connection.client_watch, EPOLLIN);
    Watch(connection.relay_fd, &connection.relay_watch, EPOLLIN);
    ConnectionInfo info{connection.id, connection.address, connection.peer_class};
    if (control_uid.has_value()) {
      info.control_channel = true;
      info.uid = *control_uid;
    }
    directory_->Add(connection.sink_fd, info);
    connections_.emplace(connection.id, std::move(owned));
    accepted_.fetch_add(1, std::memory_order_relaxed);
    sink_->Serve(connection.sink_fd);  // gRPC owns its end from here
  }

  void Touch(Connection& connection) {
    ClassState& state = StateOf(connection.peer_class);
    state.lru.splice(state.lru.end(), state.lru, connection.lru_position);
  }

  void OnEvent(Connection& connection, WatchKind side, uint32_t events, absl::Time now) {
    if (connection.client_fd < 0) return;  // closed earlier in this round
    const bool from_client = side == WatchKind::kClient;
    if (events & EPOLLOUT) {
      if (!Flush(from_client ? connection.client_fd : connection.relay_fd,
                 from_client ? connection.to_client : connection.to_relay)) {
        Close(connection);
        return;
      }
    }
    if ((events & EPOLLIN) &&
        (from_client ? connection.to_relay.empty() : connection.to_client.empty())) {
      Relay(connection, from_client, now);
      if (connection.client_fd < 0) return;
    }
    if (events & (EPOLLHUP | EPOLLERR)) {
      // Reported whatever the interest: the side is gone. Pass on what gRPC last
      // said (its GOAWAY) if the client takes it now; nothing else can arrive.
      if (!from_client) Flush(connection.client_fd, connection.to_client);
      Close(connection);
      return;
    }
    UpdateInterest(connection);
  }

  // Writes what `pending` holds; false on a broken socket.
  static bool Flush(int fd, std::string& pending) {
    while (!pending.empty()) {
      const ssize_t written = send(fd, pending.data(), pending.size(), MSG_NOSIGNAL);
      if (written > 0) {
        pending.erase(0, static_cast<size_t>(written));
        continue;
      }
      if (written < 0 && errno == EINTR) continue;
      if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      return false;
    }
    return true;
  }

  // One chunk from one side to the other, inspected on the way.
  void Relay(Connection& connection, bool from_client, absl::Time now) {
    const int in = from_client ? connection.client_fd : connection.relay_fd;
    const int out = from_client ? connection.relay_fd : connection.client_fd;
    const ssize_t count = recv(in, scratch_.data(), scratch_.size(), 0);
    if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (count <= 0) {
      // The client hung up, or gRPC closed the connection (after its GOAWAY, which
      // has been passed on).
      Close(connection);
      return;
    }
    const absl::string_view bytes(scratch_.data(), static_cast<size_t>(count));
    absl::Status verdict = from_client ? connection.inspector->FromClient(bytes, now)
                                       : connection.inspector->FromServer(bytes, now);
    if (!verdict.ok()) {
      CloseForAbuse(connection, verdict, now);
      return;
    }
    if (from_client) Touch(connection);
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t written = send(out, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (written > 0) {
        sent += static_cast<size_t>(written);
        continue;
      }
      if (written < 0 && errno == EINTR) continue;
      if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      Close(connection);
      return;
    }
    if (sent < bytes.size()) {
      (from_client ? connection.to_relay : connection.to_client)
          .assign(bytes.data() + sent, bytes.size() - sent);
    }
  }

  void CloseForAbuse(Connection& connection, const absl::Status& verdict, absl::Time now) {
    closed_for_abuse_.fetch_add(1, std::memory_order_relaxed);
    ++abuse_since_log_;
    // One line per interval, whatever the rate: a flood must not flood the log.
    if (now - last_abuse_log_ >= kAbuseLogInterval) {
      OMD_LOG(WARNING, "closed %d connection(s) that broke HTTP/2 limits; last: %s (%s): %s",
              abuse_since_log_, connection.address.ToString(),
              PeerClassName(connection.peer_class), verdict.message());
      last_abuse_log_ = now;
      abuse_since_log_ = 0;
    }
    Close(connection);
  }

  static void CloseFds(Connection& connection) {
    if (connection.client_fd >= 0) close(connection.client_fd);
    if (connection.relay_fd >= 0) close(connection.relay_fd);
    connection.client_fd = -1;
    connection.relay_fd = -1;
  }

  void Close(Connection& connection) {
    if (connection.client_fd < 0) return;
    // Forgotten first: once the peer sees the close, nothing names it any more.
    directory_->Remove(connection.sink_fd, connection.id);
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection.client_fd, nullptr);
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection.relay_fd, nullptr);
    CloseFds(connection);
    ClassState& state = StateOf(connection.peer_class);
    state.lru.erase(connection.lru_position);
    --state.open;
    auto it = state.per_source.find(connection.source);
    if (it != state.per_source.end() && --it->second == 0) state.per_source.erase(it);
    open_[static_cast<int>(connection.peer_class)].fetch_sub(1, std::memory_order_relaxed);
    auto owned = connections_.find(connection.id);
    closed_.push_back(std::move(owned->second));  // events of this round may still name it
    connections_.erase(owned);
  }

  void Sweep(absl::Time now) {
    CloseDueSources(now);
    CloseDueAccepted(now);
    std::vector<std::pair<Connection*, absl::Status>> expired;
    for (auto& [id, connection] : connections_) {
      if (connection->held && now >= connection->held_until) {
        connection->held = false;
        UpdateInterest(*connection);
      }
      absl::Status verdict = connection->inspector->CheckDeadlines(now);
      if (verdict.ok() &&
          now - connection->accepted_at > StateOf(connection->peer_class).limits->max_connection_age) {
        verdict = absl::ResourceExhaustedError("connection older than its class allows");
      }
      if (!verdict.ok()) expired.emplace_back(connection.get(), std::move(verdict));
    }
    for (auto& [connection, verdict] : expired) CloseForAbuse(*connection, verdict, now);
    if (reserve_fd_ < 0) reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (control_paused_) {
      Watch(control_fd_, &control_watch_, EPOLLIN);
      control_paused_ = false;
    }
    if (accept_paused_ && now >= accept_resumes_at_ && listen_fd_ >= 0) {
      Watch(listen_fd_, &listen_watch_, EPOLLIN);
      accept_paused_ = false;
    }
    if (abuse_since_log_ > 0 && now - last_abuse_log_ >= kAbuseLogInterval) {
      OMD_LOG(WARNING, "closed %d more connection(s) that broke HTTP/2 limits",
              abuse_since_log_);
      last_abuse_log_ = now;
      abuse_since_log_ = 0;
    }
  }

  Options options_;
  ConnectionPolicy* const policy_;
  ConnectionSink* const sink_;
  PeerDirectory* const directory_;
  int listen_fd_;
  const int control_fd_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int reserve_fd_ = -1;
  bool accept_paused_ = false;
  bool control_paused_ = false;
  bool filtering_ = false;  // a source filter is on the listening socket
  bool filter_failure_logged_ = false;
  absl::Time accept_resumes_at_;
  std::vector<IpAddress> dropped_list_;  // for a replaced listening socket
  WatchPoint listen_watch_{WatchKind::kListen};
  WatchPoint control_watch_{WatchKind::kControl};
  WatchPoint wake_watch_{WatchKind::kWake};
  std::vector<char> scratch_;
  ClassState classes_[kPeerClasses];
  absl::flat_hash_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<std::pair<IpAddress, absl::Time>> closing_sources_;
  std::vector<std::pair<uint64_t, absl::Time>> closing_before_id_;
  std::vector<std::unique_ptr<Connection>> closed_;
  std::atomic<uint64_t> next_id_{1};  // written by the loop, read by CloseAcceptedAfter
  bool stopping_ = false;
  absl::Time last_abuse_log_ = absl::InfinitePast();
  absl::Time last_exhaustion_log_ = absl::InfinitePast();
  int abuse_since_log_ = 0;

  sync::Mutex commands_mutex_;
  std::vector<std::function<void(Loop&)>> commands_ ABSL_GUARDED_BY(commands_mutex_);

  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_by_policy_{0};
  std::atomic<uint64_t> refused_by_cap_{0};
  std::atomic<uint64_t> refused_by_rate_{0};
  std::atomic<uint64_t> refused_out_of_descriptors_{0};
  std::atomic<uint64_t> evicted_{0};
  std::atomic<uint64_t> closed_for_abuse_{0};
  std::atomic<uint64_t> held_back_{0};
  std::atomic<uint64_t> descriptor_exhaustion_{0};
  std::atomic<size_t> dropped_sources_{0};
  std::atomic<uint64_t> control_accepted_{0};
  std::atomic<uint64_t> control_refused_{0};
  std::atomic<size_t> open_[kPeerClasses] = {};
  std::atomic<int64_t> final_cpu_time_ns_{0};
};

namespace {

// Lowers the class caps so that connections fit the descriptor limit.
void FitToDescriptorLimit(ConnectionGuard::Options& options) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const size_t available = limit.rlim_cur > options.reserved_descriptors
                               ? (limit.rlim_cur - options.reserved_descriptors) /
                                     kDescriptorsPerConnection
                               : 1;
  const size_t wanted = options.local.max_connections + options.member.max_connections +
                        options.other.max_connections;
  if (wanted <= available) return;
  for (ClassLimits* limits : {&options.local, &options.member, &options.other}) {
    limits->max_connections = std::max<size_t>(1, limits->max_connections * available / wanted);
  }
  OMD_LOG(WARNING,
          "RLIMIT_NOFILE %d allows %d connections, not %d: caps lowered to local %d, "
          "member %d, other %d",
          limit.rlim_cur, available, wanted, options.local.max_connections,
          options.member.max_connections, options.other.max_connections);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ConnectionGuard>> ConnectionGuard::Start(
    int listen_fd, Options options, ConnectionPolicy* policy, ConnectionSink* sink,
    PeerDirectory* directory) {
  FitToDescriptorLimit(options);
  std::unique_ptr<ConnectionGuard> guard(new ConnectionGuard());
  guard->loop_ =
      std::make_unique<Loop>(listen_fd, std::move(options), policy, sink, directory);
  absl::Status ready = guard->loop_->Init();
  if (!ready.ok()) return ready;
  Loop* loop = guard->loop_.get();
  guard->thread_ = std::thread([loop] { loop->Run(); });
  pthread_setname_np(guard->thread_.native_handle(), "omd-guard");
  return guard;
}

ConnectionGuard::~ConnectionGuard() { Stop(); }

void ConnectionGuard::Post(std::function<void(Loop&)> command) {
  if (stopped_.load()) return;
  loop_->Post(std::move(command));
}

void ConnectionGuard::StopAccepting() { SetListenSocket(-1); }

void ConnectionGuard::SetListenSocket(int fd) {
  if (stopped_.load()) {
    if (fd >= 0) close(fd);
    return;
  }
  sync::Mutex mutex;
  bool done = false;
  loop_->Post([fd, &mutex, &done](Loop& loop) {
    loop.SetListenSocket(fd);
    sync::MutexLock lock(&mutex);
    done = true;
  });
  sync::MutexLock lock(&mutex);
  mutex.Await([&done]() { return done; });
}

void ConnectionGuard::Stop() {
  if (stopped_.exchange(true)) return;
  loop_->Post([](Loop& loop) { loop.Stop(); });
  thread_.join();  // the loop stays, for stats(), until the guard goes
}

void ConnectionGuard::HoldBack(uint64_t id) {
  Post([id](Loop& loop) { loop.HoldBack(id, MonotonicNow()); });
}

void ConnectionGuard::ReleaseHolds() {
  Post([](Loop& loop) { loop.ReleaseHolds(); });
}

void ConnectionGuard::CloseConnectionsFrom(const IpAddress& source_key) {
  Post([source_key](Loop& loop) { loop.CloseConnectionsFrom(source_key); });
}

void ConnectionGuard::DropSources(std::vector<IpAddress> sources) {
  Post([sources = std::move(sources)](Loop& loop) { loop.DropSources(sources); });
}

void ConnectionGuard::CloseAcceptedAfter(absl::Duration grace) {
  Post([before = loop_->next_id(), grace](Loop& loop) { loop.CloseAcceptedAfter(before, grace); });
}

void ConnectionGuard::CloseClass(PeerClass peer_class) {
  Post([peer_class](Loop& loop) { loop.CloseClass(peer_class); });
}

ConnectionGuard::Stats ConnectionGuard::stats() const { return loop_->stats(); }

absl::Duration ConnectionGuard::thread_cpu_time() const {
  if (stopped_.load()) return loop_->final_cpu_time();
  clockid_t clock;
  timespec spent{};
  if (pthread_getcpuclockid(const_cast<std::thread&>(thread_).native_handle(), &clock) != 0 ||
      clock_gettime(clock, &spent) != 0) {
    return absl::ZeroDuration();
  }
  return absl::DurationFromTimespec(spent);
}

}  // namespace omd::net

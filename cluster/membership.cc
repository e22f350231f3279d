#include "cluster/membership.h"

#include <pthread.h>

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "config/atomic_file.h"
#include "rpc/peer.h"
#include "config/cluster_sections.h"
#include "log/log.h"

namespace omd::cluster {
namespace {

constexpr absl::Duration kFirstBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(2);
constexpr absl::Duration kCatchUpInterval = absl::Seconds(1);

std::string Described(const absl::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
}

absl::Status Stopping() { return absl::UnavailableError("the daemon is stopping"); }

// Where the members reach this node's daemon: its [listener] addr and port (the
// port it bound, which it records, if 0). None for a wildcard address: the
// members then reach it by its name.
std::optional<std::string> ListenerAddress(const std::string& root,
                                           const config::NodeConfig& config) {
  if (config.listener_addr == "0.0.0.0" || config.listener_addr == "::") return std::nullopt;
  if (config.listener_port != 0) return rpc::JoinHostPort(config.listener_addr, config.listener_port);
  absl::StatusOr<std::string> recorded =
      config::ReadFileToString(config::ListenerAddressPath(root), 4096);
  if (!recorded.ok()) return std::nullopt;
  absl::StatusOr<std::string> address = config::ParsePeerAddress(
      config::ListenerAddressPath(root), absl::StripAsciiWhitespace(*recorded));
  if (!address.ok()) return std::nullopt;
  return *address;
}

// A backoff around `base`, from half to one and a half of it, so that two
// changes that collided do not collide again in step.
absl::Duration Jittered(absl::Duration base) {
  static absl::BitGen* const bits = new absl::BitGen();
  static sync::Mutex* const bits_mutex = new sync::Mutex();
  sync::MutexLock lock(bits_mutex);
  return base * absl::Uniform(*bits, 0.5, 1.5);
}

uint32_t Milliseconds(absl::Duration duration) {
  return static_cast<uint32_t>(std::max<int64_t>(1, absl::ToInt64Milliseconds(duration)));
}

}  // namespace

Membership::Membership(Options options, ClusterLock* lock, Peers* peers)
    : options_(std::move(options)), lock_(lock), peers_(peers) {
  worker_ = std::thread([this] { Work(); });
  pthread_setname_np(worker_.native_handle(), "omd-membership");
}

Membership::~Membership() { Stop(); }

void Membership::Stop() {
  std::deque<Job> dropped;
  {
    sync::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
  {
    sync::MutexLock lock(&mutex_);
    dropped.swap(queue_);
  }
  for (Job& job : dropped) job.done(Stopping());
}

bool Membership::stopping() const {
  sync::MutexLock lock(&mutex_);
  return stopping_;
}

bool Membership::JobWaiting() const {
  sync::MutexLock lock(&mutex_);
  return !queue_.empty();
}

bool Membership::StoppedWithin(absl::Duration duration) {
  sync::MutexLock lock(&mutex_);
  return mutex_.AwaitWithTimeout(
      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return stopping_; }, duration);
}

void Membership::Submit(MembershipChange change, Done done) {
  {
    sync::MutexLock lock(&mutex_);
    if (!stopping_ && queue_.size() < options_.max_queued) {
      queue_.push_back(Job{std::move(change), std::move(done)});
      return;
    }
    if (!stopping_) {
      done(absl::ResourceExhaustedError(absl::StrCat(
          "too many membership changes are waiting (", queue_.size(), "); retry later")));
      return;
    }
  }
  done(Stopping());
}

void Membership::Work() {
  while (true) {
    Job job;
    {
      sync::MutexLock lock(&mutex_);
      mutex_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
        return stopping_ || !queue_.empty();
      });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    std::map<std::string, std::string> missed;
    absl::StatusOr<Outcome> outcome = Run(job.change, &missed);
    const MembershipView view = outcome.ok() ? outcome->view : MembershipView();
    job.done(std::move(outcome));
    if (!missed.empty()) CatchUp(view, std::move(missed));
  }
}

absl::StatusOr<Membership::Outcome> Membership::Run(
    const MembershipChange& change, std::map<std::string, std::string>* missed) {
  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(options_.root);
  if (!config.ok()) return config.status();
  const std::string self = config->node_name;
  if (change.kind == MembershipChange::kLeave && change.node == self) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node ", self, " cannot remove itself from the cluster: ask another member"));
  }
  peers_->SetConfig(*config);
  const std::string token = ClusterLock::NewToken();
  const absl::Time give_up = absl::Now() + options_.lock_wait;
  absl::Duration backoff = kFirstBackoff;
  LockRound round;
  while (true) {
    absl::StatusOr<MembershipView> own = ViewOf(*config);
    if (!own.ok()) return own.status();
    round = LockMembers(*config, *own, token);
    if (round.busy_holder.empty() && !stopping()) break;
    Release(round, self, token);
    if (stopping()) return Stopping();
    const absl::Time now = absl::Now();
    if (now >= give_up) {
      return absl::AbortedError(absl::StrCat(
          "the cluster lock is held by ", round.busy_holder, " (at ", round.busy_node,
          ") for another membership change, for more than ",
          absl::FormatDuration(options_.lock_wait), ": try again"));
    }
    if (StoppedWithin(std::min(Jittered(backoff), give_up - now))) return Stopping();
    backoff = std::min(2 * backoff, kMaxBackoff);
    // Another change may have changed this node's view meanwhile.
    config = config::LoadNodeConfig(options_.root);
    if (!config.ok()) return config.status();
  }

  // Under the lock.
  const MembershipView merged = MergeViews(round.views);
  MembershipView after = ApplyChange(merged, change);
  // The first member of a cluster has no address recorded: it gives its own,
  // so that the others reach it where it listens, not by its name.
  if (after.addresses.count(self) == 0) {
    if (std::optional<std::string> own = ListenerAddress(options_.root, *config)) {
      after.addresses[self] = *own;
      if (after.version == merged.version) ++after.version;
    }
  }
  Outcome outcome;
  outcome.view = after;
  absl::StatusOr<config::NodeConfig> written = Persist(after);
  if (!written.ok()) {
    Release(round, self, token);
    return written.status();
  }
  outcome.config = *std::move(written);
  for (const std::string& node : round.held) {
    // A leaver is not told: it makes itself standalone (om daemon leave).
    if (node == self || !after.Contains(node) || round.view_of[node] == after) continue;
    absl::Status pushed = Push(node, token, after);
    if (!pushed.ok()) {
      (*missed)[node] = Described(pushed);
      outcome.info.push_back(absl::StrCat(node, ": not updated (", Described(pushed),
                                          "); trying again for ",
                                          absl::FormatDuration(options_.catch_up_for)));
    }
  }
  Release(round, self, token);
  for (const auto& [node, why] : round.skipped) {
    if (!after.Contains(node)) continue;  // it left in this change
    (*missed)[node] = why;
    outcome.info.push_back(absl::StrCat(
        node, ": skipped (", why, "); it is sent this change for ",
        absl::FormatDuration(options_.catch_up_for), ", and any later one"));
  }
  OMD_LOG(INFO, "membership: %s of %s done; members now %s (version %d)%s",
          change.kind == MembershipChange::kJoin ? "join" : "leave", change.node,
          absl::StrJoin(after.nodes, " "), after.version,
          outcome.info.empty() ? "" : absl::StrCat("; ", absl::StrJoin(outcome.info, "; ")));
  return outcome;
}

Membership::LockRound Membership::LockMembers(const config::NodeConfig& config,
                                              const MembershipView& own,
                                              const std::string& token) {
  LockRound round;
  const std::string& self = config.node_name;
  std::set<std::string> asked;
  v1::ClusterLockRequest request;
  request.set_token(token);
  request.set_lease_ms(Milliseconds(options_.lock_lease));
  // The members every view so far lists, in name order; the views of the
  // members locked may name more.
  std::set<std::string> wanted(own.nodes.begin(), own.nodes.end());
  wanted.insert(self);
  while (true) {
    std::vector<std::string> next;
    for (const std::string& node : wanted) {
      if (asked.count(node) == 0) next.push_back(node);
    }
    if (next.empty() || stopping()) return round;
    for (const std::string& node : next) {
      asked.insert(node);
      if (stopping()) return round;
      if (node == self) {
        absl::StatusOr<ClusterLock::Grant> grant = lock_->Acquire(self, token, options_.lock_lease);
        if (!grant.ok() || !grant->granted) {
          round.busy_node = self;
          round.busy_holder = grant.ok() ? grant->held_by : Described(grant.status());
          return round;
        }
        round.held.push_back(self);
        round.views.push_back(own);
        round.view_of[self] = own;
        continue;
      }
      absl::StatusOr<v1::ClusterLockReply> reply = peers_->Call<v1::ClusterLockReply>(
          node, "ClusterLock", request, options_.call_timeout);
      if (!reply.ok()) {
        if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
          round.unanswered.push_back(node);
        }
        round.skipped[node] = Described(reply.status());
        continue;
      }
      if (!reply->granted()) {
        round.busy_node = node;
        round.busy_holder = reply->held_by();
        return round;
      }
      round.held.push_back(node);
      MembershipView view = ViewFromLockReply(*reply);
      absl::Status valid = ValidateView(view);
      if (!valid.ok()) {
        OMD_LOG(WARNING, "membership: %s sent an invalid view: %s", node, valid.message());
        continue;  // locked, and pushed to, but its view is not merged
      }
      for (const std::string& listed : view.nodes) wanted.insert(listed);
      peers_->LearnAddresses(view.addresses);
      round.views.push_back(view);
      round.view_of[node] = std::move(view);
    }
  }
}

void Membership::Release(const LockRound& round, const std::string& self,
                         const std::string& token) {
  v1::ClusterLockRequest request;
  request.set_token(token);
  request.set_release(true);
  std::vector<std::string> nodes = round.held;
  nodes.insert(nodes.end(), round.unanswered.begin(), round.unanswered.end());
  for (const std::string& node : nodes) {
    if (node == self) {
      lock_->Release(self, token).IgnoreError();  // ours, unless it lapsed
      continue;
    }
    // Best effort: a lease left behind lapses by itself.
    absl::Status released = peers_->Call<v1::ClusterLockReply>(node, "ClusterLock", request,
                                                               options_.call_timeout)
                                .status();
    if (!released.ok()) {
      OMD_LOG(WARNING, "membership: releasing %s's lock: %s", node, Described(released));
    }
  }
}

absl::Status Membership::Push(const std::string& node, const std::string& token,
                              const MembershipView& view) {
  v1::SetClusterMembersRequest request;
  request.set_lock_token(token);
  PutView(view, &request);
  return peers_
      ->Call<v1::SetClusterMembersReply>(node, "SetClusterMembers", request,
                                         options_.push_timeout)
      .status();
}

absl::StatusOr<config::NodeConfig> Membership::Persist(const MembershipView& view) {
  bool changed = false;
  absl::StatusOr<config::NodeConfig> written =
      config::UpdateNodeConfig(options_.root, [&](config::IniFile& ini) {
        const std::string before = ini.Serialize();
        absl::Status status = WriteView(view, ini);
        changed = status.ok() && ini.Serialize() != before;
        return status;
      });
  if (!written.ok()) {
    return absl::Status(written.status().code(),
                        absl::StrCat("cannot write this node's members: ",
                                     written.status().message()));
  }
  if (changed) {
    peers_->SetConfig(*written);
    if (options_.config_written) options_.config_written();
  }
  return written;
}

void Membership::CatchUp(const MembershipView& view, std::map<std::string, std::string> missed) {
  const absl::Time give_up = absl::Now() + options_.catch_up_for;
  v1::ClusterLockRequest release;
  release.set_release(true);
  while (!missed.empty()) {
    // A change waiting here will push the newest view to every member anyway.
    if (JobWaiting() || absl::Now() >= give_up) break;
    if (StoppedWithin(kCatchUpInterval)) return;
    for (auto it = missed.begin(); it != missed.end();) {
      const std::string& node = it->first;
      v1::ClusterLockRequest request;
      request.set_token(ClusterLock::NewToken());
      request.set_lease_ms(Milliseconds(options_.lock_lease));
      absl::StatusOr<v1::ClusterLockReply> reply = peers_->Call<v1::ClusterLockReply>(
          node, "ClusterLock", request, options_.call_timeout);
      if (!reply.ok()) {
        it->second = Described(reply.status());
        ++it;
        continue;
      }
      if (!reply->granted()) {
        // Another change holds it: that one merges and pushes the newest view.
        it = missed.erase(it);
        continue;
      }
      const MembershipView there = ViewFromLockReply(*reply);
      absl::Status pushed =
          there.version > view.version ? absl::OkStatus() : Push(node, request.token(), view);
      release.set_token(request.token());
      peers_->Call<v1::ClusterLockReply>(node, "ClusterLock", release, options_.call_timeout)
          .status()
          .IgnoreError();  // its lease lapses anyway
      if (pushed.ok()) {
        OMD_LOG(INFO, "membership: %s caught up (version %d)", node,
                std::max(there.version, view.version));
        it = missed.erase(it);
      } else {
        it->second = Described(pushed);
        ++it;
      }
    }
  }
  for (const auto& [node, why] : missed) {
    OMD_LOG(WARNING, "membership: %s did not get members version %d (%s); the next change "
            "will send it", node, view.version, why);
  }
}

absl::StatusOr<v1::ClusterLockReply> Membership::HandleLock(
    absl::string_view holder, const v1::ClusterLockRequest& request) {
  v1::ClusterLockReply reply;
  if (request.release()) {
    absl::Status released = lock_->Release(holder, request.token());
    if (!released.ok()) return released;
    return reply;
  }
  absl::StatusOr<ClusterLock::Grant> grant =
      lock_->Acquire(holder, request.token(), absl::Milliseconds(request.lease_ms()));
  if (!grant.ok()) return grant.status();
  if (!grant->granted) {
    reply.set_held_by(grant->held_by);
    return reply;
  }
  // The view on disk: the daemon's loaded one may lag a write just made.
  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(options_.root);
  absl::StatusOr<MembershipView> view =
      config.ok() ? ViewOf(*config) : absl::StatusOr<MembershipView>(config.status());
  if (!view.ok()) {
    lock_->Release(holder, request.token()).IgnoreError();
    return view.status();
  }
  reply.set_granted(true);
  PutView(*view, &reply);
  return reply;
}

absl::Status Membership::HandleSetMembers(absl::string_view holder,
                                          const v1::SetClusterMembersRequest& request) {
  if (!lock_->IsHeldBy(holder, request.lock_token())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this node's cluster lock is not held by ", holder, " under that token"));
  }
  const MembershipView view = ViewFromMembersRequest(request);
  absl::Status valid = ValidateView(view);
  if (!valid.ok()) return valid;
  absl::StatusOr<config::NodeConfig> config = config::LoadNodeConfig(options_.root);
  if (!config.ok()) return config.status();
  if (!view.Contains(config->node_name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the members sent leave this node, ", config->node_name, ", out"));
  }
  bool changed = false;
  absl::StatusOr<config::NodeConfig> written =
      config::UpdateNodeConfig(options_.root, [&](config::IniFile& ini) -> absl::Status {
        uint64_t version = 0;
        std::optional<std::string> current = ini.Get("cluster", config::kNodesVersionKey);
        if (current.has_value() && absl::SimpleAtoi(*current, &version) &&
            version > view.version) {
          return absl::FailedPreconditionError(absl::StrCat(
              "this node's members are newer (version ", version, ", not ", view.version,
              ")"));
        }
        const std::string before = ini.Serialize();
        absl::Status status = WriteView(view, ini);
        changed = status.ok() && ini.Serialize() != before;
        return status;
      });
  if (!written.ok()) return written.status();
  if (changed) {
    OMD_LOG(INFO, "membership: %s set the members to %s (version %d)", holder,
            absl::StrJoin(view.nodes, " "), view.version);
    peers_->SetConfig(*written);
    if (options_.config_written) options_.config_written();
  }
  return absl::OkStatus();
}

}  // namespace omd::cluster

// Changes of the cluster's membership (a join, a leave), made by one member for
// the whole cluster, and this node's part in the changes other members make.
//
// A change handled by member M (the Join and Leave handlers submit them):
// 1. M takes the cluster-wide lock: the ClusterLock of every member, in node
//    name order (its own locally), each grant returning that member's view of
//    the membership. A member that holds its lock for another change refuses:
//    M releases what it holds and tries again after a jittered backoff, for at
//    most `lock_wait`. A member that does not answer within `call_timeout`
//    (down, cut off), or refuses M's messages, is skipped, so that a down node
//    cannot block the cluster; the change's info says so. Members that another
//    member's view lists, and M's did not, are locked too.
// 2. Under the lock: the views are merged (the newest version,
//    cluster/membership_view.h), the change is applied, the result is written
//    to M's node.conf (config::UpdateNodeConfig) and pushed (SetClusterMembers)
//    to every member locked, each of which writes it to its own; then the locks
//    are released and M answers.
// 3. Members skipped, or whose push failed, are caught up for `catch_up_for`:
//    each locked alone, pushed to and released, until it takes the change or
//    holds a newer one. That is also how a node that has just joined, whose
//    daemon refuses the cluster's messages until it has loaded its new
//    node.conf, gets the changes made meanwhile; cluster/peers.h keeps those
//    refusals from getting M blacklisted there.
// The joiner of a change is neither locked nor pushed to, unless it is a member
// already (joining twice): it takes the membership from its Join reply.
//
// Changes run one at a time on a worker thread: gRPC's threads never wait for
// them (server/handler_registry.h, AddUnaryAsync).
//
//   ClusterLock lock(ClusterLock::Options{});
//   Peers peers(Peers::Options{});
//   Membership::Options options;
//   options.root = "/var/lib/omd";
//   options.config_written = [&] { daemon.ReloadConfig(); };
//   Membership membership(options, &lock, &peers);
//   membership.Submit({MembershipChange::kJoin, "node4", "10.0.0.4:1214"},
//                     [](absl::StatusOr<Membership::Outcome> outcome) { ... });
//   ...
//   membership.Stop();  // before the listener: every pending change is answered
#ifndef OMD_CLUSTER_MEMBERSHIP_H_
#define OMD_CLUSTER_MEMBERSHIP_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cluster/cluster_lock.h"
#include "cluster/membership_view.h"
#include "cluster/peers.h"
#include "config/node_config.h"
#include "proto/omd.pb.h"
#include "sync/mutex.h"

namespace omd::cluster {

class Membership {
 public:
  struct Options {
    std::string root;  // ROOT/etc/node.conf
    // The lease asked of each member's lock.
    absl::Duration lock_lease = absl::Seconds(10);
    // Each ClusterLock call (and release): past it, the member is skipped.
    absl::Duration call_timeout = absl::Seconds(2);
    // Each SetClusterMembers call: the member writes its node.conf.
    absl::Duration push_timeout = absl::Seconds(3);
    // How long a change waits for locks that other changes hold.
    absl::Duration lock_wait = absl::Seconds(30);
    // How long members that missed a change are tried again, after it.
    absl::Duration catch_up_for = absl::Seconds(20);
    // Changes waiting for the worker; more are refused (RESOURCE_EXHAUSTED).
    size_t max_queued = 8;
    // Called after each write of this node's node.conf: the daemon reloads it.
    std::function<void()> config_written;
  };

  // What a change did.
  struct Outcome {
    MembershipView view;         // the cluster's membership now
    config::NodeConfig config;   // this node's node.conf now
    std::vector<std::string> info;  // members skipped or not updated, and why
  };
  using Done = std::function<void(absl::StatusOr<Outcome>)>;

  // `lock` and `peers` must outlive the membership.
  Membership(Options options, ClusterLock* lock, Peers* peers);
  ~Membership();

  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Queues `change`; `done` is called once, from the worker thread, or at once:
  // RESOURCE_EXHAUSTED when too many changes wait, UNAVAILABLE once stopping.
  // The change's errors: FAILED_PRECONDITION (a node removing itself), ABORTED
  // (the lock stayed busy for lock_wait), and those of reading or writing
  // node.conf; UNAVAILABLE if the daemon stops meanwhile.
  void Submit(MembershipChange change, Done done);

  // A ClusterLock request from member `holder`: grants (with this node's view,
  // read from node.conf), refuses (naming the holder), or releases.
  absl::StatusOr<v1::ClusterLockReply> HandleLock(absl::string_view holder,
                                                  const v1::ClusterLockRequest& request);

  // A SetClusterMembers request from member `holder`, which must hold this
  // node's lock under `lock_token` (else FAILED_PRECONDITION): writes the
  // members to node.conf, unless this node's version is newer
  // (FAILED_PRECONDITION) or the view is invalid or leaves this node out
  // (INVALID_ARGUMENT).
  absl::Status HandleSetMembers(absl::string_view holder,
                                const v1::SetClusterMembersRequest& request);

  // Stops the worker: the change in progress ends (UNAVAILABLE) after its call
  // in flight, its locks released; queued ones are answered UNAVAILABLE.
  // Idempotent.
  void Stop();

 private:
  struct Job {
    MembershipChange change;
    Done done;
  };

  // One pass over the members' locks.
  struct LockRound {
    std::vector<std::string> held;             // granted, this node included
    std::vector<std::string> unanswered;       // timed out: may have granted
    std::vector<MembershipView> views;         // of the members that granted
    std::map<std::string, MembershipView> view_of;
    std::map<std::string, std::string> skipped;  // node -> why
    std::string busy_node;                     // refused: held for another change
    std::string busy_holder;
  };

  void Work();
  absl::StatusOr<Outcome> Run(const MembershipChange& change,
                              std::map<std::string, std::string>* missed);
  LockRound LockMembers(const config::NodeConfig& config, const MembershipView& own,
                        const std::string& token);
  void Release(const LockRound& round, const std::string& self, const std::string& token);
  absl::Status Push(const std::string& node, const std::string& token,
                    const MembershipView& view);
  void CatchUp(const MembershipView& view, std::map<std::string, std::string> missed);
  // Writes `view` to this node's node.conf if it differs from what is there.
  absl::StatusOr<config::NodeConfig> Persist(const MembershipView& view);
  // Waits up to `duration`; true if stopping.
  bool StoppedWithin(absl::Duration duration);
  bool stopping() const;
  bool JobWaiting() const;

  const Options options_;
  ClusterLock* const lock_;
  Peers* const peers_;
  mutable sync::Mutex mutex_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread worker_;
};

}  // namespace omd::cluster

#endif  // OMD_CLUSTER_MEMBERSHIP_H_

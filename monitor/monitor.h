// The monitors: the node monitor (frozen or not) and one monitor per local
// service instance, which checks the instance on an interval and acts toward
// what is expected of it (monitor/orchestration.h has the rules).
//
// The "monitor" thread's body (Run) schedules a round every `interval`, or at
// once when something changed: each instance of a service whose `nodes` hold
// this node is evaluated on one of a few worker threads (one instance at a time
// each, never two rounds of one instance at once): its resources are checked,
// the plan decided and carried out under the instance's lock
// (service/instance.h), which om's own actions take too. An instance whose lock
// is held is left for the next round.
//
// States are kept in memory, under one mutex, and saved on every change
// (monitor/monitor_store.h); a daemon that starts again finds them, except that
// a transient status (an action the stop interrupted) goes back to idle.
// Heartbeats carry them to the other nodes (Describe) and bring theirs
// (OnPeerAnnounce), so that the service's nodes reach global_expect together.
//
//   Monitor monitor(options, [&] { return reloader.config(); },
//                   [&](absl::string_view node) { return states.Get(node).state == kUp; });
//   supervisor.Add("monitor", [&](const StopSignal& stop) {
//     return monitor.Run([&](absl::Duration d) { return stop.WaitFor(d); });
//   });
//   absl::StatusOr<std::vector<std::string>> info = monitor.SetService(request);
#ifndef OMD_MONITOR_MONITOR_H_
#define OMD_MONITOR_MONITOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "config/node_config.h"
#include "monitor/monitor_store.h"
#include "monitor/orchestration.h"
#include "process/subprocess.h"
#include "proto/omd.pb.h"
#include "service/instance.h"
#include "service/service_config.h"
#include "sync/mutex.h"

namespace omd::monitor {

class Monitor {
 public:
  struct Options {
    std::string root;
    // Between two rounds of checks.
    absl::Duration interval = absl::Seconds(2);
    // Instances evaluated at once.
    int workers = 4;
    // Tells the peers at once (a heartbeat round) after a global_expect
    // changed here; may be empty.
    std::function<void()> announce;
    // How long after a global_expect setting this node waits for the service's
    // nodes that are up to tell of it (orchestration.h, waiting_for): a few
    // heartbeat intervals. Past it, a node that has not told is taken to have
    // no instance of the service.
    absl::Duration settle = absl::Seconds(6);
  };

  Monitor(Options options,
          std::function<std::shared_ptr<const config::NodeConfig>()> config,
          std::function<bool(absl::string_view node)> node_is_up);
  ~Monitor();  // Stop

  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  // The "monitor" thread's body: rounds until `stopped_within` says stop.
  absl::Status Run(const std::function<bool(absl::Duration)>& stopped_within);

  // Cancels the actions under way (their process groups are terminated), and
  // joins the workers; no round runs after it. Idempotent.
  void Stop();

  // Daemon shutdown: stops every local instance (each waits up to `bound` for its
  // lock), sets their local_expect to unset so that nothing restarts them, and
  // returns what it did, one line each. Call after Stop().
  std::vector<std::string> StopLocalInstances(absl::Duration bound);

  // The handlers' operations. Errors: INVALID_ARGUMENT (a bad name or value,
  // listing the allowed ones), NOT_FOUND (no such service, or no instance on
  // this node), FAILED_PRECONDITION (the instance is busy, or a global_expect
  // not supported yet). Nothing changes on an error. OK: the info lines (what
  // was already so, what was skipped).
  absl::StatusOr<v1::GetServiceMonitorReply> GetService(absl::string_view svcname) const;
  absl::StatusOr<std::vector<std::string>> SetService(const v1::SetServiceMonitorRequest& request);
  absl::StatusOr<std::vector<std::string>> Clear(absl::string_view svcname);
  absl::StatusOr<std::vector<std::string>> SetNode(const v1::SetNodeMonitorRequest& request);
  v1::NodeMonitor Node() const;

  // Heartbeats: adds this node's monitors to an announcement; takes a peer's.
  void Describe(v1::AnnounceStateRequest* request) const;
  void OnPeerAnnounce(absl::string_view node, const v1::AnnounceStateRequest& request);

  // Rounds done so far (tests wait on it).
  int64_t rounds() const;

 private:
  struct Peer {
    v1::NodeMonitor node;
    std::map<std::string, v1::InstanceMonitor> instances;  // by svcname
  };

  // Loads the configs of the services with an instance here, adds the states
  // of new ones and drops those of services gone; returns them.
  std::map<std::string, service::ServiceConfig> RefreshServices();
  void WorkerLoop();
  // One instance: check, decide, act.
  void Evaluate(const std::string& svcname, const service::ServiceConfig& config);
  // Carries out `plan`'s action, holding the instance's lock, and records how
  // it ended.
  void Act(const std::string& svcname, const service::ServiceConfig& config, const Plan& plan,
           const service::InstanceLock& instance_lock, const service::InstanceRunner& runner);
  // The service's peers' instances, for a decision about `local`.
  PeerInstances PeersOf(const service::ServiceConfig& config,
                        const v1::InstanceMonitor& local) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Records that `instance`'s global_expect setting changed on this node now.
  void GlobalExpectChanged(const v1::InstanceMonitor& instance)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The config of a service with an instance here: INVALID_ARGUMENT (name),
  // NOT_FOUND (no such service, or not on this node), FAILED_PRECONDITION (its
  // file does not load).
  absl::StatusOr<service::ServiceConfig> LocalService(absl::string_view svcname) const;
  // The instance's state, created if the last round has not yet.
  v1::InstanceMonitor& InstanceOf(const service::ServiceConfig& config)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void SaveLocked(const v1::InstanceMonitor& instance) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Wake() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::string LocalNode() const;

  const Options options_;
  const std::function<std::shared_ptr<const config::NodeConfig>()> config_;
  const std::function<bool(absl::string_view)> node_is_up_;
  const MonitorStore store_;
  process::Cancellation cancellation_;

  mutable sync::Mutex mutex_;
  v1::NodeMonitor node_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, v1::InstanceMonitor> instances_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, Peer> peers_ ABSL_GUARDED_BY(mutex_);
  // When each instance's global_expect setting last changed here (in memory:
  // after a restart, every setting is old).
  std::map<std::string, absl::Time> global_expect_changed_ ABSL_GUARDED_BY(mutex_);
  // Instances queued or being evaluated, and the queue.
  std::set<std::string> busy_ ABSL_GUARDED_BY(mutex_);
  std::deque<std::pair<std::string, service::ServiceConfig>> queue_ ABSL_GUARDED_BY(mutex_);
  bool wake_ ABSL_GUARDED_BY(mutex_) = false;
  bool announce_ ABSL_GUARDED_BY(mutex_) = false;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  int64_t rounds_ ABSL_GUARDED_BY(mutex_) = 0;
  // Instances the last announcement left out (Describe logs changes of it).
  mutable int announced_left_out_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<std::thread> workers_;  // started by the constructor, joined by Stop
};

}  // namespace omd::monitor

#endif  // OMD_MONITOR_MONITOR_H_

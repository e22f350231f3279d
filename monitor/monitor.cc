#include "monitor/monitor.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/quote.h"
#include "log/log.h"
#include "monitor/monitor_values.h"
#include "service/instance.h"
#include "service/service_log.h"

namespace omd::monitor {
namespace {

// Heartbeats carry at most this many instances, and this many bytes of them: an
// announcement must stay well under the daemons' request size cap (64 KiB by
// default).
constexpr int kMaxAnnouncedInstances = 200;
constexpr size_t kMaxAnnouncedBytes = 40 << 10;

v1::InstanceMonitor NewInstance(const std::string& svcname, const std::string& node) {
  v1::InstanceMonitor instance;
  instance.set_svcname(svcname);
  instance.set_nodename(node);
  instance.set_status(std::string(kIdle));
  instance.set_local_expect(std::string(kUnset));
  instance.set_global_expect(std::string(kUnset));
  return instance;
}

// Keeps the instance's resources in the config's order, with their counts.
void MatchResources(const service::ServiceConfig& config, v1::InstanceMonitor& instance) {
  std::map<std::string, v1::ResourceMonitor> before;
  for (const v1::ResourceMonitor& resource : instance.resources()) {
    before[resource.id()] = resource;
  }
  instance.clear_resources();
  for (const service::Resource& resource : config.resources) {
    v1::ResourceMonitor* entry = instance.add_resources();
    if (auto found = before.find(resource.id); found != before.end()) *entry = found->second;
    entry->set_id(resource.id);
    entry->set_restart(static_cast<uint32_t>(resource.restart));
  }
}

void ResetRestarts(v1::InstanceMonitor& instance) {
  for (v1::ResourceMonitor& resource : *instance.mutable_resources()) resource.set_restarts(0);
}

bool HasNode(const service::ServiceConfig& config, const std::string& node) {
  return std::find(config.nodes.begin(), config.nodes.end(), node) != config.nodes.end();
}

void LogToService(const std::string& root, const std::string& svcname,
                  service::LogLevel level, const std::string& message) {
  // An action does not fail for its log: the daemon's own log says why.
  absl::Status logged = service::ServiceLog(root, svcname).Append(level, message);
  if (!logged.ok()) {
    OMD_LOG(WARNING, "cannot write %s's log: %s", svcname, logged.ToString());
  }
}

}  // namespace

Monitor::Monitor(Options options,
                 std::function<std::shared_ptr<const config::NodeConfig>()> config,
                 std::function<bool(absl::string_view node)> node_is_up)
    : options_(std::move(options)),
      config_(std::move(config)),
      node_is_up_(std::move(node_is_up)),
      store_(options_.root) {
  absl::StatusOr<v1::NodeMonitor> node = store_.LoadNode();
  if (!node.ok() && !absl::IsNotFound(node.status())) {
    OMD_LOG(WARNING, "node monitor: %s: starting thawed", node.status().ToString());
  }
  sync::MutexLock lock(&mutex_);
  if (node.ok()) node_ = *node;
  node_.set_status(std::string(kIdle));
  if (node_.local_expect().empty()) {
    node_.set_local_expect(std::string(node_.frozen() ? kFrozen : kThawed));
  }
  instances_ = store_.LoadInstances();
  for (auto& [svcname, instance] : instances_) {
    if (!IsTransientStatus(instance.status())) continue;
    // The action was cut short by the last stop: nothing is under way now.
    LogToService(options_.root, svcname, service::LogLevel::kWarning,
                 absl::StrCat("monitor: the daemon stopped while ", instance.status(),
                              ": back to idle"));
    instance.set_status(std::string(kIdle));
    SaveLocked(instance);
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

Monitor::~Monitor() { Stop(); }

void Monitor::Stop() {
  {
    sync::MutexLock lock(&mutex_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  cancellation_.Cancel();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
}

std::string Monitor::LocalNode() const { return config_()->node_name; }

int64_t Monitor::rounds() const {
  sync::MutexLock lock(&mutex_);
  return rounds_;
}

void Monitor::Wake() { wake_ = true; }

void Monitor::SaveLocked(const v1::InstanceMonitor& instance) {
  // Kept in memory even if the disk refuses: the monitor goes on, and the
  // daemon's log says the state will not survive a restart.
  if (absl::Status saved = store_.SaveInstance(instance); !saved.ok()) {
    OMD_LOG(WARNING, "cannot save %s's monitor state: %s", instance.svcname(),
            saved.ToString());
  }
}

std::map<std::string, service::ServiceConfig> Monitor::RefreshServices() {
  const std::string local = LocalNode();
  std::map<std::string, service::ServiceConfig> here;
  std::set<std::string> unreadable;  // keep their states: the file may be mid-edit
  absl::StatusOr<std::vector<std::string>> names = service::ListServices(options_.root);
  if (!names.ok()) {
    OMD_LOG(WARNING, "cannot list the services: %s", names.status().ToString());
    return here;
  }
  for (const std::string& name : *names) {
    absl::StatusOr<service::ServiceConfig> config =
        service::LoadServiceConfig(options_.root, name, local);
    if (!config.ok()) {
      unreadable.insert(name);
      continue;
    }
    if (HasNode(*config, local)) here.emplace(name, *std::move(config));
  }
  sync::MutexLock lock(&mutex_);
  for (auto it = instances_.begin(); it != instances_.end();) {
    if (here.count(it->first) == 0 && unreadable.count(it->first) == 0) {
      (void)store_.RemoveInstance(it->first);
      it = instances_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [name, config] : here) {
    auto [it, added] = instances_.try_emplace(name, NewInstance(name, local));
    const std::string before = it->second.SerializeAsString();
    MatchResources(config, it->second);
    it->second.set_nodename(local);
    if (added || it->second.SerializeAsString() != before) SaveLocked(it->second);
  }
  return here;
}

absl::Status Monitor::Run(const std::function<bool(absl::Duration)>& stopped_within) {
  while (true) {
    std::map<std::string, service::ServiceConfig> services = RefreshServices();
    bool announce = false;
    {
      sync::MutexLock lock(&mutex_);
      ++rounds_;
      for (auto& [name, config] : services) {
        if (!busy_.insert(name).second) continue;  // its last round is not over
        queue_.emplace_back(name, std::move(config));
      }
      std::swap(announce, announce_);
    }
    if (announce && options_.announce) options_.announce();
    const absl::Time next = absl::Now() + options_.interval;
    while (true) {
      const absl::Duration left = next - absl::Now();
      if (stopped_within(std::clamp(left, absl::ZeroDuration(), absl::Milliseconds(50)))) {
        return absl::OkStatus();
      }
      sync::MutexLock lock(&mutex_);
      if (wake_ || absl::Now() >= next) {
        wake_ = false;
        break;
      }
    }
  }
}

void Monitor::WorkerLoop() {
  pthread_setname_np(pthread_self(), "omd-monitor-w");
  while (true) {
    std::pair<std::string, service::ServiceConfig> work;
    {
      sync::MutexLock lock(&mutex_);
      mutex_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
        return stopping_ || !queue_.empty();
      });
      if (stopping_) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    Evaluate(work.first, work.second);
    sync::MutexLock lock(&mutex_);
    busy_.erase(work.first);
  }
}

PeerInstances Monitor::PeersOf(const service::ServiceConfig& config,
                               const v1::InstanceMonitor& local) const {
  PeerInstances peers;
  auto changed = global_expect_changed_.find(config.name);
  const bool recent = changed != global_expect_changed_.end() &&
                      absl::Now() - changed->second < options_.settle;
  for (const std::string& node : config.nodes) {
    if (node == local.nodename() || !node_is_up_(node)) continue;
    const auto peer = peers_.find(node);
    const v1::InstanceMonitor* instance = nullptr;
    if (peer != peers_.end()) {
      if (auto found = peer->second.instances.find(config.name);
          found != peer->second.instances.end()) {
        instance = &found->second;
      }
    }
    if (recent && (instance == nullptr ||
                   instance->global_expect_version() < local.global_expect_version())) {
      peers.waiting_for.insert(node);
    }
    if (instance == nullptr) continue;
    peers.instances[node] = *instance;
    peers.node_frozen[node] = peer->second.node.frozen();
  }
  return peers;
}

void Monitor::GlobalExpectChanged(const v1::InstanceMonitor& instance) {
  global_expect_changed_[instance.svcname()] = absl::Now();
  announce_ = true;
}

void Monitor::Evaluate(const std::string& svcname, const service::ServiceConfig& config) {
  // om acting on the instance holds its lock: this round leaves it alone.
  absl::StatusOr<service::InstanceLock> instance_lock =
      service::InstanceLock::Acquire(options_.root, svcname, absl::ZeroDuration());
  if (!instance_lock.ok()) return;
  service::InstanceRunner::Options run;
  run.root = options_.root;
  run.cancellation = &cancellation_;
  const service::InstanceRunner runner(run);
  const service::InstanceStatus checked = runner.Check(config);
  if (cancellation_.cancelled()) return;

  const std::string local = LocalNode();
  std::vector<std::pair<service::LogLevel, std::string>> changes;  // for the service's log
  Plan plan;
  {
    sync::MutexLock lock(&mutex_);
    auto found = instances_.find(svcname);
    if (found == instances_.end()) return;  // deleted meanwhile
    v1::InstanceMonitor& instance = found->second;
    const std::string before = instance.SerializeAsString();
    MatchResources(config, instance);
    for (v1::ResourceMonitor& resource : *instance.mutable_resources()) {
      for (const service::ResourceStatus& status : checked.resources) {
        if (status.id != resource.id()) continue;
        const std::string state(service::AvailName(status.avail));
        if (state != resource.state()) {
          changes.emplace_back(
              status.avail == service::Avail::kDown ? service::LogLevel::kWarning
                                                    : service::LogLevel::kInfo,
              absl::StrCat(resource.id(), " is ", state, status.detail.empty() ? "" : ": ",
                           status.detail));
        }
        resource.set_state(state);
      }
    }
    instance.set_avail(std::string(service::AvailName(checked.avail)));
    instance.set_checked_unix_ms(absl::ToUnixMillis(absl::Now()));

    plan = Decide(instance, config, local, node_.frozen(), PeersOf(config, instance));
    if (plan.frozen.has_value()) instance.set_frozen(*plan.frozen);
    if (plan.local_expect.has_value()) instance.set_local_expect(*plan.local_expect);
    if (plan.clear_global_expect) {
      changes.emplace_back(service::LogLevel::kInfo,
                           absl::StrCat("global_expect ", instance.global_expect(),
                                        " reached: unset"));
      instance.set_global_expect(std::string(kUnset));
      instance.set_global_expect_version(instance.global_expect_version() + 1);
      GlobalExpectChanged(instance);
    }
    switch (plan.action) {
      case Plan::Action::kNone:
        break;
      case Plan::Action::kStart:
        instance.set_status(std::string(kStarting));
        break;
      case Plan::Action::kStop:
      case Plan::Action::kStopResources:
        instance.set_status(std::string(kStopping));
        break;
      case Plan::Action::kRestartResources:
        instance.set_status(std::string(kRestarting));
        break;
      case Plan::Action::kGiveUpStart:
        instance.set_status(std::string(kStartFailed));
        break;
      case Plan::Action::kGiveUpStop:
        instance.set_status(std::string(kStopFailed));
        break;
    }
    if (plan.action == Plan::Action::kRestartResources ||
        plan.action == Plan::Action::kStopResources) {
      // Counted before acting, so a restart cut short by a crash still counts.
      for (v1::ResourceMonitor& resource : *instance.mutable_resources()) {
        if (std::find(plan.resources.begin(), plan.resources.end(), resource.id()) !=
            plan.resources.end()) {
          resource.set_restarts(resource.restarts() + 1);
        }
      }
    }
    // The check's time alone is not worth a disk write.
    v1::InstanceMonitor unchecked = instance;
    unchecked.set_checked_unix_ms(0);
    v1::InstanceMonitor previous;
    previous.ParseFromString(before);
    previous.set_checked_unix_ms(0);
    if (unchecked.SerializeAsString() != previous.SerializeAsString()) SaveLocked(instance);
  }
  for (const auto& [level, change] : changes) {
    LogToService(options_.root, svcname, level, absl::StrCat("monitor: ", change));
  }
  if (!plan.why.empty()) {
    const bool gave_up = plan.action == Plan::Action::kGiveUpStart ||
                         plan.action == Plan::Action::kGiveUpStop;
    LogToService(options_.root, svcname,
                 gave_up ? service::LogLevel::kError : service::LogLevel::kInfo,
                 absl::StrCat("monitor: ", plan.why));
    if (gave_up) OMD_LOG(WARNING, "service %s: %s", svcname, plan.why);
  }
  Act(svcname, config, plan, *instance_lock, runner);
}

void Monitor::Act(const std::string& svcname, const service::ServiceConfig& config,
                  const Plan& plan, const service::InstanceLock& instance_lock,
                  const service::InstanceRunner& runner) {
  absl::Status done = absl::OkStatus();
  switch (plan.action) {
    case Plan::Action::kStart:
      done = runner.Start(config, instance_lock);
      break;
    case Plan::Action::kStop:
      done = runner.Stop(config, instance_lock);
      break;
    case Plan::Action::kRestartResources:
      for (const std::string& id : plan.resources) {
        done.Update(runner.StartResource(config, id, instance_lock));
      }
      break;
    case Plan::Action::kStopResources:
      for (const std::string& id : plan.resources) {
        done.Update(runner.StopResource(config, id, instance_lock));
      }
      break;
    default:
      return;  // nothing was started: the status is already where it stays
  }
  sync::MutexLock lock(&mutex_);
  auto found = instances_.find(svcname);
  if (found == instances_.end()) return;
  v1::InstanceMonitor& instance = found->second;
  if (cancellation_.cancelled()) {
    instance.set_status(std::string(kIdle));  // the daemon stops: the next one checks again
  } else if (plan.action == Plan::Action::kStart) {
    instance.set_status(std::string(done.ok() ? kIdle : kStartFailed));
    if (done.ok()) instance.set_local_expect(std::string(kStarted));
  } else if (plan.action == Plan::Action::kStop) {
    instance.set_status(std::string(done.ok() ? kIdle : kStopFailed));
    if (done.ok()) instance.set_local_expect(std::string(kStopped));
  } else {
    // A resource that did not come back (or go) is seen at the next check, and
    // counted again until its restarts run out.
    instance.set_status(std::string(kIdle));
  }
  SaveLocked(instance);
  Wake();  // check the result soon
}

absl::StatusOr<service::ServiceConfig> Monitor::LocalService(absl::string_view svcname) const {
  if (absl::Status valid = service::ValidateServiceName(svcname); !valid.ok()) return valid;
  const std::string local = LocalNode();
  absl::StatusOr<service::ServiceConfig> config =
      service::LoadServiceConfig(options_.root, svcname, local);
  if (absl::IsInvalidArgument(config.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("service ", config::QuoteForMessage(svcname),
                     " has a configuration that does not load: ", config.status().message()));
  }
  if (!config.ok()) return config.status();
  if (!HasNode(*config, local)) {
    return absl::NotFoundError(absl::StrCat("service ", config::QuoteForMessage(svcname),
                                            " has no instance on node ", local, " (nodes: ",
                                            absl::StrJoin(config->nodes, " "), ")"));
  }
  return config;
}

v1::InstanceMonitor& Monitor::InstanceOf(const service::ServiceConfig& config) {
  auto [it, added] = instances_.try_emplace(config.name, NewInstance(config.name, LocalNode()));
  if (added) MatchResources(config, it->second);
  return it->second;
}

absl::StatusOr<v1::GetServiceMonitorReply> Monitor::GetService(absl::string_view svcname) const {
  absl::StatusOr<service::ServiceConfig> config = LocalService(svcname);
  if (!config.ok()) return config.status();
  v1::GetServiceMonitorReply reply;
  sync::MutexLock lock(&mutex_);
  auto found = instances_.find(config->name);
  if (found != instances_.end()) {
    *reply.mutable_instance() = found->second;
  } else {  // created since the last round
    *reply.mutable_instance() = NewInstance(config->name, LocalNode());
    MatchResources(*config, *reply.mutable_instance());
  }
  for (const auto& [node, instance] : PeersOf(*config, reply.instance()).instances) {
    *reply.add_peers() = instance;
  }
  *reply.mutable_node() = node_;
  return reply;
}

absl::StatusOr<std::vector<std::string>> Monitor::SetService(
    const v1::SetServiceMonitorRequest& request) {
  // Every value first: a request is applied whole or not at all.
  if (!request.status().empty()) {
    if (absl::Status valid = CheckServiceStatus(request.status()); !valid.ok()) return valid;
  }
  if (!request.local_expect().empty()) {
    if (absl::Status valid = CheckServiceLocalExpect(request.local_expect()); !valid.ok()) {
      return valid;
    }
  }
  if (!request.global_expect().empty()) {
    if (absl::Status valid = CheckGlobalExpect(request.global_expect()); !valid.ok()) {
      return valid;
    }
  }
  absl::StatusOr<service::ServiceConfig> config = LocalService(request.svcname());
  if (!config.ok()) return config.status();
  std::vector<std::string> info;
  sync::MutexLock lock(&mutex_);
  v1::InstanceMonitor& instance = InstanceOf(*config);
  if (IsTransientStatus(instance.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("service ", config::QuoteForMessage(config->name), " is busy (",
                     instance.status(), "): try again once it is idle"));
  }
  v1::InstanceMonitor changed = instance;
  const auto set = [&info](absl::string_view what, const std::string& current,
                           const std::string& wanted, auto setter) {
    if (wanted.empty()) return false;
    if (current == wanted) {
      info.push_back(absl::StrCat(what, " is already ", wanted));
      return false;
    }
    setter(wanted);
    return true;
  };
  set("status", changed.status(), request.status(),
      [&](const std::string& value) { changed.set_status(value); });
  set("local_expect", changed.local_expect(), request.local_expect(),
      [&](const std::string& value) { changed.set_local_expect(value); });
  if (set("global_expect", changed.global_expect(), request.global_expect(),
          [&](const std::string& value) { changed.set_global_expect(value); })) {
    uint64_t highest = changed.global_expect_version();
    for (const auto& [node, peer] : peers_) {
      if (auto found = peer.instances.find(config->name); found != peer.instances.end()) {
        highest = std::max(highest, found->second.global_expect_version());
      }
    }
    changed.set_global_expect_version(highest + 1);
    GlobalExpectChanged(changed);
  }
  if (request.reset_retries()) ResetRestarts(changed);
  if (changed.SerializeAsString() != instance.SerializeAsString()) {
    instance = changed;
    SaveLocked(instance);
    Wake();
  }
  return info;
}

absl::StatusOr<std::vector<std::string>> Monitor::Clear(absl::string_view svcname) {
  absl::StatusOr<service::ServiceConfig> config = LocalService(svcname);
  if (!config.ok()) return config.status();
  sync::MutexLock lock(&mutex_);
  v1::InstanceMonitor& instance = InstanceOf(*config);
  if (IsTransientStatus(instance.status())) {
    return std::vector<std::string>{absl::StrCat("service ", config::QuoteForMessage(config->name),
                                                 " is ", instance.status(), ": skipped")};
  }
  std::vector<std::string> info;
  if (instance.status() == kIdle) {
    info.push_back(absl::StrCat("service ", config::QuoteForMessage(config->name),
                                " was not failed"));
  }
  instance.set_status(std::string(kIdle));
  ResetRestarts(instance);
  SaveLocked(instance);
  Wake();
  return info;
}

absl::StatusOr<std::vector<std::string>> Monitor::SetNode(
    const v1::SetNodeMonitorRequest& request) {
  if (!request.status().empty()) {
    if (absl::Status valid = CheckNodeStatus(request.status()); !valid.ok()) return valid;
  }
  if (!request.local_expect().empty()) {
    if (absl::Status valid = CheckNodeLocalExpect(request.local_expect()); !valid.ok()) {
      return valid;
    }
  }
  // freezing and thawing are what the node goes through to frozen and thawed;
  // freezing it is a flag, so it gets there at once.
  std::string target = request.local_expect();
  const std::string by_status = request.status() == kFreezing   ? std::string(kFrozen)
                                : request.status() == kThawing ? std::string(kThawed)
                                                               : "";
  if (!by_status.empty() && !target.empty() && by_status != target) {
    return absl::InvalidArgumentError(absl::StrCat("status ", request.status(),
                                                   " contradicts local_expect ", target));
  }
  if (target.empty()) target = by_status;
  std::vector<std::string> info;
  sync::MutexLock lock(&mutex_);
  if (target.empty()) {
    info.push_back(absl::StrCat("the node is already ", node_.status()));
    return info;
  }
  const bool frozen = target == kFrozen;
  if (node_.frozen() == frozen) {
    info.push_back(absl::StrCat("the node is already ", target));
    return info;
  }
  v1::NodeMonitor changed = node_;
  changed.set_frozen(frozen);
  changed.set_local_expect(target);
  changed.set_status(std::string(kIdle));
  if (absl::Status saved = store_.SaveNode(changed); !saved.ok()) {
    // Unlike an instance's restart counts, a freeze that does not survive a
    // restart would break its promise: refused.
    return absl::UnavailableError(absl::StrCat("cannot save the node monitor: ",
                                               saved.message()));
  }
  node_ = changed;
  OMD_LOG(INFO, "node %s", target);
  Wake();
  return info;
}

v1::NodeMonitor Monitor::Node() const {
  sync::MutexLock lock(&mutex_);
  return node_;
}

void Monitor::Describe(v1::AnnounceStateRequest* request) const {
  sync::MutexLock lock(&mutex_);
  *request->mutable_node_monitor() = node_;
  size_t bytes = 0;
  for (const auto& [svcname, instance] : instances_) {
    bytes += instance.ByteSizeLong() + 4;  // and its tag and length
    if (request->instances_size() >= kMaxAnnouncedInstances || bytes > kMaxAnnouncedBytes) {
      break;
    }
    *request->add_instances() = instance;
  }
  const int left_out = static_cast<int>(instances_.size()) - request->instances_size();
  if (left_out != announced_left_out_) {  // once per change, not every heartbeat
    announced_left_out_ = left_out;
    if (left_out > 0) {
      OMD_LOG(WARNING, "heartbeats carry %d of the %d instances: the peers do not hear "
              "of the others", request->instances_size(), instances_.size());
    }
  }
}

void Monitor::OnPeerAnnounce(absl::string_view node, const v1::AnnounceStateRequest& request) {
  if (node == LocalNode()) return;
  std::vector<std::pair<std::string, std::string>> adopted;  // svcname, line
  {
    sync::MutexLock lock(&mutex_);
    Peer& peer = peers_[std::string(node)];
    peer.node = request.node_monitor();
    peer.instances.clear();
    for (const v1::InstanceMonitor& instance : request.instances()) {
      if (!service::ValidateServiceName(instance.svcname()).ok()) continue;
      v1::InstanceMonitor& kept = peer.instances[instance.svcname()];
      kept = instance;
      kept.set_nodename(std::string(node));  // its word about its own instances only
      auto local = instances_.find(instance.svcname());
      if (local == instances_.end() || !IsNewerGlobalExpect(kept, local->second)) continue;
      if (kept.global_expect() != local->second.global_expect()) {
        adopted.emplace_back(instance.svcname(),
                             absl::StrCat("monitor: global_expect ", kept.global_expect(),
                                          ", set through ", node));
      }
      local->second.set_global_expect(kept.global_expect());
      local->second.set_global_expect_version(kept.global_expect_version());
      GlobalExpectChanged(local->second);
      SaveLocked(local->second);
      Wake();
    }
  }
  for (const auto& [svcname, line] : adopted) {
    LogToService(options_.root, svcname, service::LogLevel::kInfo, line);
  }
}

std::vector<std::string> Monitor::StopLocalInstances(absl::Duration bound) {
  std::vector<std::string> lines;
  service::InstanceRunner::Options run;
  run.root = options_.root;
  const service::InstanceRunner runner(run);
  for (const auto& [svcname, config] : RefreshServices()) {
    absl::StatusOr<service::InstanceLock> instance_lock =
        service::InstanceLock::Acquire(options_.root, svcname, bound);
    if (!instance_lock.ok()) {
      lines.push_back(absl::StrCat(svcname, ": not stopped: ", instance_lock.status().message()));
      continue;
    }
    const absl::Status stopped = runner.Stop(config, *instance_lock);
    lines.push_back(absl::StrCat(svcname, stopped.ok() ? ": stopped" : ": stop failed: ",
                                 stopped.message()));
    sync::MutexLock lock(&mutex_);
    if (auto found = instances_.find(svcname); found != instances_.end()) {
      found->second.set_local_expect(std::string(kUnset));
      found->second.set_status(std::string(stopped.ok() ? kIdle : kStopFailed));
      SaveLocked(found->second);
    }
  }
  return lines;
}

}  // namespace omd::monitor

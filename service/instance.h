// A service's local instance: its resources' commands run in order, start and
// stop and check, each bounded by its resource's timeout, each logged to the
// service's log (service_log.h).
//
// Actions on one instance never overlap, whoever runs them (om, or omd's
// monitor): each holds the instance's lock, an exclusive flock on
// DIR/var/lock/<svcname>.lock.
//
//   InstanceRunner runner({.root = root, .cancellation = &cancel});
//   absl::StatusOr<InstanceLock> lock = InstanceLock::Acquire(root, "web", absl::Seconds(30));
//   absl::Status started = runner.Start(config, *lock);
//   absl::StatusOr<InstanceStatus> status = runner.Check(config);
#ifndef OMD_SERVICE_INSTANCE_H_
#define OMD_SERVICE_INSTANCE_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "process/subprocess.h"
#include "service/service_config.h"
#include "service/service_log.h"

namespace omd::service {

// A resource's or an instance's availability.
enum class Avail { kUp, kDown, kWarn, kNotApplicable };

// "up", "down", "warn" (an instance with resources up and others down), "n/a".
absl::string_view AvailName(Avail avail);

struct ResourceStatus {
  std::string id;
  Avail avail = Avail::kNotApplicable;  // up (check exited 0), down, or n/a (no check)
  std::string detail;  // why down: "check exited 1", "check timed out after 5s", ...
};

struct InstanceStatus {
  std::vector<ResourceStatus> resources;  // in the config's order
  // n/a if every resource is; else up if every checked one is up, down if every
  // checked one is down, warn otherwise.
  Avail avail = Avail::kNotApplicable;
};

// The instance's lock, held while it lives (movable, released by destruction).
class InstanceLock {
 public:
  // Waits up to `timeout` for the lock; FAILED_PRECONDITION "service "x" is busy
  // (another action holds its lock)" after it. Zero: try once.
  static absl::StatusOr<InstanceLock> Acquire(absl::string_view root,
                                              absl::string_view name,
                                              absl::Duration timeout);
  InstanceLock(InstanceLock&& other) noexcept;
  InstanceLock& operator=(InstanceLock&& other) noexcept;
  ~InstanceLock();

  const std::string& name() const { return name_; }

 private:
  InstanceLock(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  int fd_ = -1;
  std::string name_;
};

class InstanceRunner {
 public:
  struct Options {
    std::string root;
    // Ends a run early (daemon stop); may be null.
    const process::Cancellation* cancellation = nullptr;
    // Also gets every record the runner logs (om prints them); may be empty.
    std::function<void(LogLevel, absl::string_view)> echo = nullptr;
  };

  explicit InstanceRunner(Options options);

  // Each resource's start, in order (a resource without a start command is
  // skipped); stops at the first that fails: INTERNAL "app#2: start exited 1"
  // (or "... timed out after 30s", "... could not run: ..."). Logged: each
  // command, its result, its stderr's last lines on failure.
  absl::Status Start(const ServiceConfig& config, const InstanceLock& lock) const;
  // Each resource's stop, in reverse order; goes on past failures and returns
  // the first.
  absl::Status Stop(const ServiceConfig& config, const InstanceLock& lock) const;
  // One resource's start (the monitor's restart), or stop.
  absl::Status StartResource(const ServiceConfig& config, absl::string_view id,
                             const InstanceLock& lock) const;
  absl::Status StopResource(const ServiceConfig& config, absl::string_view id,
                            const InstanceLock& lock) const;
  // Every resource's check (no lock: checks change nothing). Not logged: the
  // monitor logs what changed.
  InstanceStatus Check(const ServiceConfig& config) const;

 private:
  absl::Status RunResourceCommand(const ServiceConfig& config, absl::string_view id,
                                  bool start, const InstanceLock& lock) const;

  const Options options_;
};

}  // namespace omd::service

#endif  // OMD_SERVICE_INSTANCE_H_

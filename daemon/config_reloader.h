// Hot reconfiguration: watches ROOT/etc/node.conf and applies each new version
// that loads, keeping the last good one when a version does not.
//
// A change is any change of the file's identity (modification and change times,
// size, inode), whoever made it: om, an editor, a configuration tool. The daemon's
// "reloader" thread runs Run, which looks every `poll_interval`; Reload looks at
// once (after a write the daemon made itself).
//
//   ConfigReloader reloader(options, initial_config,
//                           [&](const config::NodeConfig& config) { return Apply(config); });
//   std::shared_ptr<const config::NodeConfig> now = reloader.config();
//   ConfigReloader::State state = reloader.state();  // error of the last reload
#ifndef OMD_DAEMON_CONFIG_RELOADER_H_
#define OMD_DAEMON_CONFIG_RELOADER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "config/node_config.h"
#include "sync/mutex.h"

namespace omd::daemon {

class ConfigReloader {
 public:
  struct Options {
    std::string root;
    absl::Duration poll_interval = absl::Milliseconds(250);
  };

  // Makes `config` the one in use. An error (e.g. a port that cannot be bound)
  // is reported as the reload's error; whatever could be applied stays applied.
  using Apply = std::function<absl::Status(const config::NodeConfig& config)>;

  struct State {
    std::string path;
    absl::Time mtime = absl::UnixEpoch();      // of the version in use
    absl::Time loaded_at = absl::UnixEpoch();  // when it was applied
    // The last reload's error: the file did not load (the version in use stays),
    // or applying it failed in part. Empty after a reload that worked.
    std::string error;
  };

  // `initial` is in use already (applied by the caller, loaded from the file now
  // on disk).
  ConfigReloader(Options options, config::NodeConfig initial, Apply apply);

  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // Loads and applies node.conf if it changed since the last look.
  void Check();
  // Loads and applies node.conf now, changed or not; returns the load's or the
  // apply's error.
  absl::Status Reload();

  // The body of the reloader thread. `stopped_within(d)` waits up to d and tells
  // whether the thread is asked to stop.
  absl::Status Run(const std::function<bool(absl::Duration)>& stopped_within);

  std::shared_ptr<const config::NodeConfig> config() const;
  State state() const;

 private:
  struct FileIdentity {
    timespec mtime{};
    timespec ctime{};
    off_t size = -1;
    ino_t inode = 0;
    bool operator==(const FileIdentity& other) const;
  };

  FileIdentity Identify() const;
  absl::Status ReloadLocked(const FileIdentity& identity) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const Options options_;
  const std::string path_;
  const Apply apply_;
  // Held while loading and applying: reloads never overlap.
  mutable sync::Mutex mutex_;
  FileIdentity seen_ ABSL_GUARDED_BY(mutex_);
  std::shared_ptr<const config::NodeConfig> config_ ABSL_GUARDED_BY(mutex_);
  State state_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::daemon

#endif  // OMD_DAEMON_CONFIG_RELOADER_H_

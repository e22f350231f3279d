#include "daemon/config_reloader.h"

#include <sys/stat.h>

#include <utility>

#include "absl/time/clock.h"
#include "log/log.h"

namespace omd::daemon {

bool ConfigReloader::FileIdentity::operator==(const FileIdentity& other) const {
  return mtime.tv_sec == other.mtime.tv_sec && mtime.tv_nsec == other.mtime.tv_nsec &&
         ctime.tv_sec == other.ctime.tv_sec && ctime.tv_nsec == other.ctime.tv_nsec &&
         size == other.size && inode == other.inode;
}

ConfigReloader::ConfigReloader(Options options, config::NodeConfig initial, Apply apply)
    : options_(std::move(options)),
      path_(config::NodeConfigPath(options_.root)),
      apply_(std::move(apply)) {
  sync::MutexLock lock(&mutex_);
  seen_ = Identify();
  config_ = std::make_shared<const config::NodeConfig>(std::move(initial));
  state_.path = path_;
  state_.mtime = absl::TimeFromTimespec(seen_.mtime);
  state_.loaded_at = absl::Now();
}

ConfigReloader::FileIdentity ConfigReloader::Identify() const {
  FileIdentity identity;
  struct stat info {};
  if (stat(path_.c_str(), &info) != 0) return identity;  // missing: size -1
  identity.mtime = info.st_mtim;
  identity.ctime = info.st_ctim;
  identity.size = info.st_size;
  identity.inode = info.st_ino;
  return identity;
}

void ConfigReloader::Check() {
  const FileIdentity identity = Identify();
  sync::MutexLock lock(&mutex_);
  if (identity == seen_) return;
  (void)ReloadLocked(identity);
}

absl::Status ConfigReloader::Reload() {
  const FileIdentity identity = Identify();
  sync::MutexLock lock(&mutex_);
  return ReloadLocked(identity);
}

absl::Status ConfigReloader::ReloadLocked(const FileIdentity& identity) {
  seen_ = identity;
  absl::StatusOr<config::NodeConfig> loaded = config::LoadNodeConfig(options_.root);
  if (!loaded.ok()) {
    // Never the secret: load errors name the key, not its value.
    state_.error = std::string(loaded.status().message());
    OMD_LOG(WARNING, "node.conf not reloaded, the last good version stays in use: %s",
            state_.error);
    return loaded.status();
  }
  absl::Status applied = apply_(*loaded);
  config_ = std::make_shared<const config::NodeConfig>(*std::move(loaded));
  state_.mtime = absl::TimeFromTimespec(identity.mtime);
  state_.loaded_at = absl::Now();
  state_.error = applied.ok() ? "" : std::string(applied.message());
  if (applied.ok()) {
    OMD_LOG(INFO, "node.conf reloaded");
  } else {
    OMD_LOG(WARNING, "node.conf reloaded, but: %s", state_.error);
  }
  return applied;
}

absl::Status ConfigReloader::Run(
    const std::function<bool(absl::Duration)>& stopped_within) {
  while (!stopped_within(options_.poll_interval)) Check();
  return absl::OkStatus();
}

std::shared_ptr<const config::NodeConfig> ConfigReloader::config() const {
  sync::MutexLock lock(&mutex_);
  return config_;
}

ConfigReloader::State ConfigReloader::state() const {
  sync::MutexLock lock(&mutex_);
  return state_;
}

}  // namespace omd::daemon

#include "cluster/cluster_lock.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "crypto/aead.h"

namespace omd::cluster {

ClusterLock::ClusterLock(Options options) : options_(std::move(options)) {}

std::string ClusterLock::NewToken() { return crypto::RandomBytes(kTokenBytes); }

absl::Time ClusterLock::Now() const {
  if (options_.clock) return options_.clock();
  return absl::UnixEpoch() +
         absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

bool ClusterLock::HeldLocked(absl::Time now) const {
  return !holder_.empty() && now < expires_;
}

absl::StatusOr<ClusterLock::Grant> ClusterLock::Acquire(absl::string_view holder,
                                                        absl::string_view token,
                                                        absl::Duration lease) {
  if (token.size() != kTokenBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a cluster lock token must be ", kTokenBytes, " bytes"));
  }
  if (holder.empty()) return absl::InvalidArgumentError("a cluster lock needs a holder");
  if (lease <= absl::ZeroDuration() || lease > options_.max_lease) lease = options_.max_lease;
  const absl::Time now = Now();
  sync::MutexLock lock(&mutex_);
  Grant grant;
  if (HeldLocked(now) && holder_ != holder) {
    grant.held_by = holder_;
    return grant;
  }
  holder_ = std::string(holder);
  token_ = std::string(token);
  expires_ = now + lease;
  grant.granted = true;
  grant.lease = lease;
  return grant;
}

absl::Status ClusterLock::Release(absl::string_view holder, absl::string_view token) {
  const absl::Time now = Now();
  sync::MutexLock lock(&mutex_);
  if (!HeldLocked(now)) {
    holder_.clear();
    token_.clear();
    return absl::OkStatus();
  }
  if (holder_ != holder) {
    return absl::FailedPreconditionError(
        absl::StrCat("the cluster lock is held by ", holder_, ", not by ", holder));
  }
  if (token_ != token) {
    return absl::FailedPreconditionError(
        absl::StrCat("the cluster lock is held by ", holder_, " under another token"));
  }
  holder_.clear();
  token_.clear();
  return absl::OkStatus();
}

bool ClusterLock::IsHeldBy(absl::string_view holder, absl::string_view token) const {
  const absl::Time now = Now();
  sync::MutexLock lock(&mutex_);
  return HeldLocked(now) && holder_ == holder && token_ == token;
}

}  // namespace omd::cluster

#include "cluster/heartbeat_schedule.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"

namespace omd::cluster {

bool HeartbeatSchedule::Due(absl::string_view member, int64_t round, absl::Time last_seen) {
  sync::MutexLock lock(&mutex_);
  auto it = failing_.find(member);
  if (it == failing_.end()) return true;
  if (it->second.last_seen != last_seen) {  // heard from since it last failed
    failing_.erase(it);
    return true;
  }
  return round >= it->second.next_round;
}

bool HeartbeatSchedule::Record(absl::string_view member, int64_t round, bool acknowledged,
                               absl::Time last_seen) {
  sync::MutexLock lock(&mutex_);
  if (acknowledged) {
    failing_.erase(member);
    return false;
  }
  Failing& failing = failing_[member];
  ++failing.failures;
  failing.last_seen = last_seen;
  const int beyond = failing.failures - options_.failures_before_backoff;
  // 2^beyond rounds, capped (and the shift kept in range).
  const int64_t rounds_apart =
      beyond <= 0 ? 1
                  : std::min<int64_t>(int64_t{1} << std::min(beyond, 30),
                                      options_.max_rounds_between_calls);
  failing.next_round = round + rounds_apart;
  return rounds_apart > 1;
}

void HeartbeatSchedule::Retain(const std::vector<std::string>& members) {
  const absl::flat_hash_set<absl::string_view> kept(members.begin(), members.end());
  sync::MutexLock lock(&mutex_);
  absl::erase_if(failing_, [&kept](const auto& entry) { return !kept.contains(entry.first); });
}

}  // namespace omd::cluster

#include "server/blacklist.h"

#include <algorithm>
#include <tuple>

namespace omd::server {

Blacklist::Blacklist(Options options) : options_(options) {}

bool Blacklist::IsBlocked(const Sender& sender) const {
  sync::MutexLock lock(&mutex_);
  auto it = invalid_counts_.find(sender);
  return it != invalid_counts_.end() && it->second >= options_.threshold;
}

bool Blacklist::RecordInvalid(const Sender& sender) {
  sync::MutexLock lock(&mutex_);
  auto it = invalid_counts_.find(sender);
  if (it != invalid_counts_.end()) {
    it->second = std::min(it->second + 1, options_.threshold);
    return it->second >= options_.threshold;
  }
  if (invalid_counts_.size() >= options_.capacity) {
    // Make room by forgetting the sender with the fewest failures, but never a
    // blocked one; when all are blocked, the newcomer is not tracked.
    auto fewest = invalid_counts_.end();
    for (auto it = invalid_counts_.begin(); it != invalid_counts_.end(); ++it) {
      if (it->second < options_.threshold &&
          (fewest == invalid_counts_.end() || it->second < fewest->second)) {
        fewest = it;
      }
    }
    if (fewest == invalid_counts_.end()) return false;
    invalid_counts_.erase(fewest);
  }
  invalid_counts_.emplace(sender, 1);
  return options_.threshold <= 1;
}

void Blacklist::RecordValid(const Sender& sender) {
  sync::MutexLock lock(&mutex_);
  invalid_counts_.erase(sender);
}

std::vector<BlacklistEntry> Blacklist::Entries() const {
  std::vector<BlacklistEntry> entries;
  {
    sync::MutexLock lock(&mutex_);
    entries.reserve(invalid_counts_.size());
    for (const auto& [sender, count] : invalid_counts_) {
      entries.push_back({sender, count, count >= options_.threshold});
    }
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a.sender.nodename, a.sender.address) <
           std::tie(b.sender.nodename, b.sender.address);
  });
  return entries;
}

size_t Blacklist::Clear() {
  sync::MutexLock lock(&mutex_);
  const size_t cleared = invalid_counts_.size();
  invalid_counts_.clear();
  return cleared;
}

}  // namespace omd::server

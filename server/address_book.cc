#include "server/address_book.h"

#include "absl/time/clock.h"

namespace omd::server {

AddressBook::AddressBook(Options options, const Blacklist* blacklist)
    : options_(options), blacklist_(blacklist) {}

void AddressBook::SetLocal(const std::vector<net::IpAddress>& addresses) {
  sync::MutexLock lock(&mutex_);
  local_ = absl::flat_hash_set<net::IpAddress>(addresses.begin(), addresses.end());
}

void AddressBook::SetConfiguredMembers(const std::vector<net::IpAddress>& addresses) {
  sync::MutexLock lock(&mutex_);
  configured_members_ =
      absl::flat_hash_set<net::IpAddress>(addresses.begin(), addresses.end());
}

void AddressBook::LearnMember(const net::IpAddress& address, absl::Time now) {
  sync::MutexLock lock(&mutex_);
  if (local_.contains(address) || configured_members_.contains(address)) return;
  auto it = learned_members_.find(address);
  if (it != learned_members_.end()) {
    it->second = now;
    return;
  }
  if (learned_members_.size() >= options_.max_learned) {
    for (auto entry = learned_members_.begin(); entry != learned_members_.end();) {
      if (now - entry->second > options_.learned_ttl) {
        learned_members_.erase(entry++);
      } else {
        ++entry;
      }
    }
    // Still full of live ones: the oldest learned goes (a sweep, but only once
    // per max_learned new member sources).
    if (learned_members_.size() >= options_.max_learned) {
      auto oldest = learned_members_.begin();
      for (auto entry = learned_members_.begin(); entry != learned_members_.end(); ++entry) {
        if (entry->second < oldest->second) oldest = entry;
      }
      learned_members_.erase(oldest);
    }
  }
  learned_members_.emplace(address, now);
}

net::PeerClass AddressBook::ClassOf(const net::IpAddress& address, absl::Time now) const {
  sync::MutexLock lock(&mutex_);
  if (local_.contains(address)) return net::PeerClass::kLocal;
  if (configured_members_.contains(address)) return net::PeerClass::kMember;
  auto it = learned_members_.find(address);
  if (it != learned_members_.end() && now - it->second <= options_.learned_ttl) {
    return net::PeerClass::kMember;
  }
  return net::PeerClass::kOther;
}

std::vector<net::IpAddress> AddressBook::OutsidersOnly(
    const std::vector<net::IpAddress>& sources, absl::Time now) const {
  absl::flat_hash_set<net::IpAddress> trusted_sources;
  {
    sync::MutexLock lock(&mutex_);
    for (const auto* addresses : {&local_, &configured_members_}) {
      for (const net::IpAddress& address : *addresses) trusted_sources.insert(address.SourceKey());
    }
    for (const auto& [address, seen] : learned_members_) {
      if (now - seen <= options_.learned_ttl) trusted_sources.insert(address.SourceKey());
    }
  }
  std::vector<net::IpAddress> outsiders;
  for (const net::IpAddress& source : sources) {
    if (!trusted_sources.contains(source.SourceKey())) outsiders.push_back(source);
  }
  return outsiders;
}

net::PeerVerdict AddressBook::Classify(const net::IpAddress& address) {
  net::PeerVerdict verdict;
  verdict.peer_class = ClassOf(address, absl::Now());
  verdict.refused = verdict.peer_class == net::PeerClass::kOther &&
                    blacklist_->IsSourceBanned(address.SourceKey());
  return verdict;
}

}  // namespace omd::server

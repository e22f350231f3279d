#include "server/blacklist.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"

namespace omd::server {

std::string Sender::ToString() const {
  return absl::StrCat(nodename.empty() ? "(non-member)" : nodename, "@", source.ToString());
}

Blacklist::Blacklist(Options options) : options_(options) {}

bool Blacklist::IsBlocked(const Sender& sender) const {
  sync::MutexLock lock(&mutex_);
  const Table& table = sender.nodename.empty() ? non_members_ : members_;
  auto it = table.index.find(sender);
  return it != table.index.end() && it->second->invalid_messages >= options_.threshold;
}

bool Blacklist::IsSourceBanned(const net::IpAddress& source) const {
  sync::MutexLock lock(&mutex_);
  return blocked_per_source_.contains(source);
}

void Blacklist::Blocked(const net::IpAddress& source) {
  if (blocked_per_source_[source]++ == 0) ++bans_version_;
}

void Blacklist::Unblocked(const net::IpAddress& source) {
  auto it = blocked_per_source_.find(source);
  if (it != blocked_per_source_.end() && --it->second == 0) {
    blocked_per_source_.erase(it);
    ++bans_version_;
  }
}

std::vector<net::IpAddress> Blacklist::BannedSources() const {
  sync::MutexLock lock(&mutex_);
  std::vector<net::IpAddress> sources;
  sources.reserve(blocked_per_source_.size());
  for (const auto& [source, blocked] : blocked_per_source_) sources.push_back(source);
  return sources;
}

uint64_t Blacklist::bans_version() const {
  sync::MutexLock lock(&mutex_);
  return bans_version_;
}

// Counting senders go first: forgetting one costs the sender's victim nothing.
// Only a table full of blocked senders gives one of them back its five tries.
void Blacklist::Evict(Table& table) {
  EntryList& list = table.counting.empty() ? table.blocked : table.counting;
  if (list.empty()) return;
  const Entry& oldest = list.front();
  if (&list == &table.blocked) Unblocked(oldest.sender.source);
  table.index.erase(oldest.sender);
  list.pop_front();
}

bool Blacklist::RecordInvalid(const Sender& sender) {
  sync::MutexLock lock(&mutex_);
  Table& table = TableOf(sender);
  auto found = table.index.find(sender);
  if (found != table.index.end()) {
    EntryList::iterator entry = found->second;
    const bool was_blocked = entry->invalid_messages >= options_.threshold;
    entry->invalid_messages = std::min(entry->invalid_messages + 1, options_.threshold);
    const bool blocked = entry->invalid_messages >= options_.threshold;
    if (blocked && !was_blocked) Blocked(sender.source);
    EntryList& from = was_blocked ? table.blocked : table.counting;
    EntryList& to = blocked ? table.blocked : table.counting;
    to.splice(to.end(), from, entry);  // most recently failed last; iterators stay valid
    return blocked;
  }
  if (table.index.size() >= options_.capacity) Evict(table);
  const bool blocked = options_.threshold <= 1;
  EntryList& list = blocked ? table.blocked : table.counting;
  list.push_back(Entry{sender, 1});
  table.index.emplace(sender, std::prev(list.end()));
  if (blocked) Blocked(sender.source);
  return blocked;
}

void Blacklist::RecordValid(const Sender& sender) {
  sync::MutexLock lock(&mutex_);
  Table& table = TableOf(sender);
  auto found = table.index.find(sender);
  if (found == table.index.end()) return;
  EntryList::iterator entry = found->second;
  if (entry->invalid_messages >= options_.threshold) {
    Unblocked(sender.source);
    table.blocked.erase(entry);
  } else {
    table.counting.erase(entry);
  }
  table.index.erase(found);
}

std::vector<BlacklistEntry> Blacklist::Entries() const {
  std::vector<BlacklistEntry> entries;
  {
    sync::MutexLock lock(&mutex_);
    entries.reserve(members_.index.size() + non_members_.index.size());
    for (const Table* table : {&members_, &non_members_}) {
      for (const EntryList* list : {&table->counting, &table->blocked}) {
        for (const Entry& entry : *list) {
          entries.push_back({entry.sender, entry.invalid_messages,
                             entry.invalid_messages >= options_.threshold, std::string()});
        }
      }
    }
  }
  // Each source is formatted once, outside the lock: formatting in the sort's
  // comparison made listing a full table (4,095 entries) cost 15.7 ms
  // (blacklist_benchmark).
  for (BlacklistEntry& entry : entries) entry.address = entry.sender.source.ToString();
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a.sender.nodename, a.address) < std::tie(b.sender.nodename, b.address);
  });
  return entries;
}

size_t Blacklist::Clear() {
  sync::MutexLock lock(&mutex_);
  const size_t cleared = members_.index.size() + non_members_.index.size();
  for (Table* table : {&members_, &non_members_}) {
    table->counting.clear();
    table->blocked.clear();
    table->index.clear();
  }
  if (!blocked_per_source_.empty()) ++bans_version_;
  blocked_per_source_.clear();
  return cleared;
}

}  // namespace omd::server

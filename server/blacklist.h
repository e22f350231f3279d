// Counts consecutive invalid messages by sender, and says which senders to drop
// before decrypting anything of theirs.
//
// A sender is who claims to send *and* the source it came from (an IPv4 address,
// or an IPv6 /64: net/address.h):
// - a member's name (one of cluster.nodes) at a source: someone who forges node2's
//   name from elsewhere fills node2@their-source, never node2@node2's-source, so
//   they cannot get the real node2 blacklisted;
// - any other name (non-members, Join included, invalid names, envelopes that do
//   not even parse) is counted per source alone: inventing names buys nothing.
//
// Each kind has a table of its own, bounded, with O(1) eviction of the least
// recently failed sender, counting ones before blocked ones, so that a flood of
// one kind never stops the other from being tracked. A source with any blocked
// sender is `IsSourceBanned`, which the listener uses to refuse outsiders'
// connections outright.
//
//   Blacklist blacklist({.threshold = 5});
//   if (blacklist.IsBlocked(sender)) return PermissionDenied(...);  // before decrypting
//   ok ? blacklist.RecordValid(sender) : blacklist.RecordInvalid(sender);
#ifndef OMD_SERVER_BLACKLIST_H_
#define OMD_SERVER_BLACKLIST_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "net/address.h"
#include "sync/mutex.h"

namespace omd::server {

struct Sender {
  // A member's name, as claimed; empty: whatever non-member names came from
  // `source`.
  std::string nodename;
  net::IpAddress source;  // an IpAddress::SourceKey()

  // "node2@127.0.0.3", "(non-member)@127.0.0.3": no raw claimed name, which could
  // be anything, ever reaches a log line.
  std::string ToString() const;

  template <typename H>
  friend H AbslHashValue(H h, const Sender& s) {
    return H::combine(std::move(h), s.nodename, s.source);
  }
  friend bool operator==(const Sender& a, const Sender& b) {
    return a.nodename == b.nodename && a.source == b.source;
  }
};

struct BlacklistEntry {
  Sender sender;
  uint32_t invalid_messages = 0;
  bool blocked = false;
  std::string address;  // sender.source as text ("10.0.0.7", "2001:db8:1:2::/64")
};

class Blacklist {
 public:
  struct Options {
    // Consecutive invalid messages after which a sender's messages are dropped.
    uint32_t threshold = 5;
    // Senders tracked at most, in each of the two tables.
    size_t capacity = 4096;
  };

  explicit Blacklist(Options options);

  bool IsBlocked(const Sender& sender) const;
  // Whether any sender from `source` is blocked.
  bool IsSourceBanned(const net::IpAddress& source) const;
  // The sources with a blocked sender, and a number that changes whenever that
  // set does (so that a caller polling it rebuilds only on change).
  std::vector<net::IpAddress> BannedSources() const;
  uint64_t bans_version() const;
  // Returns whether the sender is now blocked.
  bool RecordInvalid(const Sender& sender);
  // A valid message ends the run of consecutive failures.
  void RecordValid(const Sender& sender);
  // Ordered by node name, then source.
  std::vector<BlacklistEntry> Entries() const;
  // Returns the number of entries removed.
  size_t Clear();

 private:
  struct Entry {
    Sender sender;
    uint32_t invalid_messages = 0;
  };
  using EntryList = std::list<Entry>;
  struct Table {
    EntryList counting;  // least recently failed first
    EntryList blocked;   // least recently failed first
    absl::flat_hash_map<Sender, EntryList::iterator> index;
  };

  Table& TableOf(const Sender& sender) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return sender.nodename.empty() ? non_members_ : members_;
  }
  void Evict(Table& table) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Blocked(const net::IpAddress& source) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void Unblocked(const net::IpAddress& source) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const Options options_;
  mutable sync::Mutex mutex_;
  Table members_ ABSL_GUARDED_BY(mutex_);
  Table non_members_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<net::IpAddress, uint32_t> blocked_per_source_ ABSL_GUARDED_BY(mutex_);
  uint64_t bans_version_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace omd::server

#endif  // OMD_SERVER_BLACKLIST_H_

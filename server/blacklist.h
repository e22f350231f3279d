// Counts consecutive invalid messages by sender, and says which senders to drop.
//
// A sender is a claimed node name *and* the peer address it came from: someone who
// forges node2's name from another address fills node2@their-address, never
// node2@node2's-address, so they cannot get the real node2 blacklisted.
//
//   Blacklist blacklist({.threshold = 5});
//   if (blacklist.IsBlocked(sender)) return PermissionDenied(...);  // before decrypting
//   ok ? blacklist.RecordValid(sender) : blacklist.RecordInvalid(sender);
#ifndef OMD_SERVER_BLACKLIST_H_
#define OMD_SERVER_BLACKLIST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "sync/mutex.h"

namespace omd::server {

struct Sender {
  std::string nodename;  // as claimed in the envelope's clear field
  std::string address;   // the peer's IP address

  template <typename H>
  friend H AbslHashValue(H h, const Sender& s) {
    return H::combine(std::move(h), s.nodename, s.address);
  }
  friend bool operator==(const Sender& a, const Sender& b) {
    return a.nodename == b.nodename && a.address == b.address;
  }
};

struct BlacklistEntry {
  Sender sender;
  uint32_t invalid_messages = 0;
  bool blocked = false;
};

class Blacklist {
 public:
  struct Options {
    // Consecutive invalid messages after which a sender's messages are dropped.
    uint32_t threshold = 5;
    // Senders tracked at most; when full, the unblocked one with the fewest
    // failures goes, so that flooding with new senders cannot unblock anyone.
    size_t capacity = 4096;
  };

  explicit Blacklist(Options options);

  bool IsBlocked(const Sender& sender) const;
  // Returns whether the sender is now blocked.
  bool RecordInvalid(const Sender& sender);
  // A valid message ends the run of consecutive failures.
  void RecordValid(const Sender& sender);
  // Ordered by node name, then address.
  std::vector<BlacklistEntry> Entries() const;
  // Returns the number of entries removed.
  size_t Clear();

 private:
  const Options options_;
  mutable sync::Mutex mutex_;
  absl::flat_hash_map<Sender, uint32_t> invalid_counts_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::server

#endif  // OMD_SERVER_BLACKLIST_H_

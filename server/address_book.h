// Which sources are this node, which are the cluster's members, and which
// outsiders are banned: the listener's connection policy.
//
// Members' addresses come from node.conf ([cluster] addr@<node>) and from
// experience: a source that sent a member's authenticated request is a member
// source for `learned_ttl` (learning needs the secret; nobody can forge a TCP
// source address without being on the path). Local addresses are never refused,
// nor are members'; an outsider's source is refused while the blacklist holds a
// blocked sender from it.
//
//   AddressBook book({}, &blacklist);
//   book.SetLocal(net::LocalInterfaceAddresses());
//   net::PeerVerdict verdict = book.Classify(address);
#ifndef OMD_SERVER_ADDRESS_BOOK_H_
#define OMD_SERVER_ADDRESS_BOOK_H_

#include <cstddef>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "net/address.h"
#include "net/connection_guard.h"
#include "server/blacklist.h"
#include "sync/mutex.h"

namespace omd::server {

class AddressBook : public net::ConnectionPolicy {
 public:
  struct Options {
    absl::Duration learned_ttl = absl::Hours(1);
    size_t max_learned = 1024;
  };

  // `blacklist` must outlive the book.
  AddressBook(Options options, const Blacklist* blacklist);

  // This node's addresses: its interfaces, and the address it listens on.
  void SetLocal(const std::vector<net::IpAddress>& addresses);
  // Members' addresses from the configuration.
  void SetConfiguredMembers(const std::vector<net::IpAddress>& addresses);
  // A source a member's authenticated request came from.
  void LearnMember(const net::IpAddress& address, absl::Time now);

  net::PeerClass ClassOf(const net::IpAddress& address, absl::Time now) const;
  // Of `sources` (SourceKey()s), those that hold no local or member address: the
  // ones that may be dropped whole, in the kernel (an IPv6 /64 may hold both a
  // member and its forger).
  std::vector<net::IpAddress> OutsidersOnly(const std::vector<net::IpAddress>& sources,
                                            absl::Time now) const;
  net::PeerVerdict Classify(const net::IpAddress& address) override;

 private:
  const Options options_;
  const Blacklist* const blacklist_;
  mutable sync::Mutex mutex_;
  absl::flat_hash_set<net::IpAddress> local_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_set<net::IpAddress> configured_members_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<net::IpAddress, absl::Time> learned_members_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace omd::server

#endif  // OMD_SERVER_ADDRESS_BOOK_H_

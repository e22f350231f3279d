// A node's view of its cluster's membership, and the pure steps of a change
// (cluster/membership.h): views gathered from every member are merged, the
// change applied, and the result written to node.conf.
//
//   MembershipView merged = MergeViews({mine, node2s, node3s});
//   MembershipView after = ApplyChange(merged, {MembershipChange::kJoin, "node4",
//                                              "10.0.0.4:1214"});
//   absl::Status written = WriteView(after, ini);  // in an UpdateNodeConfig edit
//
// Each view carries a version, [cluster] nodes_version: how many changes made
// it. A change makes the next version and pushes it to every member; a member
// that missed it (down, cut off) keeps an older one, which the next merge
// ignores, so it cannot bring back a node that left, nor drop one that joined.
#ifndef OMD_CLUSTER_MEMBERSHIP_VIEW_H_
#define OMD_CLUSTER_MEMBERSHIP_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "config/ini.h"
#include "config/node_config.h"
#include "proto/omd.pb.h"

namespace omd::cluster {

// More members than this in a view from the network is refused.
inline constexpr size_t kMaxMembers = 1024;

struct MembershipView {
  std::vector<std::string> nodes;                // sorted, each once
  std::map<std::string, std::string> addresses;  // member -> "host:port"
  uint64_t version = 0;                          // [cluster] nodes_version

  bool operator==(const MembershipView& other) const {
    return nodes == other.nodes && addresses == other.addresses && version == other.version;
  }
  bool operator!=(const MembershipView& other) const { return !(*this == other); }
  // The same members at the same addresses, whatever the versions.
  bool SameMembers(const MembershipView& other) const {
    return nodes == other.nodes && addresses == other.addresses;
  }
  bool Contains(absl::string_view node) const;
};

struct MembershipChange {
  enum Kind { kJoin, kLeave };
  Kind kind = kJoin;
  std::string node;
  // kJoin: where the node is reached, "host:port"; empty: by its name on port
  // 1214 (any address it had is forgotten).
  std::string address;
};

// This node's view: cluster.nodes, the members' addresses and nodes_version.
// INVALID_ARGUMENT if nodes_version is not a whole number.
absl::StatusOr<MembershipView> ViewOf(const config::NodeConfig& config);

// OK if a view from another node is one this node may hold: at most
// kMaxMembers valid, distinct node names, addresses of members only, each a
// valid host[:port]. INVALID_ARGUMENT saying what is wrong.
absl::Status ValidateView(const MembershipView& view);

// OK if `address` is host:port or host, host an IP address or a DNS name, as
// [cluster] addr@<node> takes it (config::ParsePeerAddress), and not longer than
// any such; its "host:port" form in `normalized`. INVALID_ARGUMENT starting with
// `what`.
absl::Status ValidatePeerAddress(absl::string_view what, absl::string_view address,
                                 std::string* normalized);

// To and from the messages that carry views; From* sorts and dedupes nodes.
MembershipView ViewFromLockReply(const v1::ClusterLockReply& reply);
void PutView(const MembershipView& view, v1::ClusterLockReply* reply);
MembershipView ViewFromMembersRequest(const v1::SetClusterMembersRequest& request);
void PutView(const MembershipView& view, v1::SetClusterMembersRequest* request);

// The newest of `views`: the highest version wins. Views of that same version
// are united (only a partition lets two changes make the same version).
// Addresses of nodes that are not members are dropped.
MembershipView MergeViews(absl::Span<const MembershipView> views);

// `view` after `change`: a join adds the node (or updates its address), a leave
// removes it. The version goes up by one if the members changed; a change that
// is already done (joining twice, leaving twice) leaves the view as it was.
MembershipView ApplyChange(const MembershipView& view, const MembershipChange& change);

// Writes `view` into node.conf's [cluster]: nodes, nodes_version, and an
// addr@<node> key for each member that has an address (the others go; a key
// whose value already means the same address is left as written).
absl::Status WriteView(const MembershipView& view, config::IniFile& ini);

}  // namespace omd::cluster

#endif  // OMD_CLUSTER_MEMBERSHIP_VIEW_H_

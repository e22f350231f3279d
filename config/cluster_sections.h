// The parts of node.conf that a whole cluster shares, and how a node takes them
// on when it joins (om daemon join) or drops them when it leaves (om daemon
// leave). Members give a joiner their whole [cluster] section (name, secret and
// key generation, nodes, nodes_version, addr@<node> keys...) and every
// cluster-wide section: hb#*, stonith#*, pool#*, network#*, arbitrator#*.
//
//   v1::JoinReply reply = ClusterConfigOf(member_ini);          // a member, answering
//   absl::Status taken = TakeClusterConfig(reply, secret, "node3", joiner_ini);
//   absl::Status left = MakeStandalone("node3", NewClusterSecret(), leaver_ini);
//
// They only change an IniFile: write it with UpdateNodeConfig (node_config.h),
// which validates the result.
#ifndef OMD_CONFIG_CLUSTER_SECTIONS_H_
#define OMD_CONFIG_CLUSTER_SECTIONS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "config/ini.h"
#include "proto/omd.pb.h"

namespace omd::config {

// [cluster] nodes_version: how many membership changes made cluster.nodes what
// it is (cluster/membership.h); absent: 0.
inline constexpr absl::string_view kNodesVersionKey = "nodes_version";

// hb#*, stonith#*, pool#*, network#*, arbitrator#*.
bool IsClusterWideSection(absl::string_view name);

// What a member gives a joiner: its [cluster] section and cluster-wide sections.
v1::JoinReply ClusterConfigOf(const IniFile& ini);

// Makes `ini` the joiner `node_name`'s configuration in the cluster of `reply`:
// its [cluster] section becomes the reply's (keys of its own that the reply has
// not are removed, the others set in place), with `secret` as the secret, and its
// cluster-wide sections are replaced by the reply's. INVALID_ARGUMENT, with
// `ini` unchanged, if the reply's nodes do not list `node_name`, if it has a
// section that is not cluster-wide, or a key or value that node.conf cannot
// hold.
absl::Status TakeClusterConfig(const v1::JoinReply& reply, absl::string_view secret,
                               absl::string_view node_name, IniFile& ini);

// Makes `ini` a node out of any cluster: [cluster] nodes = `node_name`, `secret`
// as the secret (generation 1: key_generation and previous_secret go), no
// nodes_version, no addr@ key but `node_name`'s own, no cluster-wide section.
// The cluster's name stays.
absl::Status MakeStandalone(absl::string_view node_name, absl::string_view secret,
                            IniFile& ini);

}  // namespace omd::config

#endif  // OMD_CONFIG_CLUSTER_SECTIONS_H_

// The node's configuration file, ROOT/etc/node.conf: who this node is, which
// cluster it belongs to, the cluster's shared secret and where to listen.
//
//   absl::StatusOr<NodeConfig> config = LoadOrCreateNodeConfig("/srv/omd");
//   if (!config.ok()) return config.status();  // "... [listener] port: ..."
//   Listen(config->listener_addr, config->listener_port);
//
//   config->cluster_nodes.push_back("n2");  // Joining a peer.
//   absl::Status saved = SaveNodeConfig("/srv/omd", *config);
//
// The file, in the INI dialect of ini.h (absent keys take the defaults below):
//
//   [node]
//   name = n1
//   [cluster]
//   name = default
//   secret = 5f0c...  (at least 16 characters)
//   nodes = n1 n2
//   [listener]
//   addr = 127.0.0.1
//   port = 1214
//   addr@n2 = 10.0.0.2     (where node n2 listens and connects from; addr@<this
//                           node> replaces addr, as OpenSVC's scoped keys do)
//   memory_budget = 256    (MiB)
//
// The secret authenticates the cluster's nodes to each other: it never appears
// in an error message or a log line, and the file is written with mode 0600.
#ifndef OMD_CONFIG_NODE_CONFIG_H_
#define OMD_CONFIG_NODE_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "config/ini.h"

namespace omd::config {

// The shortest [cluster] secret (and previous_secret) accepted, in bytes.
inline constexpr size_t kMinSecretLength = 16;

struct NodeConfig {
  // [node] name; default: the host name. A valid name (names.h).
  std::string node_name;
  // [cluster] name; default "default". A valid name (names.h).
  std::string cluster_name = "default";
  // [cluster] secret; required, at least kMinSecretLength bytes, used as-is as
  // key material.
  std::string secret;
  // [cluster] key_generation; default 1, at least 1. Bumped at each secret
  // rotation, so a peer can tell which secret a message was sealed with.
  uint32_t key_generation = 1;
  // [cluster] previous_secret; optional, only when key_generation > 1. Still
  // accepted under generation key_generation - 1 while a rotation reaches every
  // node. At least kMinSecretLength bytes, and not the current secret.
  std::string previous_secret;
  // [cluster] nodes, space-separated; default: just node_name. Valid names,
  // each listed once.
  std::vector<std::string> cluster_nodes;
  // [listener] addr; default "127.0.0.1". An IPv4 or IPv6 address.
  std::string listener_addr = "127.0.0.1";
  // [listener] port; default 1214. 0 to 65535, 0 meaning any free port.
  int listener_port = 1214;
  // [listener] clock_skew, whole seconds; default 60, 1 to 3600. How far a
  // peer's envelope send time may be from ours before it is refused.
  absl::Duration clock_skew = absl::Seconds(60);
  // [listener] addr@<node>: the address of each node that has one, this node
  // included when set (then listener_addr is that address). IP addresses, node
  // names valid. The listener gives members' addresses a connection budget of
  // their own. Read only: SaveNodeConfig keeps these keys as they are in `ini`.
  std::map<std::string, std::string> node_addresses;
  // [listener] memory_budget, MiB; default 256, 64 to 1048576. The listener keeps
  // the daemon's resident memory under it whatever unauthenticated clients send.
  size_t memory_budget_bytes = size_t{256} << 20;
  // The whole file, unknown keys and comments included, so that SaveNodeConfig
  // rewrites it without losing them.
  IniFile ini;
};

// Parses and validates the text of a node.conf. INVALID_ARGUMENT naming the key
// on a bad value, e.g. "[listener] port: \"abc\" is not a port number".
absl::StatusOr<NodeConfig> ParseNodeConfig(absl::string_view text);

// ROOT/etc/node.conf.
std::string NodeConfigPath(absl::string_view root);

// ROOT/var/listener.address: the address the daemon bound, recorded so that om can
// reach a daemon configured with port 0.
std::string ListenerAddressPath(absl::string_view root);

// ROOT/var/omd.sock: the daemon's local control channel, a UNIX socket (mode
// 0600) that om uses unless told --server.
std::string ControlSocketPath(absl::string_view root);

// Reads and parses ROOT/etc/node.conf; errors start with its path. NOT_FOUND if
// it is missing. Logs a warning if group or others may access it.
absl::StatusOr<NodeConfig> LoadNodeConfig(absl::string_view root);

// Prepares ROOT for a first start, then loads its node.conf. Creates ROOT/etc
// (mode 0700), ROOT/var and ROOT/var/log (0755) if missing and, if node.conf is
// missing, writes one with mode 0600: this host's name as node name and only
// cluster node, cluster "default", a fresh random secret (64 hex characters)
// and the default listener. Never replaces an existing node.conf, even one that
// another process creates meanwhile.
absl::StatusOr<NodeConfig> LoadOrCreateNodeConfig(absl::string_view root);

// Writes `config` to ROOT/etc/node.conf, atomically and with mode 0600. The
// fields win over config.ini, whose other keys and comments are kept; a field
// at its default is written only if config.ini already has its key.
// INVALID_ARGUMENT, writing nothing, if the result would not load.
absl::Status SaveNodeConfig(absl::string_view root, const NodeConfig& config);

}  // namespace omd::config

#endif  // OMD_CONFIG_NODE_CONFIG_H_

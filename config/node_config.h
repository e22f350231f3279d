// The node's configuration file, ROOT/etc/node.conf: who this node is, which
// cluster it belongs to, the cluster's shared secret, where its members are
// reached and where to listen.
//
//   absl::StatusOr<NodeConfig> config = LoadOrCreateNodeConfig("/srv/omd");
//   if (!config.ok()) return config.status();  // "... [listener] port: ..."
//   Listen(config->listener_addr, config->listener_port);
//   Connect(PeerTarget(*config, "n2"));  // "10.0.0.2:1214"
//
//   // Joining a peer: read, change and write back under the file's lock.
//   absl::StatusOr<NodeConfig> joined = UpdateNodeConfig("/srv/omd", [](IniFile& ini) {
//     return ini.Set("cluster", "nodes", "n1 n2");
//   });
//
// The file, in the INI dialect of ini.h (absent keys take the defaults below):
//
//   [node]
//   name = n1
//   [cluster]
//   name = default
//   secret = 5f0c...  (at least 16 characters)
//   nodes = n1 n2
//   addr@n2 = 10.0.0.2     (where node n2 is reached, host[:port], and the source
//                           its connections come from; OpenSVC's scoped keys)
//   [listener]
//   addr = 127.0.0.1       (where this node listens)
//   port = 1214
//   memory_budget = 256    (MiB)
//
// Every writer of the file takes an exclusive lock first (flock on
// ROOT/etc/node.conf.lock, which the rename of a write leaves alone), then
// reads, changes, validates and replaces the file (atomic_file.h): concurrent
// writers, processes or threads, are serialized and none loses another's
// update, and a writer killed at any moment leaves the old file or the new one.
// Readers take no lock. Keys, sections and comments nobody knows are kept.
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
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "config/ini.h"

namespace omd::config {

// The shortest [cluster] secret (and previous_secret) accepted, in bytes.
inline constexpr size_t kMinSecretLength = 16;

// The port of a member whose [cluster] addr@<node> has none, or who has no such
// key, and the default [listener] port.
inline constexpr int kDefaultPort = 1214;

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
  // each listed once, node_name among them.
  std::vector<std::string> cluster_nodes;
  // [cluster] addr@<node> = host[:port]: where each node that has one is
  // reached, as "host:port" (port filled in, IPv6 in brackets). host is an IP
  // address (an IPv6 one in brackets when a port follows) or a DNS name; port 1
  // to 65535, default kDefaultPort. The node need not be in cluster_nodes yet
  // (a join may record the address first), and this node's own may be there
  // too, so that every member's [cluster] section can be the same. Members whose
  // host is an IP address get the listener's member connection budget from it.
  // Read only: SaveNodeConfig keeps these keys as they are in `ini`; reach any
  // node with PeerTarget.
  std::map<std::string, std::string> node_addresses;
  // [listener] addr; default "127.0.0.1". An IPv4 or IPv6 address: where this
  // node listens.
  std::string listener_addr = "127.0.0.1";
  // [listener] port; default 1214. 0 to 65535, 0 meaning any free port.
  int listener_port = kDefaultPort;
  // [listener] clock_skew, whole seconds; default 60, 1 to 3600. How far a
  // peer's envelope send time may be from ours before it is refused.
  absl::Duration clock_skew = absl::Seconds(60);
  // [listener] memory_budget, MiB; default 256, 64 to 1048576. The listener keeps
  // the daemon's resident memory under it whatever unauthenticated clients send.
  size_t memory_budget_bytes = size_t{256} << 20;
  // The whole file, unknown keys and comments included, so that SaveNodeConfig
  // rewrites it without losing them.
  IniFile ini;
};

// Parses and validates the text of a node.conf. INVALID_ARGUMENT naming the key
// and what it allows on a bad value, e.g. "[listener] port: \"abc\" is not a
// port number (0 to 65535)"; never quoting a secret.
absl::StatusOr<NodeConfig> ParseNodeConfig(absl::string_view text);

// "host:port" where `node` is reached: its [cluster] addr@<node>, or else its
// name on kDefaultPort ("n2:1214"), for any node.
std::string PeerTarget(const NodeConfig& config, absl::string_view node);

// `value`, host[:port] as [cluster] addr@<node> takes it (an IP address, an IPv6
// one in brackets with a port, or a DNS name; port 1 to 65535, default
// kDefaultPort), as "host:port". INVALID_ARGUMENT starting with `what` (e.g.
// "--address") and saying what it allows.
absl::StatusOr<std::string> ParsePeerAddress(absl::string_view what, absl::string_view value);

// A fresh random cluster secret: 64 hex characters (256 bits from OpenSSL's
// CSPRNG), as a first start or a node that leaves its cluster gets.
std::string NewClusterSecret();

// ROOT/etc/node.conf.
std::string NodeConfigPath(absl::string_view root);

// ROOT/etc/node.conf.lock: what every writer of node.conf locks (flock, mode
// 0600). It only ever holds the lock, never data.
std::string NodeConfigLockPath(absl::string_view root);

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
// missing, writes one under the lock with mode 0600: this host's name as node
// name and only cluster node, cluster "default", a fresh random secret (64 hex
// characters) and the default listener. Never replaces an existing node.conf,
// even one that another process creates meanwhile.
absl::StatusOr<NodeConfig> LoadOrCreateNodeConfig(absl::string_view root);

// Changes ROOT/etc/node.conf under its lock: waits for the lock, reads the file
// (which needs to be valid INI, not a valid configuration, so that a bad value
// can be mended), lets `edit` change it, validates the result as ParseNodeConfig
// does and, if `edit` changed anything, replaces the file atomically with mode
// 0600. Returns the new configuration. Nothing is written if `edit` fails (its
// error is returned as is) or if the result would not load (INVALID_ARGUMENT
// naming the key and what it allows). NOT_FOUND if there is no node.conf. The
// lock is held while `edit` runs: it should only change `ini`, and quickly.
// Before writing, removes the temporary files of writers killed mid-write.
absl::StatusOr<NodeConfig> UpdateNodeConfig(
    absl::string_view root, absl::FunctionRef<absl::Status(IniFile& ini)> edit);

// Installs `text` as ROOT/etc/node.conf under the lock, as UpdateNodeConfig
// does, provided the file still holds exactly `expected`: what was read before
// a person's edit of a copy (om node edit config). ABORTED, writing nothing, if
// another writer changed it meanwhile; INVALID_ARGUMENT, writing nothing, if
// `text` would not load. `expected` need not be valid, so a broken file can be
// mended this way. NOT_FOUND if there is no node.conf.
absl::StatusOr<NodeConfig> ReplaceNodeConfigIfUnchanged(absl::string_view root,
                                                        absl::string_view expected,
                                                        absl::string_view text);

// Writes `config` to ROOT/etc/node.conf, under the lock, atomically and with
// mode 0600. The fields win over config.ini, whose other keys and comments are
// kept; a field at its default is written only if config.ini already has its
// key. INVALID_ARGUMENT, writing nothing, if the result would not load. The
// whole file becomes what `config` holds, so a change made on disk since
// `config` was loaded is lost: to change some keys, use UpdateNodeConfig.
absl::Status SaveNodeConfig(absl::string_view root, const NodeConfig& config);

}  // namespace omd::config

#endif  // OMD_CONFIG_NODE_CONFIG_H_

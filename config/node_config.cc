#include "config/node_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "config/atomic_file.h"
#include "config/ini.h"
#include "config/names.h"
#include "config/quote.h"
#include "crypto/aead.h"
#include "log/log.h"
#include "posix/unique_fd.h"
#include "rpc/peer.h"

namespace omd::config {
namespace {

constexpr absl::string_view kNode = "node";
constexpr absl::string_view kCluster = "cluster";
constexpr absl::string_view kListener = "listener";

constexpr mode_t kConfigFileMode = 0600;
constexpr int kMaxPort = 65535;
constexpr int64_t kMinClockSkewSeconds = 1;
constexpr int64_t kMaxClockSkewSeconds = 3600;
constexpr int64_t kMinMemoryBudgetMib = 64;
constexpr int64_t kMaxMemoryBudgetMib = 1 << 20;

absl::Status KeyError(absl::string_view section, absl::string_view key,
                      absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("[", section, "] ", key, ": ", problem));
}

// `status` with `context` in front of its message, same code.
absl::Status WithContext(absl::string_view context,
                         const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat(context, ": ", status.message()));
}

absl::StatusOr<std::string> HostName() {
  char name[256] = {};
  // One byte short, so the name is terminated even if it was truncated.
  if (gethostname(name, sizeof(name) - 1) < 0) {
    return absl::ErrnoToStatus(errno, "cannot get the host name");
  }
  return std::string(name);
}

bool IsIpAddress(const std::string& text) {
  in_addr ipv4;
  in6_addr ipv6;
  return inet_pton(AF_INET, text.c_str(), &ipv4) == 1 ||
         inet_pton(AF_INET6, text.c_str(), &ipv6) == 1;
}

// Parses `section`.`key` as an integer in [min, max] into `*number`; leaves it
// alone if the key is absent.
template <typename Integer>
absl::Status ParseIntegerKey(const IniFile& ini, absl::string_view section,
                             absl::string_view key, Integer min, Integer max,
                             absl::string_view expected, Integer* number) {
  std::optional<std::string> text = ini.Get(section, key);
  if (!text.has_value()) return absl::OkStatus();
  Integer parsed;
  if (!absl::SimpleAtoi(*text, &parsed) || parsed < min || parsed > max) {
    return KeyError(section, key,
                    absl::StrCat(QuoteForMessage(*text), " is not ", expected));
  }
  *number = parsed;
  return absl::OkStatus();
}

// Never mentions the secret's value, nor its length.
absl::Status CheckSecretLength(absl::string_view key,
                               absl::string_view secret) {
  if (secret.size() >= kMinSecretLength) return absl::OkStatus();
  return KeyError(kCluster, key,
                  absl::StrCat("too short: use at least ", kMinSecretLength,
                               " characters"));
}

absl::Status ParseNodeSection(NodeConfig& config) {
  std::optional<std::string> name = config.ini.Get(kNode, "name");
  if (name.has_value()) {
    absl::Status valid = ValidateName("node name", *name);
    if (!valid.ok()) return KeyError(kNode, "name", valid.message());
    config.node_name = *std::move(name);
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> host_name = HostName();
  if (!host_name.ok()) {
    return KeyError(
        kNode, "name",
        absl::StrCat("not set, and ", host_name.status().message()));
  }
  absl::Status valid = ValidateName("node name", *host_name);
  if (!valid.ok()) {
    return KeyError(kNode, "name",
                    absl::StrCat("not set, and the host name is not usable: ",
                                 valid.message()));
  }
  config.node_name = *std::move(host_name);
  return absl::OkStatus();
}

absl::Status ParseClusterSection(NodeConfig& config) {
  const IniFile& ini = config.ini;
  if (std::optional<std::string> name = ini.Get(kCluster, "name")) {
    absl::Status valid = ValidateName("cluster name", *name);
    if (!valid.ok()) return KeyError(kCluster, "name", valid.message());
    config.cluster_name = *std::move(name);
  }

  std::optional<std::string> secret = ini.Get(kCluster, "secret");
  if (!secret.has_value()) {
    return KeyError(kCluster, "secret",
                    absl::StrCat("missing: set the cluster's shared secret, at "
                                 "least ",
                                 kMinSecretLength, " characters"));
  }
  absl::Status status = CheckSecretLength("secret", *secret);
  if (!status.ok()) return status;
  config.secret = *std::move(secret);

  status = ParseIntegerKey<uint32_t>(
      ini, kCluster, "key_generation", 1, UINT32_MAX,
      "a whole number from 1 to 4294967295", &config.key_generation);
  if (!status.ok()) return status;

  // An empty previous_secret is how a finished rotation may be recorded.
  std::optional<std::string> previous = ini.Get(kCluster, "previous_secret");
  if (previous.has_value() && !previous->empty()) {
    if (config.key_generation < 2) {
      return KeyError(kCluster, "previous_secret",
                      "set, but key_generation is 1: a previous secret is "
                      "accepted under key_generation - 1, so key_generation "
                      "must be 2 or more");
    }
    status = CheckSecretLength("previous_secret", *previous);
    if (!status.ok()) return status;
    if (*previous == config.secret) {
      return KeyError(
          kCluster, "previous_secret",
          "same as [cluster] secret: a rotation needs a new secret");
    }
    config.previous_secret = *std::move(previous);
  }

  std::optional<std::string> nodes = ini.Get(kCluster, "nodes");
  if (!nodes.has_value()) {
    config.cluster_nodes = {config.node_name};
    return absl::OkStatus();
  }
  config.cluster_nodes =
      absl::StrSplit(*nodes, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (config.cluster_nodes.empty()) {
    return KeyError(kCluster, "nodes",
                    "empty: list the cluster's node names, this one included");
  }
  absl::flat_hash_set<absl::string_view> seen;
  for (const std::string& node : config.cluster_nodes) {
    absl::Status valid = ValidateName("node name", node);
    if (!valid.ok()) return KeyError(kCluster, "nodes", valid.message());
    if (!seen.insert(node).second) {
      return KeyError(kCluster, "nodes",
                      absl::StrCat(QuoteForMessage(node), " is listed twice"));
    }
  }
  if (!seen.contains(config.node_name)) {
    return KeyError(kCluster, "nodes",
                    absl::StrCat("this node, ", QuoteForMessage(config.node_name),
                                 " ([node] name), is not listed"));
  }
  return absl::OkStatus();
}

// `value` of [cluster] `key` as "host:port", or why it is not host[:port].
absl::StatusOr<std::string> ParseMemberAddress(absl::string_view key,
                                               absl::string_view value) {
  return ParsePeerAddress(absl::StrCat("[", kCluster, "] ", key), value);
}

}  // namespace

absl::StatusOr<std::string> ParsePeerAddress(absl::string_view what,
                                             absl::string_view value) {
  auto error = [&](absl::string_view problem) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", QuoteForMessage(value),
                     " is not host[:port] (an IP address, an IPv6 one in brackets with a "
                     "port, or a DNS name; port 1 to 65535, default ",
                     kDefaultPort, "): ", problem));
  };
  absl::StatusOr<rpc::HostPort> split = rpc::SplitHostPort(value, kDefaultPort);
  if (!split.ok()) return error(split.status().message());
  const bool bracketed = absl::StartsWith(value, "[");
  in6_addr ipv6;
  if (bracketed && inet_pton(AF_INET6, split->host.c_str(), &ipv6) != 1) {
    return error("only an IPv6 address goes in brackets");
  }
  if (!IsIpAddress(split->host) && !IsValidHostName(split->host)) {
    return error(absl::StrCat(QuoteForMessage(split->host),
                              " is neither an IP address nor a DNS name"));
  }
  return rpc::JoinHostPort(split->host, split->port);
}

namespace {

absl::Status ParseMemberAddresses(NodeConfig& config) {
  for (const auto& [key, value] : config.ini.Entries(kCluster)) {
    absl::string_view node = key;
    if (!absl::ConsumePrefix(&node, "addr@")) continue;
    absl::Status valid = ValidateName("node name", node);
    if (!valid.ok()) return KeyError(kCluster, key, valid.message());
    absl::StatusOr<std::string> address = ParseMemberAddress(key, value);
    if (!address.ok()) return address.status();
    config.node_addresses.emplace(std::string(node), *std::move(address));
  }
  return absl::OkStatus();
}

absl::Status ParseListenerSection(NodeConfig& config) {
  const IniFile& ini = config.ini;
  if (std::optional<std::string> addr = ini.Get(kListener, "addr")) {
    if (!IsIpAddress(*addr)) {
      return KeyError(kListener, "addr",
                      absl::StrCat(QuoteForMessage(*addr),
                                   " is not an IPv4 or IPv6 address"));
    }
    config.listener_addr = *std::move(addr);
  }
  absl::Status status =
      ParseIntegerKey(ini, kListener, "port", 0, kMaxPort,
                      "a port number (0 to 65535)", &config.listener_port);
  if (!status.ok()) return status;
  // A key of an older layout, refused rather than ignored: the member it named
  // would silently lose its connection budget.
  for (const auto& [key, value] : ini.Entries(kListener)) {
    if (!absl::StartsWith(key, "addr@")) continue;
    return KeyError(kListener, key,
                    absl::StrCat("no longer read: a member's address is [cluster] ", key,
                                 " = host[:port], and [listener] addr is where this "
                                 "node listens"));
  }
  int64_t memory_budget_mib = static_cast<int64_t>(config.memory_budget_bytes >> 20);
  status = ParseIntegerKey<int64_t>(ini, kListener, "memory_budget", kMinMemoryBudgetMib,
                                    kMaxMemoryBudgetMib,
                                    "a whole number of MiB from 64 to 1048576",
                                    &memory_budget_mib);
  if (!status.ok()) return status;
  config.memory_budget_bytes = static_cast<size_t>(memory_budget_mib) << 20;
  int64_t clock_skew_seconds = absl::ToInt64Seconds(config.clock_skew);
  status = ParseIntegerKey<int64_t>(
      ini, kListener, "clock_skew", kMinClockSkewSeconds, kMaxClockSkewSeconds,
      "a whole number of seconds from 1 to 3600", &clock_skew_seconds);
  if (!status.ok()) return status;
  config.clock_skew = absl::Seconds(clock_skew_seconds);
  return absl::OkStatus();
}

std::string JoinRoot(absl::string_view root, absl::string_view relative) {
  // "/srv/omd/" and "/srv/omd" are the same root; "/" stays "/".
  while (root.size() > 1 && absl::ConsumeSuffix(&root, "/")) {
  }
  if (root.empty()) return std::string(relative);
  if (root == "/") return absl::StrCat("/", relative);
  return absl::StrCat(root, "/", relative);
}

absl::Status CheckRoot(absl::string_view root) {
  if (!root.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError("empty root directory");
}

void WarnIfAccessibleByOthers(const std::string& path) {
  struct stat info;
  // The file was read a moment ago: a failure here is not worth an error.
  if (stat(path.c_str(), &info) < 0) return;
  if ((info.st_mode & 077) == 0) return;
  OMD_LOG(WARNING,
          "%s is accessible by group or others (mode %04o) but holds the "
          "cluster secret; run: chmod 600 %s",
          path, static_cast<unsigned>(info.st_mode & 07777), path);
}

// The exclusive lock every writer of node.conf holds, on a file of its own
// (node.conf's inode changes with each write). Released when the descriptor
// closes, or by the kernel when the process dies: a killed writer never leaves
// the file locked. Waits as long as another writer holds it, which is only for a
// read and a write. NOT_FOUND if ROOT/etc does not exist.
absl::StatusOr<posix::UniqueFd> LockNodeConfig(absl::string_view root) {
  const std::string path = NodeConfigLockPath(root);
  // Read-only is enough for flock, whatever the file's mode.
  posix::UniqueFd fd(
      open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, kConfigFileMode));
  if (!fd.is_open()) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  struct stat info;
  if (fstat(fd.get(), &info) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat ", path));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  // open() applied the umask to a new file; one made by hand may be anything.
  // It holds no data, so a failure (another owner's file) does not matter.
  if ((info.st_mode & 07777) != kConfigFileMode) fchmod(fd.get(), kConfigFileMode);
  int locked;
  do {
    locked = flock(fd.get(), LOCK_EX);
  } while (locked < 0 && errno == EINTR);
  if (locked < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot lock ", path));
  return fd;
}

// Replaces node.conf with `text`; the caller holds the lock, so a temporary file
// of node.conf's is a dead writer's and may go.
absl::Status ReplaceNodeConfigLocked(absl::string_view root, absl::string_view text) {
  const std::string path = NodeConfigPath(root);
  absl::StatusOr<int> removed = RemoveTemporaryFiles(path);
  if (!removed.ok()) {
    OMD_LOG(WARNING, "%s", removed.status().message());
  } else if (*removed > 0) {
    OMD_LOG(INFO, "removed %d temporary file(s) of %s left by interrupted writes",
            *removed, path);
  }
  return WriteFileAtomically(path, text, kConfigFileMode);
}

// Under the lock: reads node.conf, has `change` make the new text from the
// current one, validates it and writes it if it differs. The texts hold the
// secret: wiped when done.
absl::StatusOr<NodeConfig> ChangeNodeConfigLocked(
    absl::string_view root,
    absl::FunctionRef<absl::StatusOr<std::string>(const std::string& current)> change) {
  absl::Status status = CheckRoot(root);
  if (!status.ok()) return status;
  const std::string path = NodeConfigPath(root);
  absl::StatusOr<posix::UniqueFd> lock = LockNodeConfig(root);
  if (absl::IsNotFound(lock.status())) {
    // No ROOT/etc, so no node.conf: say that rather than name the lock.
    return absl::NotFoundError(absl::StrCat(path, " does not exist"));
  }
  if (!lock.ok()) return lock.status();
  absl::StatusOr<std::string> current = ReadFileToString(path, IniFile::kMaxBytes);
  if (!current.ok()) return current.status();  // Already names the path.
  absl::StatusOr<std::string> changed = change(*current);
  absl::StatusOr<NodeConfig> config;
  if (changed.ok()) {
    config = ParseNodeConfig(*changed);
    if (config.ok() && *changed != *current) status = ReplaceNodeConfigLocked(root, *changed);
    OPENSSL_cleanse(changed->data(), changed->size());
  } else {
    status = changed.status();
  }
  OPENSSL_cleanse(current->data(), current->size());
  if (!status.ok()) return status;
  return config;
}

}  // namespace

std::string NewClusterSecret() {
  std::string key = crypto::RandomBytes(32);
  std::string secret = absl::BytesToHexString(key);
  OPENSSL_cleanse(key.data(), key.size());
  return secret;
}

namespace {

// A fresh node.conf for this host, with a random 256-bit secret.
absl::StatusOr<std::string> DefaultNodeConfigText() {
  absl::StatusOr<std::string> host_name = HostName();
  if (!host_name.ok()) return host_name.status();
  absl::Status valid = ValidateName("node name", *host_name);
  if (!valid.ok()) {
    return WithContext("the host name cannot be the default node name", valid);
  }
  std::string secret = NewClusterSecret();
  std::string text = absl::StrFormat(
      "# omd node configuration, written at first start.\n"
      "# Keep it private: [cluster] secret authenticates the cluster's nodes.\n"
      "[node]\n"
      "name = %s\n"
      "\n"
      "[cluster]\n"
      "name = default\n"
      "secret = %s\n"
      "nodes = %s\n"
      "\n"
      "[listener]\n"
      "addr = 127.0.0.1\n"
      "port = 1214\n",
      *host_name, secret, *host_name);
  OPENSSL_cleanse(secret.data(), secret.size());
  return text;
}

}  // namespace

absl::StatusOr<NodeConfig> ParseNodeConfig(absl::string_view text) {
  absl::StatusOr<IniFile> ini = IniFile::Parse(text);
  if (!ini.ok()) return ini.status();
  NodeConfig config;
  config.ini = *std::move(ini);
  absl::Status status = ParseNodeSection(config);
  if (status.ok()) status = ParseClusterSection(config);
  if (status.ok()) status = ParseMemberAddresses(config);
  if (status.ok()) status = ParseListenerSection(config);
  if (!status.ok()) return status;
  return config;
}

std::string NodeConfigPath(absl::string_view root) {
  return JoinRoot(root, "etc/node.conf");
}

std::string NodeConfigLockPath(absl::string_view root) {
  return JoinRoot(root, "etc/node.conf.lock");
}

std::string PeerTarget(const NodeConfig& config, absl::string_view node) {
  auto address = config.node_addresses.find(std::string(node));
  if (address != config.node_addresses.end()) return address->second;
  return rpc::JoinHostPort(node, kDefaultPort);
}

std::string ListenerAddressPath(absl::string_view root) {
  return absl::StrCat(root, "/var/listener.address");
}

std::string ControlSocketPath(absl::string_view root) {
  return absl::StrCat(root, "/var/omd.sock");
}

absl::StatusOr<NodeConfig> LoadNodeConfig(absl::string_view root) {
  absl::Status status = CheckRoot(root);
  if (!status.ok()) return status;
  std::string path = NodeConfigPath(root);
  absl::StatusOr<std::string> text = ReadFileToString(path, IniFile::kMaxBytes);
  if (!text.ok()) return text.status();  // Already names the path.
  WarnIfAccessibleByOthers(path);
  absl::StatusOr<NodeConfig> config = ParseNodeConfig(*text);
  OPENSSL_cleanse(text->data(), text->size());
  if (!config.ok()) return WithContext(path, config.status());
  return config;
}

absl::StatusOr<NodeConfig> LoadOrCreateNodeConfig(absl::string_view root) {
  absl::Status status = CheckRoot(root);
  if (!status.ok()) return status;
  // The root first, so that it gets 0755 rather than etc's 0700.
  struct {
    std::string path;
    mode_t mode;
  } const directories[] = {
      {std::string(root), 0755},
      {JoinRoot(root, "etc"), 0700},
      {JoinRoot(root, "var"), 0755},
      {JoinRoot(root, "var/log"), 0755},
  };
  for (const auto& directory : directories) {
    status = MakeDirectories(directory.path, directory.mode);
    if (!status.ok()) return status;
  }

  std::string path = NodeConfigPath(root);
  absl::StatusOr<posix::UniqueFd> lock = LockNodeConfig(root);
  if (!lock.ok()) return lock.status();
  struct stat info;
  if (lstat(path.c_str(), &info) < 0) {
    if (errno != ENOENT) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat ", path));
    }
    absl::StatusOr<std::string> text = DefaultNodeConfigText();
    if (!text.ok()) {
      return WithContext(absl::StrCat("cannot create ", path), text.status());
    }
    // Not replacing, even under the lock: a writer that does not take it (a
    // person, a provisioning tool) may create the file meanwhile. ALREADY_EXISTS:
    // use theirs.
    status = CreateFileAtomically(path, *text, kConfigFileMode);
    OPENSSL_cleanse(text->data(), text->size());
    if (status.ok()) {
      OMD_LOG(INFO, "created %s with a new cluster secret", path);
    } else if (!absl::IsAlreadyExists(status)) {
      return status;
    }
  }
  lock->Reset();
  return LoadNodeConfig(root);
}

absl::StatusOr<NodeConfig> UpdateNodeConfig(
    absl::string_view root, absl::FunctionRef<absl::Status(IniFile& ini)> edit) {
  return ChangeNodeConfigLocked(
      root, [&](const std::string& current) -> absl::StatusOr<std::string> {
        absl::StatusOr<IniFile> ini = IniFile::Parse(current);
        if (!ini.ok()) return WithContext(NodeConfigPath(root), ini.status());
        absl::Status edited = edit(*ini);
        if (!edited.ok()) return edited;
        return ini->Serialize();
      });
}

absl::StatusOr<NodeConfig> ReplaceNodeConfigIfUnchanged(absl::string_view root,
                                                        absl::string_view expected,
                                                        absl::string_view text) {
  return ChangeNodeConfigLocked(
      root, [&](const std::string& current) -> absl::StatusOr<std::string> {
        if (current != expected) {
          return absl::AbortedError(absl::StrCat(NodeConfigPath(root),
                                                 " was changed by another writer meanwhile"));
        }
        return std::string(text);
      });
}

absl::Status SaveNodeConfig(absl::string_view root, const NodeConfig& config) {
  absl::Status status = CheckRoot(root);
  if (!status.ok()) return status;
  IniFile ini = config.ini;
  // Who the node is and which cluster it is in are always written, so they
  // survive a change of host name. Tunables at their default are written only
  // if the file already has them, so a rewrite does not fill it with defaults.
  auto set = [&ini, &status](absl::string_view section, absl::string_view key,
                             const std::string& value) {
    if (status.ok()) status = ini.Set(section, key, value);
  };
  auto set_unless_default = [&](absl::string_view section,
                                absl::string_view key, const std::string& value,
                                const std::string& default_value) {
    if (value != default_value || ini.Get(section, key).has_value()) {
      set(section, key, value);
    }
  };
  const NodeConfig defaults;
  set(kNode, "name", config.node_name);
  set(kCluster, "name", config.cluster_name);
  set(kCluster, "secret", config.secret);
  set_unless_default(kCluster, "key_generation",
                     absl::StrCat(config.key_generation),
                     absl::StrCat(defaults.key_generation));
  if (config.previous_secret.empty()) {
    ini.Remove(kCluster, "previous_secret");
  } else {
    set(kCluster, "previous_secret", config.previous_secret);
  }
  set(kCluster, "nodes", absl::StrJoin(config.cluster_nodes, " "));
  set_unless_default(kListener, "addr", config.listener_addr, defaults.listener_addr);
  set_unless_default(kListener, "port", absl::StrCat(config.listener_port),
                     absl::StrCat(defaults.listener_port));
  set_unless_default(kListener, "memory_budget",
                     absl::StrCat(config.memory_budget_bytes >> 20),
                     absl::StrCat(defaults.memory_budget_bytes >> 20));
  set_unless_default(kListener, "clock_skew",
                     absl::StrCat(absl::ToInt64Seconds(config.clock_skew)),
                     absl::StrCat(absl::ToInt64Seconds(defaults.clock_skew)));
  if (!status.ok()) {
    return WithContext("not saving the node configuration", status);
  }

  std::string text = ini.Serialize();
  // Refuse to write what the next start could not load.
  absl::StatusOr<NodeConfig> reloaded = ParseNodeConfig(text);
  if (!reloaded.ok()) {
    return WithContext("not saving the node configuration", reloaded.status());
  }
  status = MakeDirectories(JoinRoot(root, "etc"), 0700);
  if (status.ok()) {
    absl::StatusOr<posix::UniqueFd> lock = LockNodeConfig(root);
    status = lock.ok() ? ReplaceNodeConfigLocked(root, text) : lock.status();
  }
  OPENSSL_cleanse(text.data(), text.size());
  return status;
}

}  // namespace omd::config

#include "config/node_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
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
#include "log/log.h"

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
  for (const auto& [key, value] : ini.Entries(kListener)) {
    absl::string_view node = key;
    if (!absl::ConsumePrefix(&node, "addr@")) continue;
    absl::Status valid = ValidateName("node name", node);
    if (!valid.ok()) return KeyError(kListener, key, valid.message());
    if (!IsIpAddress(value)) {
      return KeyError(kListener, key,
                      absl::StrCat(QuoteForMessage(value), " is not an IPv4 or IPv6 address"));
    }
    config.node_addresses.emplace(std::string(node), value);
  }
  if (auto own = config.node_addresses.find(config.node_name);
      own != config.node_addresses.end()) {
    config.listener_addr = own->second;
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

// A fresh node.conf for this host, with a random 256-bit secret.
absl::StatusOr<std::string> DefaultNodeConfigText() {
  absl::StatusOr<std::string> host_name = HostName();
  if (!host_name.ok()) return host_name.status();
  absl::Status valid = ValidateName("node name", *host_name);
  if (!valid.ok()) {
    return WithContext("the host name cannot be the default node name", valid);
  }
  unsigned char key[32];
  if (RAND_bytes(key, sizeof(key)) != 1) {
    return absl::InternalError(
        "cannot generate a cluster secret: RAND_bytes failed");
  }
  std::string secret = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(key), sizeof(key)));
  OPENSSL_cleanse(key, sizeof(key));
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
  if (status.ok()) status = ParseListenerSection(config);
  if (!status.ok()) return status;
  return config;
}

std::string NodeConfigPath(absl::string_view root) {
  return JoinRoot(root, "etc/node.conf");
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
  struct stat info;
  if (lstat(path.c_str(), &info) < 0) {
    if (errno != ENOENT) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat ", path));
    }
    absl::StatusOr<std::string> text = DefaultNodeConfigText();
    if (!text.ok()) {
      return WithContext(absl::StrCat("cannot create ", path), text.status());
    }
    status = CreateFileAtomically(path, *text, kConfigFileMode);
    OPENSSL_cleanse(text->data(), text->size());
    // ALREADY_EXISTS: another process created it meanwhile; use theirs.
    if (status.ok()) {
      OMD_LOG(INFO, "created %s with a new cluster secret", path);
    } else if (!absl::IsAlreadyExists(status)) {
      return status;
    }
  }
  return LoadNodeConfig(root);
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
  // With addr@<this node>, listener_addr came from that key: addr stays as is.
  if (config.node_addresses.count(config.node_name) == 0) {
    set_unless_default(kListener, "addr", config.listener_addr, defaults.listener_addr);
  }
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
    status = WriteFileAtomically(NodeConfigPath(root), text, kConfigFileMode);
  }
  OPENSSL_cleanse(text.data(), text.size());
  return status;
}

}  // namespace omd::config

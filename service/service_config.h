// A service's configuration: DIR/etc/<svcname>.conf, in node.conf's INI dialect
// (config/ini.h), and the files' life: create, read, list, delete.
//
//   [DEFAULT]
//   nodes = n1 n2           # where it may run; default: this node alone
//   topology = failover     # or flex; default failover
//
//   [app#1]
//   start = /usr/bin/myapp --daemon --pidfile /run/myapp.pid
//   stop = /usr/bin/pkill -F /run/myapp.pid
//   check = /usr/bin/pgrep -F /run/myapp.pid
//   restart = 2             # restarts the monitor may try; default 0
//   timeout = 30s           # of each of its commands; default 60s
//
// Argument lists are words separated by spaces or tabs, run without a shell; a
// word in double quotes may hold spaces, and `\"` and `\\` inside quotes are a
// quote and a backslash. Resources run in their number's order (app#2 before
// app#10).
//
//   absl::StatusOr<ServiceConfig> config = LoadServiceConfig(root, "web");
//   if (absl::IsNotFound(config.status())) ...
#ifndef OMD_SERVICE_SERVICE_CONFIG_H_
#define OMD_SERVICE_SERVICE_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace omd::service {

enum class Topology { kFailover, kFlex };

absl::string_view TopologyName(Topology topology);  // "failover", "flex"

struct Resource {
  std::string id;  // "app#1"
  // Each an argument list; empty: the resource has no such command (no check:
  // its state is "n/a" and the monitor never restarts it).
  std::vector<std::string> start;
  std::vector<std::string> stop;
  std::vector<std::string> check;
  int restart = 0;                        // 0 to 100
  absl::Duration timeout = absl::Seconds(60);  // 1s to 1h
};

struct ServiceConfig {
  std::string name;
  std::vector<std::string> nodes;  // valid node names, no duplicates, not empty
  Topology topology = Topology::kFailover;
  std::vector<Resource> resources;  // by number
};

// Lowercase letters, digits, '-' and '.', starting with a letter or digit, at
// most 63 characters, no "..", and not one of om's own first words ("daemon",
// "node", "svc"), so that `om <svcname> ...` is never another command and
// DIR/etc/<svcname>.conf is never another file (node.conf: "node" is refused).
// INVALID_ARGUMENT saying so otherwise.
absl::Status ValidateServiceName(absl::string_view name);

// An argument list's words, as the file writes them (see above).
// INVALID_ARGUMENT for an unterminated quote.
absl::StatusOr<std::vector<std::string>> SplitArguments(absl::string_view text);

// The words written back so that SplitArguments reads them again: a word that
// is empty or holds a space, tab, quote or backslash is quoted.
std::string JoinArguments(const std::vector<std::string>& words);

// DIR/etc/<svcname>.conf; the name must be valid.
std::string ServiceConfigPath(absl::string_view root, absl::string_view name);

// Parses and validates a service's file. `default_node` is the node the
// service runs on when it has no `nodes` key. INVALID_ARGUMENT naming the
// section and key at fault (never quoting more than the key's value).
absl::StatusOr<ServiceConfig> ParseServiceConfig(absl::string_view name,
                                                 absl::string_view text,
                                                 absl::string_view default_node);

struct ServiceConfigFile {
  std::string text;
  absl::Time mtime;
};

// The file as it is. INVALID_ARGUMENT for a bad name, NOT_FOUND "service "x"
// does not exist" when there is no file.
absl::StatusOr<ServiceConfigFile> ReadServiceConfigFile(absl::string_view root,
                                                        absl::string_view name);

// ReadServiceConfigFile, then ParseServiceConfig.
absl::StatusOr<ServiceConfig> LoadServiceConfig(absl::string_view root,
                                                absl::string_view name,
                                                absl::string_view default_node);

// The services of DIR/etc/: every <name>.conf whose name is valid (other
// files are not services: node.conf, temporaries), sorted.
absl::StatusOr<std::vector<std::string>> ListServices(absl::string_view root);

// Writes DIR/etc/<svcname>.conf atomically if `text` parses; ALREADY_EXISTS if
// the service exists (nothing written).
absl::Status CreateService(absl::string_view root, absl::string_view name,
                           absl::string_view text, absl::string_view default_node);

// Removes the file; NOT_FOUND if there is none.
absl::Status DeleteService(absl::string_view root, absl::string_view name);

}  // namespace omd::service

#endif  // OMD_SERVICE_SERVICE_CONFIG_H_

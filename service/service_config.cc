#include "service/service_config.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "config/ini.h"
#include "config/names.h"
#include "config/quote.h"

namespace omd::service {
namespace {

constexpr absl::string_view kDefaultSection = "DEFAULT";
constexpr absl::string_view kResourcePrefix = "app#";
constexpr absl::string_view kReservedNames[] = {"daemon", "node", "svc"};
constexpr int kMaxRestart = 100;
constexpr absl::Duration kMinTimeout = absl::Seconds(1);
constexpr absl::Duration kMaxTimeout = absl::Hours(1);
// A service file is world-readable: it holds commands, never secrets.
constexpr mode_t kConfigMode = 0644;

std::string EtcDirectory(absl::string_view root) { return absl::StrCat(root, "/etc"); }

absl::Status UnknownKey(absl::string_view section, absl::string_view key,
                        absl::string_view allowed) {
  return absl::InvalidArgumentError(absl::StrCat("[", section, "] unknown key ",
                                                 config::QuoteForMessage(key),
                                                 ": the keys of [", section, "] are ",
                                                 allowed));
}

// The N of a section "app#N": a positive integer without leading zeros (so
// that "app#01" cannot be a second app#1).
std::optional<int> ResourceNumber(absl::string_view section) {
  if (!absl::ConsumePrefix(&section, kResourcePrefix)) return std::nullopt;
  if (section.empty() || section.size() > 9 || section[0] == '0') return std::nullopt;
  for (char c : section) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  int number = 0;
  if (!absl::SimpleAtoi(section, &number) || number <= 0) return std::nullopt;
  return number;
}

absl::StatusOr<std::vector<std::string>> ParseNodes(absl::string_view value) {
  std::vector<std::string> nodes;
  std::set<std::string> seen;
  for (absl::string_view node : absl::StrSplit(value, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
    if (absl::Status valid = config::ValidateName("node name", node); !valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("[DEFAULT] nodes: ", valid.message()));
    }
    if (!seen.insert(std::string(node)).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[DEFAULT] nodes: ", config::QuoteForMessage(node), " is listed twice"));
    }
    nodes.emplace_back(node);
  }
  if (nodes.empty()) {
    return absl::InvalidArgumentError(
        "[DEFAULT] nodes is empty: list the nodes the service may run on, or leave "
        "the key out for this node alone");
  }
  return nodes;
}

absl::Status ParseResource(const config::IniFile& ini, const std::string& section,
                           Resource* resource) {
  resource->id = section;
  for (const auto& [key, value] : ini.Entries(section)) {
    const std::string where = absl::StrCat("[", section, "] ", key, ": ");
    if (key == "start" || key == "stop" || key == "check") {
      absl::StatusOr<std::vector<std::string>> words = SplitArguments(value);
      if (!words.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(where, words.status().message()));
      }
      std::vector<std::string>& command = key == "start"  ? resource->start
                                          : key == "stop" ? resource->stop
                                                          : resource->check;
      command = *std::move(words);
    } else if (key == "restart") {
      int restart = 0;
      if (!absl::SimpleAtoi(value, &restart) || restart < 0 || restart > kMaxRestart) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, config::QuoteForMessage(value),
                         " is not a number of restarts from 0 to ", kMaxRestart));
      }
      resource->restart = restart;
    } else if (key == "timeout") {
      absl::Duration timeout;
      if (!absl::ParseDuration(value, &timeout) || timeout < kMinTimeout ||
          timeout > kMaxTimeout) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, config::QuoteForMessage(value),
                         " is not a duration from 1s to 1h (e.g. 30s, 5m)"));
      }
      resource->timeout = timeout;
    } else {
      return UnknownKey(section, key, "start, stop, check, restart and timeout");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitArguments(absl::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        quoted = false;
      } else if (c == '\\' && i + 1 < text.size() &&
                 (text[i + 1] == '"' || text[i + 1] == '\\')) {
        word.push_back(text[++i]);
      } else {
        word.push_back(c);
      }
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      in_word = true;
      if (c == '"') {
        quoted = true;
      } else {
        word.push_back(c);
      }
    }
  }
  if (quoted) {
    return absl::InvalidArgumentError(
        "unterminated double quote (inside quotes, write \\\" for a quote and \\\\ "
        "for a backslash)");
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::string JoinArguments(const std::vector<std::string>& words) {
  std::vector<std::string> written;
  for (const std::string& word : words) {
    if (!word.empty() && word.find_first_of(" \t\"\\") == std::string::npos) {
      written.push_back(word);
      continue;
    }
    std::string quoted = "\"";
    for (char c : word) {
      if (c == '"' || c == '\\') quoted.push_back('\\');
      quoted.push_back(c);
    }
    quoted.push_back('"');
    written.push_back(std::move(quoted));
  }
  return absl::StrJoin(written, " ");
}

absl::string_view TopologyName(Topology topology) {
  switch (topology) {
    case Topology::kFailover:
      return "failover";
    case Topology::kFlex:
      return "flex";
  }
  return "failover";
}

absl::Status ValidateServiceName(absl::string_view name) {
  const bool lowercase = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
  if (!lowercase || !config::IsValidName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid service name ", config::QuoteForMessage(name),
        ": use 1-63 lowercase letters, digits, '-' and '.', starting with a letter or "
        "digit, without \"..\""));
  }
  for (absl::string_view reserved : kReservedNames) {
    if (name == reserved) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid service name \"", name,
                       "\": daemon, node and svc are om's own commands"));
    }
  }
  return absl::OkStatus();
}

std::string ServiceConfigPath(absl::string_view root, absl::string_view name) {
  return absl::StrCat(EtcDirectory(root), "/", name, ".conf");
}

absl::StatusOr<ServiceConfig> ParseServiceConfig(absl::string_view name,
                                                 absl::string_view text,
                                                 absl::string_view default_node) {
  if (absl::Status valid = ValidateServiceName(name); !valid.ok()) return valid;
  absl::StatusOr<config::IniFile> ini = config::IniFile::Parse(text);
  if (!ini.ok()) return ini.status();
  ServiceConfig service;
  service.name = std::string(name);
  std::optional<std::string> nodes = ini->Get(kDefaultSection, "nodes");
  if (nodes.has_value()) {
    absl::StatusOr<std::vector<std::string>> parsed = ParseNodes(*nodes);
    if (!parsed.ok()) return parsed.status();
    service.nodes = *std::move(parsed);
  } else {
    if (absl::Status valid = config::ValidateName("node name", default_node); !valid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("[DEFAULT] has no nodes, and this node's name is not valid: ",
                       valid.message()));
    }
    service.nodes = {std::string(default_node)};
  }
  std::map<int, Resource> resources;
  for (const std::string& section : ini->SectionNames()) {
    if (section == kDefaultSection) {
      for (const auto& [key, value] : ini->Entries(section)) {
        if (key == "nodes") continue;
        if (key != "topology") return UnknownKey(section, key, "nodes and topology");
        if (value == "failover") {
          service.topology = Topology::kFailover;
        } else if (value == "flex") {
          service.topology = Topology::kFlex;
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat("[DEFAULT] topology: ", config::QuoteForMessage(value),
                           " is not failover or flex"));
        }
      }
      continue;
    }
    std::optional<int> number = ResourceNumber(section);
    if (!number.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[", config::EscapeForMessage(section), "]: ",
          absl::StrContains(section, '#') ? "unknown resource type"
                                          : "unknown section",
          ": a service has [DEFAULT] and resources [app#N], N a positive number"));
    }
    Resource resource;
    if (absl::Status parsed = ParseResource(*ini, section, &resource); !parsed.ok()) {
      return parsed;
    }
    resources.emplace(*number, std::move(resource));
  }
  for (auto& [number, resource] : resources) service.resources.push_back(std::move(resource));
  return service;
}

absl::StatusOr<ServiceConfigFile> ReadServiceConfigFile(absl::string_view root,
                                                        absl::string_view name) {
  if (absl::Status valid = ValidateServiceName(name); !valid.ok()) return valid;
  const std::string path = ServiceConfigPath(root, name);
  // The time first: a change between the two makes the time older than the
  // text, never newer, so whoever compares times reads the file again.
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("service \"", name, "\" does not exist"));
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat ", path));
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }
  absl::StatusOr<std::string> text = config::ReadFileToString(path, config::IniFile::kMaxBytes);
  if (absl::IsNotFound(text.status())) {
    return absl::NotFoundError(absl::StrCat("service \"", name, "\" does not exist"));
  }
  if (!text.ok()) return text.status();
  return ServiceConfigFile{*std::move(text), absl::TimeFromTimespec(info.st_mtim)};
}

absl::StatusOr<ServiceConfig> LoadServiceConfig(absl::string_view root,
                                                absl::string_view name,
                                                absl::string_view default_node) {
  absl::StatusOr<ServiceConfigFile> file = ReadServiceConfigFile(root, name);
  if (!file.ok()) return file.status();
  absl::StatusOr<ServiceConfig> config = ParseServiceConfig(name, file->text, default_node);
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(ServiceConfigPath(root, name), ": ",
                                     config.status().message()));
  }
  return config;
}

absl::StatusOr<std::vector<std::string>> ListServices(absl::string_view root) {
  const std::string directory = EtcDirectory(root);
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return std::vector<std::string>();
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot list ", directory));
  }
  std::vector<std::string> names;
  while (const dirent* entry = readdir(dir)) {
    absl::string_view file = entry->d_name;
    if (!absl::ConsumeSuffix(&file, ".conf") || !ValidateServiceName(file).ok()) continue;
    struct stat info;
    const std::string path = absl::StrCat(directory, "/", entry->d_name);
    if (stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) continue;
    names.emplace_back(file);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status CreateService(absl::string_view root, absl::string_view name,
                           absl::string_view text, absl::string_view default_node) {
  absl::StatusOr<ServiceConfig> parsed = ParseServiceConfig(name, text, default_node);
  if (!parsed.ok()) return parsed.status();
  if (absl::Status made = config::MakeDirectories(EtcDirectory(root), 0755); !made.ok()) {
    return made;
  }
  absl::Status created =
      config::CreateFileAtomically(ServiceConfigPath(root, name), text, kConfigMode);
  if (absl::IsAlreadyExists(created)) {
    return absl::AlreadyExistsError(absl::StrCat("service \"", name, "\" already exists"));
  }
  return created;
}

absl::Status DeleteService(absl::string_view root, absl::string_view name) {
  if (absl::Status valid = ValidateServiceName(name); !valid.ok()) return valid;
  const std::string path = ServiceConfigPath(root, name);
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(absl::StrCat("service \"", name, "\" does not exist"));
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot remove ", path));
  }
  return absl::OkStatus();
}

}  // namespace omd::service

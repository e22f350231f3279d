#include "config/cluster_sections.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "config/quote.h"

namespace omd::config {
namespace {

constexpr absl::string_view kCluster = "cluster";
constexpr absl::string_view kAddressPrefix = "addr@";

// Applies `edit` to a copy of `ini`, and keeps it only if it all worked.
template <typename Edit>
absl::Status Transaction(IniFile& ini, Edit edit) {
  IniFile copy = ini;
  absl::Status status = edit(copy);
  if (status.ok()) ini = std::move(copy);
  return status;
}

// Sets every key of `values` in `section` (in key order, for a stable file) and
// removes the section's other keys, so that existing keys keep their place and
// comments.
absl::Status ReplaceSection(IniFile& ini, absl::string_view section,
                            const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : ini.Entries(section)) {
    if (values.count(key) == 0) ini.Remove(section, key);
  }
  for (const auto& [key, value] : values) {
    absl::Status set = ini.Set(section, key, value);
    if (!set.ok()) {
      // Never quotes the value: it may be the secret.
      return absl::InvalidArgumentError(absl::StrCat(
          "[", section, "] ", QuoteForMessage(key), " cannot be written: ", set.message()));
    }
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> Sorted(
    const google::protobuf::Map<std::string, std::string>& values) {
  return std::map<std::string, std::string>(values.begin(), values.end());
}

}  // namespace

bool IsClusterWideSection(absl::string_view name) {
  for (absl::string_view prefix : {"hb#", "stonith#", "pool#", "network#", "arbitrator#"}) {
    if (absl::StartsWith(name, prefix) && name.size() > prefix.size()) return true;
  }
  return false;
}

v1::JoinReply ClusterConfigOf(const IniFile& ini) {
  v1::JoinReply reply;
  for (const auto& [key, value] : ini.Entries(kCluster)) {
    (*reply.mutable_cluster()->mutable_values())[key] = value;
  }
  for (const std::string& section : ini.SectionNames()) {
    if (!IsClusterWideSection(section)) continue;
    v1::ConfigSection& out = (*reply.mutable_sections())[section];
    for (const auto& [key, value] : ini.Entries(section)) (*out.mutable_values())[key] = value;
  }
  return reply;
}

absl::Status TakeClusterConfig(const v1::JoinReply& reply, absl::string_view secret,
                               absl::string_view node_name, IniFile& ini) {
  auto nodes = reply.cluster().values().find("nodes");
  if (nodes == reply.cluster().values().end()) {
    return absl::InvalidArgumentError("the member's [cluster] section has no nodes");
  }
  const std::vector<std::string> listed =
      absl::StrSplit(nodes->second, ' ', absl::SkipWhitespace());
  if (std::find(listed.begin(), listed.end(), node_name) == listed.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the member's [cluster] nodes do not list this node, ", node_name));
  }
  for (const auto& [name, section] : reply.sections()) {
    if (!IsClusterWideSection(name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the member sent section ", QuoteForMessage(name),
          ", which is not a cluster-wide one (hb#*, stonith#*, pool#*, network#*, "
          "arbitrator#*)"));
    }
  }
  return Transaction(ini, [&](IniFile& edited) {
    std::map<std::string, std::string> cluster = Sorted(reply.cluster().values());
    cluster["secret"] = std::string(secret);
    absl::Status status = ReplaceSection(edited, kCluster, cluster);
    if (!status.ok()) return status;
    for (const std::string& section : edited.SectionNames()) {
      if (IsClusterWideSection(section)) edited.RemoveSection(section);
    }
    for (const auto& [name, section] : std::map<std::string, v1::ConfigSection>(
             reply.sections().begin(), reply.sections().end())) {
      status = ReplaceSection(edited, name, Sorted(section.values()));
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  });
}

absl::Status MakeStandalone(absl::string_view node_name, absl::string_view secret,
                            IniFile& ini) {
  return Transaction(ini, [&](IniFile& edited) {
    for (const auto& [key, value] : edited.Entries(kCluster)) {
      const bool others_address = absl::StartsWith(key, kAddressPrefix) &&
                                  key != absl::StrCat(kAddressPrefix, node_name);
      if (others_address || key == "key_generation" || key == "previous_secret" ||
          key == kNodesVersionKey) {
        edited.Remove(kCluster, key);
      }
    }
    for (const std::string& section : edited.SectionNames()) {
      if (IsClusterWideSection(section)) edited.RemoveSection(section);
    }
    absl::Status status = edited.Set(kCluster, "nodes", node_name);
    if (status.ok()) status = edited.Set(kCluster, "secret", secret);
    return status;
  });
}

}  // namespace omd::config

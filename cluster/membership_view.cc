#include "cluster/membership_view.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/cluster_sections.h"
#include "config/names.h"
#include "config/quote.h"

namespace omd::cluster {
namespace {

constexpr absl::string_view kCluster = "cluster";
constexpr absl::string_view kAddressPrefix = "addr@";
// host:port of the longest DNS name, with room for brackets and the port.
constexpr size_t kMaxAddressBytes = config::kMaxHostNameLength + 8;

void SortNodes(std::vector<std::string>& nodes) {
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
}

void DropStrangersAddresses(MembershipView& view) {
  for (auto it = view.addresses.begin(); it != view.addresses.end();) {
    it = view.Contains(it->first) ? std::next(it) : view.addresses.erase(it);
  }
}

template <typename Message>
MembershipView ViewFrom(const Message& message) {
  MembershipView view;
  view.nodes.assign(message.nodes().begin(), message.nodes().end());
  SortNodes(view.nodes);
  view.addresses.insert(message.addresses().begin(), message.addresses().end());
  view.version = message.nodes_version();
  return view;
}

template <typename Message>
void PutViewInto(const MembershipView& view, Message* message) {
  message->clear_nodes();
  for (const std::string& node : view.nodes) message->add_nodes(node);
  message->mutable_addresses()->clear();
  message->mutable_addresses()->insert(view.addresses.begin(), view.addresses.end());
  message->set_nodes_version(view.version);
}

}  // namespace

bool MembershipView::Contains(absl::string_view node) const {
  return std::binary_search(nodes.begin(), nodes.end(), node);
}

absl::StatusOr<MembershipView> ViewOf(const config::NodeConfig& config) {
  MembershipView view;
  view.nodes = config.cluster_nodes;
  SortNodes(view.nodes);
  for (const auto& [node, address] : config.node_addresses) {
    if (view.Contains(node)) view.addresses[node] = address;
  }
  if (std::optional<std::string> version = config.ini.Get(kCluster, config::kNodesVersionKey)) {
    if (!absl::SimpleAtoi(*version, &view.version)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[cluster] ", config::kNodesVersionKey, ": ", config::QuoteForMessage(*version),
          " is not a whole number"));
    }
  }
  return view;
}

absl::Status ValidatePeerAddress(absl::string_view what, absl::string_view address,
                                 std::string* normalized) {
  if (address.size() > kMaxAddressBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": longer than any host:port"));
  }
  absl::StatusOr<std::string> parsed = config::ParsePeerAddress(what, address);
  if (!parsed.ok()) return parsed.status();
  if (normalized != nullptr) *normalized = *std::move(parsed);
  return absl::OkStatus();
}

absl::Status ValidateView(const MembershipView& view) {
  if (view.nodes.empty()) return absl::InvalidArgumentError("a membership with no node");
  if (view.nodes.size() > kMaxMembers) {
    return absl::InvalidArgumentError(
        absl::StrCat("a membership of more than ", kMaxMembers, " nodes"));
  }
  std::set<absl::string_view> seen;
  for (const std::string& node : view.nodes) {
    absl::Status valid = config::ValidateName("node name", node);
    if (!valid.ok()) return valid;
    if (!seen.insert(node).second) {
      return absl::InvalidArgumentError(absl::StrCat("node ", node, " is listed twice"));
    }
  }
  for (const auto& [node, address] : view.addresses) {
    if (!view.Contains(node)) {
      return absl::InvalidArgumentError(
          absl::StrCat("an address for ", config::QuoteForMessage(node), ", not a member"));
    }
    absl::Status valid = ValidatePeerAddress(absl::StrCat(node, "'s address"), address, nullptr);
    if (!valid.ok()) return valid;
  }
  return absl::OkStatus();
}

MembershipView ViewFromLockReply(const v1::ClusterLockReply& reply) { return ViewFrom(reply); }
void PutView(const MembershipView& view, v1::ClusterLockReply* reply) { PutViewInto(view, reply); }
MembershipView ViewFromMembersRequest(const v1::SetClusterMembersRequest& request) {
  return ViewFrom(request);
}
void PutView(const MembershipView& view, v1::SetClusterMembersRequest* request) {
  PutViewInto(view, request);
}

MembershipView MergeViews(absl::Span<const MembershipView> views) {
  MembershipView merged;
  if (views.empty()) return merged;
  for (const MembershipView& view : views) merged.version = std::max(merged.version, view.version);
  for (const MembershipView& view : views) {
    if (view.version != merged.version) continue;
    merged.nodes.insert(merged.nodes.end(), view.nodes.begin(), view.nodes.end());
    for (const auto& [node, address] : view.addresses) merged.addresses.emplace(node, address);
  }
  SortNodes(merged.nodes);
  DropStrangersAddresses(merged);
  return merged;
}

MembershipView ApplyChange(const MembershipView& view, const MembershipChange& change) {
  MembershipView after = view;
  if (change.kind == MembershipChange::kJoin) {
    after.nodes.push_back(change.node);
    SortNodes(after.nodes);
    if (change.address.empty()) {
      after.addresses.erase(change.node);
    } else {
      after.addresses[change.node] = change.address;
    }
  } else {
    after.nodes.erase(std::remove(after.nodes.begin(), after.nodes.end(), change.node),
                      after.nodes.end());
    after.addresses.erase(change.node);
  }
  if (!after.SameMembers(view)) ++after.version;
  return after;
}

absl::Status WriteView(const MembershipView& view, config::IniFile& ini) {
  absl::Status status = ini.Set(kCluster, "nodes", absl::StrJoin(view.nodes, " "));
  if (!status.ok()) return status;
  status = ini.Set(kCluster, config::kNodesVersionKey, absl::StrCat(view.version));
  if (!status.ok()) return status;
  for (const auto& [key, value] : ini.Entries(kCluster)) {
    if (absl::StartsWith(key, kAddressPrefix) &&
        view.addresses.count(key.substr(kAddressPrefix.size())) == 0) {
      ini.Remove(kCluster, key);
    }
  }
  for (const auto& [node, address] : view.addresses) {
    const std::string key = absl::StrCat(kAddressPrefix, node);
    std::optional<std::string> current = ini.Get(kCluster, key);
    std::string written;
    if (current.has_value() && ValidatePeerAddress(key, *current, &written).ok() &&
        written == address) {
      continue;  // "10.0.0.2" is 10.0.0.2:1214: left as the person wrote it
    }
    status = ini.Set(kCluster, key, address);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace omd::cluster

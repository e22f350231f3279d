#include "server/gate.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "config/names.h"
#include "log/log.h"
#include "rpc/peer.h"

namespace omd::server {
namespace {

// Senders that claim an invalid name share one key per address: a forger cannot
// fill the blacklist by inventing names, and no raw name reaches a log line.
constexpr absl::string_view kInvalidNameSender = "<invalid>";

}  // namespace

Gate::Gate(Options options, std::shared_ptr<const ClusterView> view)
    : blacklist_(options.blacklist),
      replay_guard_(options.replay_guard),
      view_(std::move(view)) {}

void Gate::SetClusterView(std::shared_ptr<const ClusterView> view) {
  sync::MutexLock lock(&view_mutex_);
  view_ = std::move(view);
}

std::shared_ptr<const ClusterView> Gate::cluster_view() const {
  sync::MutexLock lock(&view_mutex_);
  return view_;
}

absl::Status Gate::Refuse(const Sender& sender, absl::string_view method_path,
                          absl::Status status) {
  const bool now_blocked = blacklist_.RecordInvalid(sender);
  OMD_LOG(WARNING, "refused %s from %s on %s: %s%s", sender.nodename, sender.address,
          method_path, status.ToString(),
          now_blocked ? "; sender blacklisted" : "");
  return status;
}

absl::StatusOr<AdmittedRequest> Gate::Admit(absl::string_view method_path,
                                            bool open_to_non_members,
                                            absl::string_view grpc_peer,
                                            const v1::Envelope& envelope) {
  const bool valid_name = config::IsValidName(envelope.nodename());
  Sender sender{valid_name ? envelope.nodename() : std::string(kInvalidNameSender),
                rpc::PeerAddress(grpc_peer)};
  if (blacklist_.IsBlocked(sender)) {
    return absl::PermissionDeniedError(
        absl::StrCat("sender ", sender.nodename, " at ", sender.address,
                     " is blacklisted after repeated invalid messages"));
  }
  std::shared_ptr<const ClusterView> view = cluster_view();
  if (!valid_name) {
    return Refuse(sender, method_path,
                  absl::PermissionDeniedError("invalid sender node name"));
  }
  if (!open_to_non_members && !view->nodes.contains(envelope.nodename())) {
    return Refuse(sender, method_path,
                  absl::PermissionDeniedError(absl::StrCat(
                      "node ", envelope.nodename(), " is not a member of the cluster")));
  }
  open_attempts_.fetch_add(1, std::memory_order_relaxed);
  absl::StatusOr<crypto::OpenedEnvelope> opened =
      view->codec->Open(crypto::Direction::kRequest, method_path, envelope);
  if (!opened.ok()) return Refuse(sender, method_path, opened.status());
  // Not counted: the envelope is authentic, and whoever replays it first (from any
  // address) must not make the genuine sender's copy count against it.
  absl::Status fresh =
      replay_guard_.Admit(opened->request_id, opened->sent_at, view->codec->Now());
  if (!fresh.ok()) return fresh;
  blacklist_.RecordValid(sender);
  return AdmittedRequest{Caller{std::move(sender.nodename), std::move(sender.address)},
                         *std::move(opened), std::move(view)};
}

absl::StatusOr<v1::Envelope> Gate::SealReply(const AdmittedRequest& request,
                                             absl::string_view method_path,
                                             absl::string_view payload) const {
  return request.view->codec->SealReply(method_path, request.envelope, payload);
}

}  // namespace omd::server

#include "server/gate.h"


#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "config/names.h"
#include "rpc/peer.h"

namespace omd::server {
namespace {

// From one flat buffer, whose size bounds every length the parser reads: parsed
// from a stream, a field that claims 64 MB in an 11-byte request makes protobuf
// reserve up to 50 MB first. A request is at most max_request_bytes anyway.
bool ParseEnvelope(const grpc::ByteBuffer& bytes, v1::Envelope* envelope) {
  std::vector<grpc::Slice> slices;
  if (!bytes.Dump(&slices).ok()) return false;
  if (slices.size() == 1) {
    return envelope->ParseFromArray(slices[0].begin(), static_cast<int>(slices[0].size()));
  }
  std::string flat;
  flat.reserve(bytes.Length());
  for (const grpc::Slice& slice : slices) {
    flat.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return envelope->ParseFromString(flat);
}

}  // namespace

Gate::Gate(Options options, std::shared_ptr<const ClusterView> view, Blacklist* blacklist,
           ReplayGuard* replay_guard, AddressBook* address_book,
           const net::PeerDirectory* directory)
    : options_(std::move(options)),
      blacklist_(blacklist),
      replay_guard_(replay_guard),
      address_book_(address_book),
      directory_(directory),
      refusals_(options_.refusals),
      view_(std::move(view)) {}

void Gate::SetClusterView(std::shared_ptr<const ClusterView> view) {
  sync::MutexLock lock(&view_mutex_);
  view_ = std::move(view);
}

std::shared_ptr<const ClusterView> Gate::cluster_view() const {
  sync::MutexLock lock(&view_mutex_);
  return view_;
}

size_t Gate::ClearBlacklist() {
  const size_t cleared = blacklist_->Clear();
  if (options_.on_blacklist_cleared) options_.on_blacklist_cleared();
  return cleared;
}

absl::StatusOr<Gate::Peer> Gate::ResolvePeer(absl::string_view grpc_peer) const {
  if (directory_ != nullptr) {
    if (std::optional<net::ConnectionInfo> info = directory_->Find(grpc_peer)) {
      return Peer{info->address, info->peer_class, info->control_channel, info->id};
    }
  }
  // A connection gRPC accepted itself (tests, benchmarks): "ipv4:10.0.0.7:51234".
  if (std::optional<net::IpAddress> address =
          net::IpAddress::Parse(rpc::PeerAddress(grpc_peer))) {
    return Peer{*address, address_book_->ClassOf(*address, absl::Now())};
  }
  return absl::PermissionDeniedError("the connection's source is unknown");
}

absl::Status Gate::Refuse(const Sender& sender, const Peer& peer, absl::Status status) {
  if (peer.control_channel) {  // never counted: the local operator's way in
    refusals_.Record(sender, status, absl::Now());
    return status;
  }
  const bool now_blocked = blacklist_->RecordInvalid(sender);
  refusals_.Record(sender, status, absl::Now());
  if (now_blocked && peer.peer_class == net::PeerClass::kOther && options_.on_source_banned) {
    options_.on_source_banned(sender.source);
  }
  return status;
}

bool Gate::IsBlocked(const Sender& sender, const Peer& peer) const {
  return !peer.control_channel && blacklist_->IsBlocked(sender);
}

absl::Status Gate::RefuseBlacklisted(const Sender& sender, const Peer& peer) {
  // Built once: this is the refusal a flood gets, message after message.
  static const absl::Status* const kBlacklisted = new absl::Status(
      absl::PermissionDeniedError("sender is blacklisted after repeated invalid messages"));
  refusals_.Record(sender, *kBlacklisted, absl::Now());
  if (peer.connection_id != 0 && options_.on_blacklisted_message) {
    options_.on_blacklisted_message(peer.connection_id);
  }
  return *kBlacklisted;
}

absl::StatusOr<AdmittedRequest> Gate::Admit(absl::string_view method_path,
                                            MethodAccess access,
                                            absl::string_view grpc_peer,
                                            const grpc::ByteBuffer& request) {
  absl::StatusOr<Peer> peer = ResolvePeer(grpc_peer);
  if (!peer.ok()) return peer.status();
  const net::IpAddress source = peer->address.SourceKey();

  v1::Envelope envelope;
  if (!ParseEnvelope(request, &envelope)) {
    Sender sender{"", source};
    if (IsBlocked(sender, *peer)) {
      return RefuseBlacklisted(sender, *peer);
    }
    return Refuse(sender, *peer, absl::InvalidArgumentError("request is not an omd.v1.Envelope"));
  }
  std::shared_ptr<const ClusterView> view = cluster_view();
  const bool valid_name = config::IsValidName(envelope.nodename());
  const bool member = valid_name && view->nodes.contains(envelope.nodename());
  Sender sender{member ? envelope.nodename() : std::string(), source};
  if (IsBlocked(sender, *peer)) return RefuseBlacklisted(sender, *peer);
  // An invalid name is refused on every method: it could reach a log line, a
  // reply's recipient, a path.
  if (!valid_name) {
    return Refuse(sender, *peer, absl::PermissionDeniedError("invalid sender node name"));
  }
  if (!member && !access.non_members) {
    // A valid name is safe to quote: letters, digits, '.', '-', '_'.
    return Refuse(sender, *peer,
                  absl::PermissionDeniedError(absl::StrCat(
                      "node ", envelope.nodename(), " is not a member of the cluster")));
  }
  if (envelope.recipient().empty() && !access.any_recipient) {
    return Refuse(sender, *peer,
                  absl::UnauthenticatedError(
                      "envelope names no recipient: only Identify may be sent to any node"));
  }
  open_attempts_.fetch_add(1, std::memory_order_relaxed);
  // A joiner's envelope (no cluster name, generation 0) opens only where
  // non-members are welcome: elsewhere it is "of another cluster".
  absl::StatusOr<crypto::OpenedEnvelope> opened = view->codec->Open(
      crypto::Direction::kRequest, method_path, envelope,
      access.non_members ? crypto::Joiners::kAccepted : crypto::Joiners::kRefused);
  if (!opened.ok()) return Refuse(sender, *peer, opened.status());

  // Authentic from here: nothing below counts against the sender.
  const absl::Time now = view->codec->Now();
  absl::Status fresh = view->codec->CheckSendTime(opened->sent_at);
  if (fresh.ok()) {
    fresh = replay_guard_->Admit(opened->request_id, opened->nodename, opened->sent_at,
                                 view->nodes.size());
  }
  if (!fresh.ok()) {
    refusals_.Record(sender, fresh, now);
    return fresh;
  }
  if (!peer->control_channel) blacklist_->RecordValid(sender);
  if (member && peer->peer_class != net::PeerClass::kLocal) {
    address_book_->LearnMember(peer->address, now);
  }
  return AdmittedRequest{
      Caller{opened->nodename, peer->address.ToString(), peer->control_channel},
      *std::move(opened), std::move(view)};
}

absl::StatusOr<v1::Envelope> Gate::SealReply(const AdmittedRequest& request,
                                             absl::string_view method_path,
                                             absl::string_view payload) const {
  return request.view->codec->SealReply(method_path, request.envelope, payload);
}

absl::StatusOr<v1::Envelope> Gate::SealStreamReply(const AdmittedRequest& request,
                                                   absl::string_view method_path,
                                                   absl::string_view payload,
                                                   uint64_t sequence) {
  return request.view->codec->SealStreamReply(method_path, request.envelope, payload,
                                              sequence);
}

}  // namespace omd::server

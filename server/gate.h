// The gate every Agent RPC passes before its handler.
//
// In order, for a request on a connection from source S (net/address.h):
// 1. The bytes must parse as an Envelope. If not, the sender is "non-member at S".
// 2. The sender is the claimed node name at S if that name is in cluster.nodes,
//    else "non-member at S" (server/blacklist.h). A blacklisted sender is refused,
//    PERMISSION_DENIED, before any key derivation or decryption, and is only
//    counted: no log line per message. Its connection is then held back
//    (Options::on_blacklisted_message), so its next messages cost nothing a while.
// 3. An invalid name is refused, PERMISSION_DENIED; so is a non-member, except on
//    methods open to non-members (the `access` option: Identify, Join).
// 4. The recipient must be this node, except on methods open to any recipient
//    (Identify); then the envelope is opened. Any failure is UNAUTHENTICATED.
//    On methods open to non-members, a joiner's envelope (no cluster name, key
//    generation 0) is opened with the current secret (crypto/envelope.h).
// 5. Failures of 1 to 4 count as invalid messages of the sender; the threshold-th
//    in a row blacklists it, and if S is an outsider's source, its connections are
//    closed and new ones refused (server/address_book.h).
// 6. From here the envelope is authentic: refusals are not counted, since whoever
//    replays a genuine envelope first must not get its real sender blacklisted.
//    The send time must be within the clock skew, and the request id new
//    (server/replay_guard.h). UNAUTHENTICATED, or RESOURCE_EXHAUSTED past the
//    sender's share of the replay guard once it is half full.
// 7. Admitted: the sender's count is reset, and a member's source is learned.
// Refusals are logged as rate-limited summaries (server/refusal_log.h).
// Requests on the local control channel (a UNIX socket whose peers' uid the
// guard checked) go through the same steps, but are never counted nor refused as
// blacklisted: a forger cannot lock the local operator out.
//
// The gate does not know RPCs beyond their path; server/agent_service.h routes every
// method of the service descriptor through Admit, so none can skip it.
//
//   Gate gate(options, view, &blacklist, &replay_guard, &address_book, &directory);
//   absl::StatusOr<AdmittedRequest> admitted = gate.Admit(path, access, peer, bytes);
//   ... handler(admitted->caller, admitted->envelope.payload) ...
//   absl::StatusOr<v1::Envelope> reply = gate.SealReply(*admitted, path, reply_bytes);
#ifndef OMD_SERVER_GATE_H_
#define OMD_SERVER_GATE_H_

#include <grpcpp/support/byte_buffer.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/envelope.h"
#include "net/address.h"
#include "net/connection_guard.h"
#include "proto/omd.pb.h"
#include "server/address_book.h"
#include "server/blacklist.h"
#include "server/caller.h"
#include "server/refusal_log.h"
#include "server/replay_guard.h"
#include "sync/mutex.h"

namespace omd::server {

// The cluster as the gate checks it. Replaced whole (SetClusterView), never
// modified, so a request sees one consistent version from admission to its sealed
// reply.
struct ClusterView {
  absl::flat_hash_set<std::string> nodes;
  std::shared_ptr<const crypto::EnvelopeCodec> codec;
};

// A method's `(omd.v1.access)` option.
struct MethodAccess {
  bool non_members = false;
  bool any_recipient = false;
};

struct AdmittedRequest {
  Caller caller;
  crypto::OpenedEnvelope envelope;
  std::shared_ptr<const ClusterView> view;  // seals the reply
};

class Gate {
 public:
  struct Options {
    RefusalLog::Options refusals;
    // Called when a sender from an outsider's source gets blocked: its
    // connections should go.
    std::function<void(const net::IpAddress& source)> on_source_banned;
    // Called with the guard's connection id when a message on it is refused
    // because its sender is blacklisted: the connection should be held back
    // (net::ConnectionGuard::HoldBack), so that the sender's next messages cost
    // nothing for a while. Not called for connections gRPC accepted itself.
    std::function<void(uint64_t connection_id)> on_blacklisted_message;
    // Called when the blacklist is cleared (ClearBlacklist): held connections
    // should be read again at once.
    std::function<void()> on_blacklist_cleared;
  };

  // Everything pointed to must outlive the gate; `directory` may be null (calls
  // then name their peer as gRPC does, "ipv4:a.b.c.d:port").
  Gate(Options options, std::shared_ptr<const ClusterView> view, Blacklist* blacklist,
       ReplayGuard* replay_guard, AddressBook* address_book,
       const net::PeerDirectory* directory);

  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  // `grpc_peer` is ServerContext::peer(); `request` the call's raw message.
  absl::StatusOr<AdmittedRequest> Admit(absl::string_view method_path, MethodAccess access,
                                        absl::string_view grpc_peer,
                                        const grpc::ByteBuffer& request);

  absl::StatusOr<v1::Envelope> SealReply(const AdmittedRequest& request,
                                         absl::string_view method_path,
                                         absl::string_view payload) const;

  // The `sequence`-th reply (from 1) of a stream answering `request`. Static: a
  // stream's replies use only the view the request was admitted with, and may be
  // sealed from any thread, whatever becomes of the gate.
  static absl::StatusOr<v1::Envelope> SealStreamReply(const AdmittedRequest& request,
                                                      absl::string_view method_path,
                                                      absl::string_view payload,
                                                      uint64_t sequence);

  void SetClusterView(std::shared_ptr<const ClusterView> view);
  std::shared_ptr<const ClusterView> cluster_view() const;

  // Read only: a clear goes through ClearBlacklist, which also ends the holds.
  const Blacklist& blacklist() const { return *blacklist_; }
  // Clears the blacklist, then tells on_blacklist_cleared. Returns the number of
  // entries removed.
  size_t ClearBlacklist();
  RefusalLog& refusals() { return refusals_; }

  // Envelopes the gate tried to open: proves that dropped ones never were.
  int64_t open_attempts() const { return open_attempts_.load(std::memory_order_relaxed); }

 private:
  struct Peer {
    net::IpAddress address;
    net::PeerClass peer_class = net::PeerClass::kOther;
    bool control_channel = false;  // the local control socket: never blacklisted
    uint64_t connection_id = 0;    // the guard's; 0: a connection gRPC accepted
  };

  absl::StatusOr<Peer> ResolvePeer(absl::string_view grpc_peer) const;
  // Counts an invalid message of `sender` and logs it (rate-limited).
  absl::Status Refuse(const Sender& sender, const Peer& peer, absl::Status status);
  // Whether `sender`'s messages are dropped: never on the control channel.
  bool IsBlocked(const Sender& sender, const Peer& peer) const;
  // A blacklisted sender's message: not counted again, summed in the log.
  absl::Status RefuseBlacklisted(const Sender& sender, const Peer& peer);

  const Options options_;
  Blacklist* const blacklist_;
  ReplayGuard* const replay_guard_;
  AddressBook* const address_book_;
  const net::PeerDirectory* const directory_;
  RefusalLog refusals_;
  std::atomic<int64_t> open_attempts_{0};
  mutable sync::Mutex view_mutex_;
  std::shared_ptr<const ClusterView> view_ ABSL_GUARDED_BY(view_mutex_);
};

}  // namespace omd::server

#endif  // OMD_SERVER_GATE_H_

// The gate every Agent RPC passes before its handler: blacklist, membership,
// envelope, replay, in that order.
//
// 1. A blacklisted sender (node name + peer address) is refused, PERMISSION_DENIED,
//    before any key derivation or decryption.
// 2. A node name outside cluster.nodes is refused, PERMISSION_DENIED, except on
//    methods open to non-members (Join).
// 3. The envelope is opened and its request id admitted once; any failure is
//    UNAUTHENTICATED.
// 4. Failures of 2 and 3 count as invalid messages of that sender; the
//    `threshold`-th in a row blacklists it. An admitted message resets its count.
//
// The gate does not know RPCs beyond their path; server/agent_service.h routes every
// method of the service descriptor through Admit, so none can skip it.
//
//   Gate gate(options, view);
//   absl::StatusOr<AdmittedRequest> admitted = gate.Admit(path, false, peer, envelope);
//   ... handler(admitted->caller, admitted->envelope.payload) ...
//   absl::StatusOr<v1::Envelope> reply = gate.SealReply(*admitted, path, reply_bytes);
#ifndef OMD_SERVER_GATE_H_
#define OMD_SERVER_GATE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "crypto/envelope.h"
#include "crypto/replay_guard.h"
#include "proto/omd.pb.h"
#include "server/blacklist.h"
#include "server/caller.h"
#include "sync/mutex.h"

namespace omd::server {

// The cluster as the gate checks it. Replaced whole (SetClusterView), never
// modified, so a request sees one consistent version from admission to its sealed
// reply.
struct ClusterView {
  absl::flat_hash_set<std::string> nodes;
  std::shared_ptr<const crypto::EnvelopeCodec> codec;
};

struct AdmittedRequest {
  Caller caller;
  crypto::OpenedEnvelope envelope;
  std::shared_ptr<const ClusterView> view;  // seals the reply
};

class Gate {
 public:
  struct Options {
    Blacklist::Options blacklist;
    crypto::ReplayGuard::Options replay_guard;
  };

  Gate(Options options, std::shared_ptr<const ClusterView> view);

  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  absl::StatusOr<AdmittedRequest> Admit(absl::string_view method_path,
                                        bool open_to_non_members,
                                        absl::string_view grpc_peer,
                                        const v1::Envelope& envelope);

  absl::StatusOr<v1::Envelope> SealReply(const AdmittedRequest& request,
                                         absl::string_view method_path,
                                         absl::string_view payload) const;

  void SetClusterView(std::shared_ptr<const ClusterView> view);
  std::shared_ptr<const ClusterView> cluster_view() const;

  Blacklist& blacklist() { return blacklist_; }

  // Envelopes the gate tried to open: proves that dropped ones never were.
  int64_t open_attempts() const { return open_attempts_.load(std::memory_order_relaxed); }

 private:
  absl::Status Refuse(const Sender& sender, absl::string_view method_path,
                      absl::Status status);

  Blacklist blacklist_;
  crypto::ReplayGuard replay_guard_;
  std::atomic<int64_t> open_attempts_{0};
  mutable sync::Mutex view_mutex_;
  std::shared_ptr<const ClusterView> view_ ABSL_GUARDED_BY(view_mutex_);
};

}  // namespace omd::server

#endif  // OMD_SERVER_GATE_H_

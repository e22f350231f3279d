#include "server/listener_handlers.h"

#include "log/log.h"
#include "proto/omd.pb.h"

namespace omd::server {

absl::Status AddListenerHandlers(Gate* gate, DequeueRunner* dequeue_runner,
                                 HandlerRegistry* registry) {
  // The reply's sealed envelope names this node: that is the whole answer.
  absl::Status added = registry->AddUnary<v1::IdentifyRequest, v1::IdentifyReply>(
      "Identify", [](const Caller&, const v1::IdentifyRequest&)
                      -> absl::StatusOr<v1::IdentifyReply> { return v1::IdentifyReply(); });
  if (!added.ok()) return added;

  added = registry->AddUnary<v1::BlacklistStatusRequest, v1::BlacklistStatusReply>(
          "BlacklistStatus",
          [gate](const Caller&, const v1::BlacklistStatusRequest&)
              -> absl::StatusOr<v1::BlacklistStatusReply> {
            v1::BlacklistStatusReply reply;
            for (const BlacklistEntry& entry : gate->blacklist().Entries()) {
              v1::BlacklistEntry* out = reply.add_entries();
              out->set_nodename(entry.sender.nodename);
              out->set_address(entry.address);
              out->set_invalid_messages(entry.invalid_messages);
              out->set_blocked(entry.blocked);
            }
            return reply;
          });
  if (!added.ok()) return added;

  added = registry->AddUnary<v1::BlacklistClearRequest, v1::BlacklistClearReply>(
      "BlacklistClear",
      [gate](const Caller& caller,
             const v1::BlacklistClearRequest&) -> absl::StatusOr<v1::BlacklistClearReply> {
        v1::BlacklistClearReply reply;
        reply.set_cleared(static_cast<uint32_t>(gate->ClearBlacklist()));
        OMD_LOG(INFO, "blacklist cleared by %s at %s (%d entries)", caller.nodename,
                caller.address, reply.cleared());
        return reply;
      });
  if (!added.ok()) return added;

  return registry->AddUnary<v1::EmptyPacketRequest, v1::EmptyPacketReply>(
      "EmptyPacket",
      [dequeue_runner](const Caller&, const v1::EmptyPacketRequest&)
          -> absl::StatusOr<v1::EmptyPacketReply> {
        dequeue_runner->Trigger();  // never blocks: runs are coalesced in the background
        return v1::EmptyPacketReply();
      });
}

}  // namespace omd::server

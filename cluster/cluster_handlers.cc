#include "cluster/cluster_handlers.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "config/cluster_sections.h"
#include "proto/omd.pb.h"

namespace omd::cluster {

using server::Caller;
using server::HandlerRegistry;

absl::Status AddClusterHandlers(Membership* membership, HandlerRegistry* registry) {
  // The gate let the sender in without being a member: it has the secret.
  absl::Status added = registry->AddUnaryAsync<v1::JoinRequest, v1::JoinReply>(
      "Join", [membership](const Caller& caller, const v1::JoinRequest& request,
                           HandlerRegistry::Responder<v1::JoinReply> respond) {
        MembershipChange change{MembershipChange::kJoin, caller.nodename, ""};
        if (!request.address().empty()) {
          absl::Status valid =
              ValidatePeerAddress("JoinRequest.address", request.address(), &change.address);
          if (!valid.ok()) {
            respond(valid);
            return;
          }
        }
        membership->Submit(std::move(change), [respond = std::move(respond)](
                                                  absl::StatusOr<Membership::Outcome> outcome) {
          if (!outcome.ok()) {
            respond(outcome.status());
            return;
          }
          // The cluster's sections as this member has them now, the joiner in.
          v1::JoinReply reply = config::ClusterConfigOf(outcome->config.ini);
          for (const std::string& info : outcome->info) reply.add_info(info);
          respond(std::move(reply));
        });
      });
  if (!added.ok()) return added;

  added = registry->AddUnaryAsync<v1::LeaveRequest, v1::LeaveReply>(
      "Leave", [membership](const Caller& caller, const v1::LeaveRequest&,
                            HandlerRegistry::Responder<v1::LeaveReply> respond) {
        membership->Submit(
            {MembershipChange::kLeave, caller.nodename, ""},
            [respond = std::move(respond)](absl::StatusOr<Membership::Outcome> outcome) {
              if (!outcome.ok()) {
                respond(outcome.status());
                return;
              }
              v1::LeaveReply reply;
              for (const std::string& info : outcome->info) reply.add_info(info);
              respond(std::move(reply));
            });
      });
  if (!added.ok()) return added;

  added = registry->AddUnary<v1::ClusterLockRequest, v1::ClusterLockReply>(
      "ClusterLock", [membership](const Caller& caller, const v1::ClusterLockRequest& request) {
        return membership->HandleLock(caller.nodename, request);
      });
  if (!added.ok()) return added;

  return registry->AddUnary<v1::SetClusterMembersRequest, v1::SetClusterMembersReply>(
      "SetClusterMembers",
      [membership](const Caller& caller, const v1::SetClusterMembersRequest& request)
          -> absl::StatusOr<v1::SetClusterMembersReply> {
        absl::Status set = membership->HandleSetMembers(caller.nodename, request);
        if (!set.ok()) return set;
        return v1::SetClusterMembersReply();
      });
}

}  // namespace omd::cluster

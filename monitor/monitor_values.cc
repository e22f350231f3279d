#include "monitor/monitor_values.h"

#include <initializer_list>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/names.h"
#include "config/quote.h"

namespace omd::monitor {
namespace {

bool OneOf(absl::string_view value, std::initializer_list<absl::string_view> allowed) {
  for (absl::string_view candidate : allowed) {
    if (value == candidate) return true;
  }
  return false;
}

absl::Status CheckOneOf(absl::string_view what, absl::string_view value,
                        std::initializer_list<absl::string_view> allowed) {
  if (OneOf(value, allowed)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("invalid ", what, " ",
                                                 config::QuoteForMessage(value),
                                                 ": use ", absl::StrJoin(allowed, ", ")));
}

}  // namespace

bool IsTransientStatus(absl::string_view status) {
  return OneOf(status, {kStarting, kStopping, kRestarting});
}

absl::Status CheckServiceStatus(absl::string_view status) {
  if (IsTransientStatus(status)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "status ", config::QuoteForMessage(status),
        " is set by the monitor itself, while it acts: use idle, start failed, stop failed"));
  }
  return CheckOneOf("status", status, {kIdle, kStartFailed, kStopFailed});
}

absl::Status CheckServiceLocalExpect(absl::string_view local_expect) {
  return CheckOneOf("local_expect", local_expect, {kStarted, kStopped, kUnset});
}

absl::Status CheckGlobalExpect(absl::string_view global_expect) {
  const std::initializer_list<absl::string_view> kSupported = {
      kStarted, kStopped, kFrozen, kThawed, kUnset};
  if (OneOf(global_expect, kSupported)) return absl::OkStatus();
  if (OneOf(global_expect, {"deleted", "purged", "provisioned", "unprovisioned",
                            "aborted", "placed", "shutdown", "scaled"}) ||
      (absl::StartsWith(global_expect, "placed@") &&
       config::IsValidName(global_expect.substr(7)))) {
    return absl::FailedPreconditionError(
        absl::StrCat("global_expect ", config::QuoteForMessage(global_expect),
                     " is not supported by this daemon yet: use ",
                     absl::StrJoin(kSupported, ", ")));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid global_expect ", config::QuoteForMessage(global_expect), ": use ",
      absl::StrJoin(kSupported, ", "),
      " (deleted, purged, provisioned, unprovisioned, aborted, placed, placed@<node>, "
      "shutdown and scaled are not supported yet)"));
}

absl::Status CheckNodeStatus(absl::string_view status) {
  return CheckOneOf("node status", status, {kIdle, kFreezing, kThawing});
}

absl::Status CheckNodeLocalExpect(absl::string_view local_expect) {
  return CheckOneOf("node local_expect", local_expect, {kThawed, kFrozen});
}

}  // namespace omd::monitor

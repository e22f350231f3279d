#include "client/service_action_check.h"

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "config/quote.h"

namespace omd::client {

absl::Status CheckServiceActionCommand(absl::Span<const Command> service_commands,
                                       absl::string_view svcname,
                                       absl::Span<const std::string> command) {
  const Command* found = nullptr;
  for (const Command& candidate : service_commands) {
    if (command.size() >= candidate.words.size() &&
        std::equal(candidate.words.begin(), candidate.words.end(), command.begin())) {
      found = &candidate;
      break;
    }
  }
  for (const std::string& argument : command) {
    if (!absl::StartsWith(argument, "-")) continue;
    absl::string_view option = argument;
    if (found != nullptr && absl::ConsumePrefix(&option, "--")) {
      const std::string name = CanonicalOptionName(option.substr(0, option.find('=')));
      if (!name.empty() && std::find(found->options.begin(), found->options.end(), name) !=
                               found->options.end()) {
        continue;
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "a service action may not use om's global flags: ", config::QuoteForMessage(argument),
        found == nullptr
            ? absl::StrCat(" (no option is known for om ", svcname, " ",
                           config::QuoteForMessage(command.front()), ")")
        : found->options.empty()
            ? absl::StrCat(" (om ", svcname, " ", absl::StrJoin(found->words, " "),
                           " has no options of its own)")
            : absl::StrCat(" (the options of om ", svcname, " ",
                           absl::StrJoin(found->words, " "), ": --",
                           absl::StrJoin(found->options, ", --"), ")")));
  }
  return absl::OkStatus();
}

}  // namespace omd::client

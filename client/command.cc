#include "client/command.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "config/quote.h"

namespace omd::client {

std::string CanonicalOptionName(absl::string_view name) {
  std::string canonical(name);
  std::replace(canonical.begin(), canonical.end(), '-', '_');
  return canonical;
}

absl::Status NoArguments(absl::Span<const std::string> arguments) {
  if (arguments.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unexpected argument ", config::QuoteForMessage(arguments.front())));
}

Command SimpleCommand(std::vector<std::string> words, std::string summary,
                      CommandResult (*run)(const CommandContext&)) {
  return Command{
      std::move(words), std::move(summary),
      [run](const CommandContext& context, absl::Span<const std::string> arguments) {
        if (absl::Status none = NoArguments(arguments); !none.ok()) {
          CommandResult result;
          result.status = std::move(none);
          return result;
        }
        return run(context);
      },
      /*options=*/{}};
}

}  // namespace omd::client

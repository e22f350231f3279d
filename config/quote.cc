#include "config/quote.h"

#include <cstddef>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace omd::config {

std::string EscapeForMessage(absl::string_view text) {
  constexpr size_t kMaxShownBytes = 80;
  if (text.size() <= kMaxShownBytes) return absl::CHexEscape(text);
  return absl::StrCat(absl::CHexEscape(text.substr(0, kMaxShownBytes)), "...");
}

std::string QuoteForMessage(absl::string_view text) {
  return absl::StrCat("\"", EscapeForMessage(text), "\"");
}

}  // namespace omd::config

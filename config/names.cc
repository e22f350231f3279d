#include "config/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "config/quote.h"

namespace omd::config {
namespace {

// Everything IsValidName checks except "..", so ValidateName can say which rule
// a name broke.
bool HasValidCharacters(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  if (!absl::ascii_isalnum(static_cast<unsigned char>(name.front()))) {
    return false;
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

bool IsValidName(absl::string_view name) {
  // The leading letter or digit already rules out "." and ".."; this also
  // rules out "a..b", which tools may read as a range or a parent reference.
  return HasValidCharacters(name) && !absl::StrContains(name, "..");
}

absl::Status ValidateName(absl::string_view what, absl::string_view name) {
  if (IsValidName(name)) return absl::OkStatus();
  if (HasValidCharacters(name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid ", what, " ",
                                                   QuoteForMessage(name),
                                                   ": \"..\" is not allowed"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid ", what, " ", QuoteForMessage(name),
      ": use 1-63 letters, digits, '.', '_' or '-', starting with a letter "
      "or digit"));
}

bool IsValidHostName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxHostNameLength) return false;
  bool last_all_digits = false;
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty() || label.size() > kMaxNameLength) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    last_all_digits = true;
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) last_all_digits = false;
    }
  }
  return !last_all_digits;
}

}  // namespace omd::config

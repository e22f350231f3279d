// Untrusted text (names, keys, values read from a file) made safe to show in an
// error message or a log line.
//
//   return absl::InvalidArgumentError(
//       absl::StrCat("[listener] port: ", QuoteForMessage(value),
//                    " is not a port number"));
//
// Never pass a secret: these functions disguise nothing.
#ifndef OMD_CONFIG_QUOTE_H_
#define OMD_CONFIG_QUOTE_H_

#include <string>

#include "absl/strings/string_view.h"

namespace omd::config {

// `text` with control characters, quotes and backslashes C-escaped, so it
// cannot forge a log line, and cut to its first 80 bytes followed by "...", so
// a huge input does not make a huge message.
std::string EscapeForMessage(absl::string_view text);

// EscapeForMessage(text) between double quotes.
std::string QuoteForMessage(absl::string_view text);

}  // namespace omd::config

#endif  // OMD_CONFIG_QUOTE_H_

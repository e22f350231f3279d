// Validation of node, service and cluster names, and of host names.
//
// These names end up in file paths, process arguments and log lines, so they
// are restricted to a small, shell- and path-safe alphabet:
//
//   if (!IsValidName(name)) { ... }
//   absl::Status status = ValidateName("node name", name);
//   // INVALID_ARGUMENT: invalid node name "a/b": use 1-63 letters, digits, ...
//   if (!IsValidHostName("n2.example.com")) { ... }
#ifndef OMD_CONFIG_NAMES_H_
#define OMD_CONFIG_NAMES_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace omd::config {

// The longest valid name: a DNS label, so a name can also be a host name.
inline constexpr size_t kMaxNameLength = 63;

// True if `name` is 1 to 63 characters of [A-Za-z0-9._-], starts with a letter
// or digit and contains no "..".
bool IsValidName(absl::string_view name);

// OK if IsValidName(name), else INVALID_ARGUMENT naming `what` (e.g. "node
// name") and quoting `name` (non-printable characters escaped, long names cut
// short).
absl::Status ValidateName(absl::string_view what, absl::string_view name);

// The longest DNS name, without a trailing dot (RFC 1035).
inline constexpr size_t kMaxHostNameLength = 253;

// True if `name` is a DNS host name (RFC 1123): at most 253 characters of
// dot-separated labels, each 1 to 63 letters, digits or '-', not starting or
// ending with '-'. The last label must not be all digits, so that a mistyped
// IPv4 address ("10.0.0.256") is not taken for a name.
bool IsValidHostName(absl::string_view name);

}  // namespace omd::config

#endif  // OMD_CONFIG_NAMES_H_

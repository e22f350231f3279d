#include "rpc/peer.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace omd::rpc {

std::string PeerAddress(absl::string_view peer) {
  absl::string_view rest = peer;
  if (absl::ConsumePrefix(&rest, "ipv4:")) {
    const size_t colon = rest.rfind(':');
    return std::string(colon == absl::string_view::npos ? rest : rest.substr(0, colon));
  }
  if (absl::ConsumePrefix(&rest, "ipv6:")) {
    // gRPC 1.48+ percent-encodes the brackets: "ipv6:%5B::1%5D:51234".
    const std::string decoded =
        absl::StrReplaceAll(rest, {{"%5B", "["}, {"%5D", "]"}, {"%25", "%"}});
    absl::string_view address = decoded;
    if (absl::ConsumePrefix(&address, "[")) {
      const size_t close = address.find(']');
      if (close != absl::string_view::npos) address = address.substr(0, close);
    }
    // An IPv4 peer of a dual-stack listener is the same sender as over IPv4.
    absl::ConsumePrefix(&address, "::ffff:");
    return std::string(address);
  }
  return std::string(peer);
}

std::string JoinHostPort(absl::string_view host, int port) {
  return absl::StrContains(host, ':') ? absl::StrCat("[", host, "]:", port)
                                      : absl::StrCat(host, ":", port);
}

absl::StatusOr<HostPort> SplitHostPort(absl::string_view text, int default_port) {
  HostPort split;
  absl::string_view port;
  bool has_port = false;
  if (absl::ConsumePrefix(&text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("'[' without ']'");
    }
    split.host = std::string(text.substr(0, close));
    absl::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (!absl::ConsumePrefix(&rest, ":")) {
        return absl::InvalidArgumentError("only \":port\" may follow ']'");
      }
      port = rest;
      has_port = true;
    }
  } else {
    const size_t colon = text.find(':');
    if (colon != absl::string_view::npos && text.find(':', colon + 1) == absl::string_view::npos) {
      split.host = std::string(text.substr(0, colon));
      port = text.substr(colon + 1);
      has_port = true;
    } else {
      split.host = std::string(text);  // no colon, or a bare IPv6 address
    }
  }
  if (split.host.empty()) return absl::InvalidArgumentError("empty host");
  if (!has_port) {
    split.port = default_port;
    return split;
  }
  // SimpleAtoi would take "+80" and " 80": a port is digits only.
  const bool digits = !port.empty() && port.size() <= 5 &&
                      std::all_of(port.begin(), port.end(), [](char c) {
                        return absl::ascii_isdigit(static_cast<unsigned char>(c));
                      });
  if (!digits || !absl::SimpleAtoi(port, &split.port) || split.port < 1 ||
      split.port > 65535) {
    return absl::InvalidArgumentError("the port is not a number from 1 to 65535");
  }
  return split;
}

}  // namespace omd::rpc

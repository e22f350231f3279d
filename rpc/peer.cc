#include "rpc/peer.h"

#include "absl/strings/match.h"
#include "absl/strings/strip.h"

namespace omd::rpc {

std::string PeerAddress(absl::string_view peer) {
  absl::string_view rest = peer;
  if (absl::ConsumePrefix(&rest, "ipv4:")) {
    const size_t colon = rest.rfind(':');
    return std::string(colon == absl::string_view::npos ? rest : rest.substr(0, colon));
  }
  if (absl::ConsumePrefix(&rest, "ipv6:")) {
    // Percent-encoded scope ids aside, the form is [address]:port.
    if (absl::ConsumePrefix(&rest, "[")) {
      const size_t close = rest.find(']');
      if (close != absl::string_view::npos) return std::string(rest.substr(0, close));
    }
    return std::string(rest);
  }
  return std::string(peer);
}

}  // namespace omd::rpc

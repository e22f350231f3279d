#include "rpc/peer.h"

#include "absl/strings/match.h"
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

}  // namespace omd::rpc

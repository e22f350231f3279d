// How a node seals and opens envelopes, from its node.conf: cluster name, node
// name, the current secret (which seals) and, during a rotation, the previous one
// (which still opens), and the clock-skew window.
#ifndef OMD_CONFIG_ENVELOPE_OPTIONS_H_
#define OMD_CONFIG_ENVELOPE_OPTIONS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "config/node_config.h"
#include "crypto/envelope.h"

namespace omd::config {

crypto::EnvelopeOptions EnvelopeOptionsFor(const NodeConfig& config);

// ROOT/var/listener.address: the address the daemon bound, recorded so that om can
// reach a daemon configured with port 0.
std::string ListenerAddressPath(absl::string_view root);

}  // namespace omd::config

#endif  // OMD_CONFIG_ENVELOPE_OPTIONS_H_

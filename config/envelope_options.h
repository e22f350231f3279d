// How a node seals and opens envelopes, from its node.conf: cluster name, node
// name, the current secret (which seals) and, during a rotation, the previous one
// (which still opens), and the clock-skew window.
#ifndef OMD_CONFIG_ENVELOPE_OPTIONS_H_
#define OMD_CONFIG_ENVELOPE_OPTIONS_H_

#include "config/node_config.h"
#include "crypto/envelope.h"

namespace omd::config {

crypto::EnvelopeOptions EnvelopeOptionsFor(const NodeConfig& config);

}  // namespace omd::config

#endif  // OMD_CONFIG_ENVELOPE_OPTIONS_H_

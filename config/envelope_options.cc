#include "config/envelope_options.h"

namespace omd::config {

crypto::EnvelopeOptions EnvelopeOptionsFor(const NodeConfig& config) {
  crypto::EnvelopeOptions options;
  options.cluster = config.cluster_name;
  options.nodename = config.node_name;
  options.secrets.push_back({config.key_generation, config.secret});
  if (!config.previous_secret.empty()) {
    options.secrets.push_back({config.key_generation - 1, config.previous_secret});
  }
  options.clock_skew = config.clock_skew;
  return options;
}

}  // namespace omd::config

// node_config_writer --root DIR --key K [--count N] [--padding BYTES]: a test's
// writer of DIR/etc/node.conf. Each round is one UpdateNodeConfig that adds one
// to [test] K and to [test] shared, and sets [test] padding to that many bytes,
// so that a write takes long enough to be interrupted. --count 0: until killed.
// Tests run several at once (no update may be lost) and kill -9 them at random
// moments (the file must stay complete).
#include <cstdio>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "config/ini.h"
#include "config/node_config.h"

ABSL_FLAG(std::string, root, "", "The node's root: ROOT/etc/node.conf.");
ABSL_FLAG(std::string, key, "counter", "The [test] key this writer counts in.");
ABSL_FLAG(int, count, 0, "Rounds to run; 0: until killed.");
ABSL_FLAG(int, padding, 0, "Bytes of [test] padding written each round.");

namespace {

absl::Status Increment(omd::config::IniFile& ini, const std::string& key) {
  int count = 0;
  if (std::optional<std::string> value = ini.Get("test", key)) {
    if (!absl::SimpleAtoi(*value, &count)) {
      return absl::DataLossError(absl::StrCat("[test] ", key, " is not a count"));
    }
  }
  return ini.Set("test", key, absl::StrCat(count + 1));
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string root = absl::GetFlag(FLAGS_root);
  const std::string key = absl::GetFlag(FLAGS_key);
  const int count = absl::GetFlag(FLAGS_count);
  for (int round = 0; count == 0 || round < count; ++round) {
    absl::StatusOr<omd::config::NodeConfig> config =
        omd::config::UpdateNodeConfig(root, [&](omd::config::IniFile& ini) {
          absl::Status status = Increment(ini, key);
          if (status.ok()) status = Increment(ini, "shared");
          if (status.ok() && absl::GetFlag(FLAGS_padding) > 0) {
            status = ini.Set("test", "padding",
                             std::string(absl::GetFlag(FLAGS_padding), 'a' + round % 26));
          }
          return status;
        });
    if (!config.ok()) {
      std::fprintf(stderr, "round %d: %s\n", round, config.status().ToString().c_str());
      return 1;
    }
  }
  return 0;
}

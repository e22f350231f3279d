// The om commands: each one's words, what it does, and how it runs.
//
//   const Command* command = FindCommand({"daemon", "blacklist", "status"}, &args);
//   CommandResult result = command->run(context, args);
#ifndef OMD_CLIENT_COMMANDS_H_
#define OMD_CLIENT_COMMANDS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/output.h"

namespace omd::client {

// What every command may use, from om's flags.
struct CommandContext {
  std::string root;       // the node's root: ROOT/etc/node.conf
  std::string server;     // "host:port" overriding node.conf's listener
  std::string server_node;  // the node name of that daemon, if known
  absl::Duration timeout;  // deadline of each call to the daemon
  std::string om_binary;  // this program, to run queued om commands
};

struct Command {
  std::vector<std::string> words;
  std::string summary;
  std::function<CommandResult(const CommandContext&, absl::Span<const std::string>)> run;
};

const std::vector<Command>& Commands();

// The command whose words start `argv`; the rest of argv goes to `arguments`.
// nullptr when none matches.
const Command* FindCommand(absl::Span<const std::string> argv,
                           std::vector<std::string>* arguments);

// "  daemon blacklist status    Counts of ..." lines, for --help and errors.
std::string CommandList();

}  // namespace omd::client

#endif  // OMD_CLIENT_COMMANDS_H_

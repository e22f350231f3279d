// The om commands: each one's words, what it does, and how it runs.
//
//   const Command* command = FindCommand({"daemon", "blacklist", "status"}, &args);
//   CommandResult result = command->run(context, args);
#ifndef OMD_CLIENT_COMMANDS_H_
#define OMD_CLIENT_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "client/command.h"

namespace omd::client {

const std::vector<Command>& Commands();

// The command of `commands` (default: Commands()) whose words start `argv`; the
// rest of argv goes to `arguments`. nullptr when none matches.
const Command* FindCommand(absl::Span<const std::string> argv,
                           std::vector<std::string>* arguments);
const Command* FindCommand(absl::Span<const Command> commands,
                           absl::Span<const std::string> argv,
                           std::vector<std::string>* arguments);

// Whether argv is `om <svcname> <words...>` (client/service_commands.h): its
// first word is no first word of Commands() (daemon, node, svc).
bool IsServiceCommandLine(absl::Span<const std::string> argv);

// Whether `action`, the arguments of a queued action, may be run as
// `om --root ROOT <action...>` (DequeueOptions::check_action): it must start
// with the words of one of `commands` (default: Commands()), and every later
// argument that starts with "-" must be --NAME or --NAME=VALUE for one of that
// command's own `options`. Anything else that starts with "-" would be parsed as
// one of om's global flags (--root, --server, --flagfile, --fromenv, --help...,
// in any spelling: -flagfile, --noX, or a bare "--" or "-"), so it is refused
// with INVALID_ARGUMENT, naming it quoted for a message.
absl::Status CheckQueuedAction(absl::Span<const std::string> action);
absl::Status CheckQueuedAction(absl::Span<const Command> commands,
                               absl::Span<const std::string> action);

// "  daemon blacklist status    Counts of ..." lines, for --help and errors; the
// service commands last, as "  om <svcname> start ...".
std::string CommandList();

}  // namespace omd::client

#endif  // OMD_CLIENT_COMMANDS_H_

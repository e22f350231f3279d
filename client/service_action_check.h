// What a daemon's ServiceAction may run: om's check of the arguments of
// `om --root ROOT <svcname> <command...>`, made in omd before anything runs
// (action::ActionRunner::Options::check_command). Apart from om's commands, so
// that omd links none of their flags.
//
//   absl::Status allowed = CheckServiceActionCommand(ServiceCommands(), "web", {"start"});
#ifndef OMD_CLIENT_SERVICE_ACTION_CHECK_H_
#define OMD_CLIENT_SERVICE_ACTION_CHECK_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/command.h"

namespace omd::client {

// Whether a daemon may run `om --root ROOT <svcname> <command...>` for a
// ServiceAction: an argument that starts with "-" must be --NAME or
// --NAME=VALUE for one of the own options of the command of `service_commands`
// that `command` starts with (the service commands' table, whose words follow
// `om <svcname>`). Anything else would be parsed as one of om's global flags
// (--root, --flagfile, ...): INVALID_ARGUMENT, quoting it. With no table, no
// argument may start with "-". An unknown command is om's to answer.
absl::Status CheckServiceActionCommand(absl::Span<const Command> service_commands,
                                       absl::string_view svcname,
                                       absl::Span<const std::string> command);

}  // namespace omd::client

#endif  // OMD_CLIENT_SERVICE_ACTION_CHECK_H_

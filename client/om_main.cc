// om: the omd command line. Talks to the daemon that ROOT/etc/node.conf describes,
// as the node that file names, with that file's secret.

#include <grpc/grpc.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/command.h"
#include "client/commands.h"
#include "client/output.h"
#include "client/service_commands.h"
#include "process/subprocess.h"

ABSL_FLAG(std::string, root, "./var/omd", "The node's root directory: ROOT/etc/node.conf.");
ABSL_FLAG(std::string, server, "",
          "Daemon address, host:port, instead of node.conf's [listener] addr and port.");
ABSL_FLAG(std::string, node, "",
          "Node name of the daemon called, bound into each request so that it cannot "
          "be replayed to another node. Without --server, that member's daemon, "
          "reached at node.conf's [cluster] addr@NAME (or NAME, port 1214). Default: "
          "this node without --server; any node with --server. For om daemon join: "
          "the member to join through, NAME (on port 1214) or HOST[:PORT]. For om "
          "<svcname> logs: that node's records only.");
ABSL_FLAG(std::string, output, "human",
          "human, or json: one document {\"status\": N, \"data\": ..., \"info\": [...], "
          "\"error\": [...]}; om <svcname> logs: one JSON record a line.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(15),
          "Deadline of each call to the daemon.");

namespace {

// How long om waits at exit for gRPC to finish tearing itself down (see below).
constexpr absl::Duration kGrpcTeardownWait = absl::Seconds(1);

// om's own reference on the gRPC library, taken before any gRPC object exists
// and released after the last one is gone, so that gRPC is shut down here, on
// the main thread, rather than behind om's back as it exits.
//
// Every gRPC object holds a reference (grpc_init); whoever releases the last one
// shuts gRPC down, which joins its executor and timer threads. Left to the
// channel's objects, that last release happens inside gRPC (in an ExecCtx, or on
// one of its threads), and there grpc_shutdown hands the teardown to a detached
// thread: main could return while that thread was still joining the executor
// threads, and ThreadSanitizer reported them as leaked (exit code 66, in 2 to 3
// runs in 40 of `om --server 127.0.0.1:1 ...`).
//
// Released by grpc_shutdown_blocking() on this thread, outside any gRPC code,
// om's reference is normally the last one and the teardown runs here, to the
// end. A failed connection can keep references a little longer: the
// subchannel's reconnection timer (100 ms for om, AgentClient::Options), or a
// connection attempt still handshaking until its own deadline. So om then waits,
// at most kGrpcTeardownWait, until grpc_is_initialized() is false: it takes the
// lock that the teardown holds throughout, so false means the teardown is over
// and gRPC's threads are joined (the detached thread that ran it is not one
// ThreadSanitizer counts). Past the wait, om exits with gRPC's threads still
// running, which ThreadSanitizer does not report (it reports finished threads
// that nobody joined); only a teardown that starts as om exits, a handshake
// reaching its deadline just then, could still be caught half-way.
class GrpcLibrary {
 public:
  GrpcLibrary() { grpc_init(); }
  GrpcLibrary(const GrpcLibrary&) = delete;
  GrpcLibrary& operator=(const GrpcLibrary&) = delete;
  ~GrpcLibrary() {
    grpc_shutdown_blocking();
    const absl::Time deadline = absl::Now() + kGrpcTeardownWait;
    while (grpc_is_initialized() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
};

int Run(const std::vector<std::string>& argv, const char* argv0) {
  omd::client::CommandResult result;
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output != "human" && output != "json") {
    result.status = absl::InvalidArgumentError(
        absl::StrCat("--output must be human or json, not \"", output, "\""));
  } else if (absl::GetFlag(FLAGS_timeout) <= absl::ZeroDuration()) {
    result.status = absl::InvalidArgumentError("--timeout must be positive");
  } else {
    omd::client::CommandContext context;
    context.root = absl::GetFlag(FLAGS_root);
    context.server = absl::GetFlag(FLAGS_server);
    context.server_node = absl::GetFlag(FLAGS_node);
    context.timeout = absl::GetFlag(FLAGS_timeout);
    context.output = output;
    context.om_binary = omd::process::CurrentExecutablePath();
    if (context.om_binary.empty()) context.om_binary = argv0;
    std::vector<std::string> arguments;
    const omd::client::Command* command = omd::client::FindCommand(argv, &arguments);
    if (command != nullptr) {
      result = command->run(context, arguments);
    } else if (omd::client::IsServiceCommandLine(argv)) {
      result = omd::client::RunServiceCommand(context, argv);
    } else {
      result.status = absl::InvalidArgumentError(absl::StrCat(
          argv.empty() ? "no command given"
                       : absl::StrCat("unknown command \"", absl::StrJoin(argv, " "), "\""),
          "; commands:\n", omd::client::CommandList()));
    }
  }
  if (result.streamed && result.status.ok()) {
    // Printed as it came.
  } else if (output == "json") {
    std::fputs(omd::client::RenderJsonDocument(result).c_str(), stdout);
  } else if (result.status.ok()) {
    std::fputs(omd::client::RenderText(result).c_str(), stdout);
    std::fputs(result.error_text.c_str(), stderr);
  } else {
    std::fprintf(stderr, "om: %s\n", result.status.ToString().c_str());
  }
  return omd::client::ExitStatus(result);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(absl::StrCat(
      "The omd command line.\n\nUsage: om [--root DIR] [--server HOST:PORT [--node NAME]] "
      "[--output human|json] <command...>\n       om [options] <svcname> <service command...>\n\nCommands:\n",
      omd::client::CommandList(),
      "\nExit status: 0 on success, else the gRPC status code (e.g. 16 "
      "UNAUTHENTICATED, 7 PERMISSION_DENIED, 14 UNAVAILABLE); a service command sent "
      "to another node (--node, sync) exits with the action's own exit code, or 1 "
      "if it had none (killed, timed out, never ran)."));
  // Options are Abseil flags, whose names cannot hold '-': --thread-id is
  // --thread_id (client/command.h).
  std::vector<std::string> canonical(argv, argv + argc);
  for (std::string& argument : canonical) {
    if (argument == "--") break;
    if (!absl::StartsWith(argument, "--")) continue;
    const size_t name_end = std::min(argument.find('='), argument.size());
    argument = absl::StrCat("--", omd::client::CanonicalOptionName(
                                      absl::string_view(argument).substr(2, name_end - 2)),
                            argument.substr(name_end));
  }
  std::vector<char*> canonical_argv;
  for (std::string& argument : canonical) canonical_argv.push_back(argument.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(canonical_argv.size()), canonical_argv.data());
  // Destroyed after Run's gRPC objects, before main returns.
  GrpcLibrary grpc_library;
  return Run(std::vector<std::string>(positional.begin() + 1, positional.end()), argv[0]);
}

#include "client/service_commands.h"

#include <signal.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/action_commands.h"
#include "client/daemon_call.h"
#include "client/logs_commands.h"
#include "client/monitor_commands.h"
#include "config/atomic_file.h"
#include "config/ini.h"
#include "config/node_config.h"
#include "config/quote.h"
#include "process/subprocess.h"
#include "proto/omd.pb.h"
#include "service/instance.h"
#include "service/service_config.h"
#include "service/service_log.h"

// The options of om <svcname> create; om flags, parsed by Abseil wherever they
// are on the command line.
ABSL_FLAG(std::optional<std::string>, config, std::nullopt,
          "For om <svcname> create: the service's configuration file to copy "
          "(instead of --nodes, --topology, --start...).");
ABSL_FLAG(std::optional<std::string>, nodes, std::nullopt,
          "For om <svcname> create: the nodes the service may run on, "
          "space-separated (default: this node).");
ABSL_FLAG(std::optional<std::string>, topology, std::nullopt,
          "For om <svcname> create: failover (default) or flex.");
ABSL_FLAG(std::optional<std::string>, start, std::nullopt,
          "For om <svcname> create: the start command of its resource app#1.");
ABSL_FLAG(std::optional<std::string>, stop, std::nullopt,
          "For om <svcname> create: the stop command of app#1.");
ABSL_FLAG(std::optional<std::string>, check, std::nullopt,
          "For om <svcname> create: the check command of app#1 (exit 0: up).");
ABSL_FLAG(std::optional<std::string>, restart, std::nullopt,
          "For om <svcname> create: restarts of app#1 the monitor may try, 0 to 100.");
ABSL_FLAG(std::optional<std::string>, resource_timeout, std::nullopt,
          "For om <svcname> create: the timeout of each command of app#1, 1s to 1h "
          "(default 60s).");

namespace omd::client {
namespace {

// Create's options, and the INI key each one sets ("" for --config).
struct CreateOption {
  const char* name;
  absl::Flag<std::optional<std::string>>* flag;
  const char* section;
  const char* key;
};

const std::vector<CreateOption>& CreateOptions() {
  static const std::vector<CreateOption>* const options = new std::vector<CreateOption>{
      {"config", &FLAGS_config, "", ""},
      {"nodes", &FLAGS_nodes, "DEFAULT", "nodes"},
      {"topology", &FLAGS_topology, "DEFAULT", "topology"},
      {"start", &FLAGS_start, "app#1", "start"},
      {"stop", &FLAGS_stop, "app#1", "stop"},
      {"check", &FLAGS_check, "app#1", "check"},
      {"restart", &FLAGS_restart, "app#1", "restart"},
      {"resource_timeout", &FLAGS_resource_timeout, "app#1", "timeout"},
  };
  return *options;
}

std::vector<std::string> CreateOptionNames() {
  std::vector<std::string> names;
  for (const CreateOption& option : CreateOptions()) names.push_back(option.name);
  return names;
}

CommandResult Failure(absl::Status status) {
  CommandResult result;
  result.status = std::move(status);
  return result;
}

// INVALID_ARGUMENT if an option of create is given to another command: silently
// ignoring it would hide a mistake.
absl::Status RefuseCreateOptions(const CommandContext& context, absl::string_view command) {
  for (const CreateOption& option : CreateOptions()) {
    if (absl::GetFlag(*option.flag).has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("--", option.name,
                                                     " is not an option of om ",
                                                     context.svcname, " ", command));
    }
  }
  return absl::OkStatus();
}

// This node's name, from node.conf.
absl::StatusOr<std::string> ThisNode(const CommandContext& context) {
  absl::StatusOr<config::NodeConfig> node = config::LoadNodeConfig(context.root);
  if (!node.ok()) {
    return absl::Status(node.status().code(),
                        absl::StrCat("cannot tell this node's name from its node.conf: ",
                                     node.status().message()));
  }
  return node->node_name;
}

// Whether om's flags name another node's daemon: --server, or --node other.
absl::StatusOr<bool> TargetsAnotherNode(const CommandContext& context) {
  if (!context.server.empty()) return true;
  if (context.server_node.empty()) return false;
  absl::StatusOr<std::string> node = ThisNode(context);
  if (!node.ok()) return node.status();
  return context.server_node != *node;
}

// Cancelled by SIGTERM or SIGINT during an action: its commands run in process
// groups of their own, which a signal to om's group would miss.
process::Cancellation* action_cancellation = nullptr;

void CancelAction(int) { action_cancellation->Cancel(); }  // async-signal-safe

const process::Cancellation* CancelOnSignals() {
  static process::Cancellation* const cancellation = new process::Cancellation();
  action_cancellation = cancellation;
  struct sigaction on_stop = {};
  on_stop.sa_handler = CancelAction;
  sigaction(SIGTERM, &on_stop, nullptr);
  sigaction(SIGINT, &on_stop, nullptr);
  return cancellation;
}

void AddInfo(CommandResult& result, std::string info) {
  absl::StrAppend(&result.text, info, "\n");
  result.info.push_back(std::move(info));
}

// Tells this node's daemon what the instance should now be. Its failure is not
// the action's: the action is done, only the monitor will not know.
void TellDaemon(const CommandContext& context, absl::string_view local_expect,
                CommandResult& result) {
  CommandContext local = context;
  local.server.clear();
  local.server_node.clear();
  v1::SetServiceMonitorRequest request;
  request.set_svcname(context.svcname);
  request.set_local_expect(std::string(local_expect));
  CommandResult call;
  absl::StatusOr<v1::SetServiceMonitorReply> reply =
      CallDaemon<v1::SetServiceMonitorReply>(local, "SetServiceMonitor", request, call);
  if (!reply.ok()) {
    AddInfo(result, absl::StrCat("the daemon was not told: its monitor will not keep ",
                                 context.svcname, " ", local_expect, " (",
                                 absl::StatusCodeToString(reply.status().code()), ": ",
                                 reply.status().message(), ")"));
    return;
  }
  for (const std::string& info : reply->info()) AddInfo(result, info);
}

// `--flag=value` for each of `command`'s options that is set, so that a command
// sent to another node keeps them (Abseil took them out of argv).
std::vector<std::string> OptionArguments(const Command& command) {
  std::vector<std::string> arguments;
  for (const std::string& name : command.options) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr || flag->CurrentValue() == flag->DefaultValue()) continue;
    arguments.push_back(absl::StrCat("--", name, "=", flag->CurrentValue()));
  }
  return arguments;
}

// The service file's text from create's options.
absl::StatusOr<std::string> ConfigFromOptions(absl::string_view node) {
  config::IniFile ini;
  for (const CreateOption& option : CreateOptions()) {
    if (*option.section == '\0') continue;
    std::optional<std::string> value = absl::GetFlag(*option.flag);
    if (std::string(option.key) == "nodes") {
      value = value.has_value()
                  ? absl::StrJoin(absl::StrSplit(*value, absl::ByAnyChar(" \t,"),
                                                 absl::SkipEmpty()),
                                  " ")
                  : std::string(node);
    }
    if (std::string(option.key) == "topology" && !value.has_value()) value = "failover";
    if (!value.has_value()) continue;
    if (absl::Status set = ini.Set(option.section, option.key, *value); !set.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--", option.name, ": ", set.message()));
    }
  }
  return ini.Serialize();
}

// "[app#1] timeout: ..." read as "--resource_timeout: ...".
absl::Status InTermsOfOptions(const absl::Status& status) {
  if (!absl::IsInvalidArgument(status)) return status;
  for (const CreateOption& option : CreateOptions()) {
    if (*option.section == '\0') continue;
    const std::string key = absl::StrCat("[", option.section, "] ", option.key);
    absl::string_view rest = status.message();
    if (absl::ConsumePrefix(&rest, key) && (absl::StartsWith(rest, ":") ||
                                            absl::StartsWith(rest, " "))) {
      return absl::InvalidArgumentError(absl::StrCat("--", option.name, rest));
    }
  }
  return status;
}

CommandResult Create(const CommandContext& context, absl::Span<const std::string> arguments) {
  if (absl::Status none = NoArguments(arguments); !none.ok()) return Failure(none);
  absl::StatusOr<std::string> node = ThisNode(context);
  if (!node.ok()) return Failure(node.status());
  const std::optional<std::string> file = absl::GetFlag(FLAGS_config);
  absl::Status created;
  if (file.has_value()) {
    for (const CreateOption& option : CreateOptions()) {
      if (*option.section != '\0' && absl::GetFlag(*option.flag).has_value()) {
        return Failure(absl::InvalidArgumentError(absl::StrCat(
            "--config and --", option.name,
            " cannot be used together: the file is the whole configuration")));
      }
    }
    absl::StatusOr<std::string> text =
        config::ReadFileToString(*file, config::IniFile::kMaxBytes);
    if (!text.ok()) {
      return Failure(absl::Status(text.status().code(),
                                  absl::StrCat("--config: ", text.status().message())));
    }
    created = service::CreateService(context.root, context.svcname, *text, *node);
    if (absl::IsInvalidArgument(created)) {
      created = absl::InvalidArgumentError(
          absl::StrCat(config::EscapeForMessage(*file), ": ", created.message()));
    }
  } else {
    absl::StatusOr<std::string> text = ConfigFromOptions(*node);
    if (!text.ok()) return Failure(text.status());
    created = InTermsOfOptions(
        service::CreateService(context.root, context.svcname, *text, *node));
  }
  if (!created.ok()) return Failure(created);
  CommandResult result;
  result.node = *node;
  const std::string path = service::ServiceConfigPath(context.root, context.svcname);
  (*result.data.mutable_struct_value()->mutable_fields())["path"].set_string_value(path);
  result.text = absl::StrCat("service \"", context.svcname, "\" created: ", path, "\n");
  return result;
}

CommandResult PrintConfig(const CommandContext& context,
                          absl::Span<const std::string> arguments) {
  if (absl::Status none = NoArguments(arguments); !none.ok()) return Failure(none);
  if (absl::Status refused = RefuseCreateOptions(context, "print config"); !refused.ok()) {
    return Failure(refused);
  }
  absl::StatusOr<service::ServiceConfigFile> file =
      service::ReadServiceConfigFile(context.root, context.svcname);
  if (!file.ok()) return Failure(file.status());
  CommandResult result;
  auto& fields = *result.data.mutable_struct_value()->mutable_fields();
  fields["config"].set_string_value(file->text);
  fields["mtime_unix_ms"].set_number_value(static_cast<double>(absl::ToUnixMillis(file->mtime)));
  // As it is, with no node heading it: `om web print config > web.conf` copies it.
  result.text = file->text;
  return result;
}

// What an action needs: this node, the service's configuration, its lock.
struct Prepared {
  std::string node;
  service::ServiceConfig config;
  std::optional<service::InstanceLock> lock;
};

absl::StatusOr<Prepared> Prepare(const CommandContext& context,
                                 absl::Span<const std::string> arguments,
                                 absl::string_view command, bool lock) {
  if (absl::Status none = NoArguments(arguments); !none.ok()) return none;
  if (absl::Status refused = RefuseCreateOptions(context, command); !refused.ok()) {
    return refused;
  }
  Prepared prepared;
  absl::StatusOr<std::string> node = ThisNode(context);
  if (!node.ok()) return node.status();
  prepared.node = *node;
  absl::StatusOr<service::ServiceConfig> config =
      service::LoadServiceConfig(context.root, context.svcname, *node);
  if (!config.ok()) return config.status();
  prepared.config = *std::move(config);
  if (lock) {
    absl::StatusOr<service::InstanceLock> held =
        service::InstanceLock::Acquire(context.root, context.svcname, context.timeout);
    if (!held.ok()) return held.status();
    prepared.lock.emplace(*std::move(held));
  }
  return prepared;
}

service::InstanceRunner RunnerPrinting(const CommandContext& context, CommandResult& result) {
  return service::InstanceRunner(
      {.root = context.root,
       .cancellation = CancelOnSignals(),
       .echo = [&result](service::LogLevel, absl::string_view line) {
         absl::StrAppend(&result.text, line, "\n");
       }});
}

CommandResult Start(const CommandContext& context, absl::Span<const std::string> arguments) {
  absl::StatusOr<Prepared> prepared = Prepare(context, arguments, "start", /*lock=*/true);
  if (!prepared.ok()) return Failure(prepared.status());
  const std::vector<std::string>& nodes = prepared->config.nodes;
  if (std::find(nodes.begin(), nodes.end(), prepared->node) == nodes.end()) {
    return Failure(absl::FailedPreconditionError(
        absl::StrCat("service \"", context.svcname, "\" does not run on ", prepared->node,
                     " (its nodes: ", absl::StrJoin(nodes, " "), ")")));
  }
  CommandResult result;
  result.node = prepared->node;
  result.status = RunnerPrinting(context, result).Start(prepared->config, *prepared->lock);
  if (!result.status.ok()) return result;
  TellDaemon(context, "started", result);
  return result;
}

CommandResult Stop(const CommandContext& context, absl::Span<const std::string> arguments) {
  absl::StatusOr<Prepared> prepared = Prepare(context, arguments, "stop", /*lock=*/true);
  if (!prepared.ok()) return Failure(prepared.status());
  CommandResult result;
  result.node = prepared->node;
  // First, so that the monitor does not start it again meanwhile.
  TellDaemon(context, "stopped", result);
  result.status = RunnerPrinting(context, result).Stop(prepared->config, *prepared->lock);
  return result;
}

google::protobuf::Value StringValue(absl::string_view text) {
  google::protobuf::Value value;
  value.set_string_value(std::string(text));
  return value;
}

CommandResult Status(const CommandContext& context, absl::Span<const std::string> arguments) {
  absl::StatusOr<Prepared> prepared = Prepare(context, arguments, "status", /*lock=*/false);
  if (!prepared.ok()) return Failure(prepared.status());
  const service::InstanceStatus status =
      service::InstanceRunner({.root = context.root, .cancellation = CancelOnSignals()})
          .Check(prepared->config);
  CommandResult result;
  result.node = prepared->node;
  auto& fields = *result.data.mutable_struct_value()->mutable_fields();
  fields["avail"] = StringValue(service::AvailName(status.avail));
  auto& resources = *fields["resources"].mutable_list_value();
  result.text = absl::StrCat(context.svcname, ": ", service::AvailName(status.avail), "\n");
  for (const service::ResourceStatus& resource : status.resources) {
    auto& entry = *resources.add_values()->mutable_struct_value()->mutable_fields();
    entry["id"] = StringValue(resource.id);
    entry["avail"] = StringValue(service::AvailName(resource.avail));
    entry["detail"] = StringValue(resource.detail);
    absl::StrAppendFormat(&result.text, "  %-10s %-5s %s\n", resource.id,
                          service::AvailName(resource.avail), resource.detail);
  }
  return result;
}

CommandResult Delete(const CommandContext& context, absl::Span<const std::string> arguments) {
  absl::StatusOr<Prepared> prepared = Prepare(context, arguments, "delete", /*lock=*/true);
  if (!prepared.ok()) return Failure(prepared.status());
  // Under the lock, so that no action is running; refused while anything runs,
  // so that no resource is left running with nothing to stop it.
  const service::InstanceStatus status =
      service::InstanceRunner({.root = context.root, .cancellation = CancelOnSignals()})
          .Check(prepared->config);
  std::vector<std::string> up;
  for (const service::ResourceStatus& resource : status.resources) {
    if (resource.avail == service::Avail::kUp) up.push_back(resource.id);
  }
  if (!up.empty()) {
    return Failure(absl::FailedPreconditionError(
        absl::StrCat("service \"", context.svcname, "\" is up on ", prepared->node, " (",
                     absl::StrJoin(up, ", "), "): stop it first (om ", context.svcname,
                     " stop)")));
  }
  if (absl::Status deleted = service::DeleteService(context.root, context.svcname);
      !deleted.ok()) {
    return Failure(deleted);
  }
  service::ServiceLog(context.root, context.svcname)
      .Append(service::LogLevel::kInfo, "deleted")
      .IgnoreError();
  CommandResult result;
  result.node = prepared->node;
  result.text = absl::StrCat("service \"", context.svcname, "\" deleted\n");
  return result;
}

CommandResult ListServicesCommand(const CommandContext& context) {
  absl::StatusOr<std::string> node = ThisNode(context);
  if (!node.ok()) return Failure(node.status());
  absl::StatusOr<std::vector<std::string>> names = service::ListServices(context.root);
  if (!names.ok()) return Failure(names.status());
  CommandResult result;
  result.node = *node;
  auto& services = *result.data.mutable_struct_value()->mutable_fields();
  if (names->empty()) result.text = "No services.\n";
  else result.text = absl::StrFormat("%-24s %-9s %s\n", "NAME", "TOPOLOGY", "NODES");
  for (const std::string& name : *names) {
    auto& entry = *services[name].mutable_struct_value()->mutable_fields();
    absl::StatusOr<service::ServiceConfig> config =
        service::LoadServiceConfig(context.root, name, *node);
    if (!config.ok()) {
      // One bad file does not hide the others.
      entry["error"] = StringValue(config.status().message());
      absl::StrAppendFormat(&result.text, "%-24s invalid: %s\n", name,
                            config.status().message());
      continue;
    }
    entry["topology"] = StringValue(service::TopologyName(config->topology));
    auto& nodes = *entry["nodes"].mutable_list_value();
    for (const std::string& n : config->nodes) *nodes.add_values() = StringValue(n);
    absl::StrAppendFormat(&result.text, "%-24s %-9s %s\n", name,
                          service::TopologyName(config->topology),
                          absl::StrJoin(config->nodes, " "));
  }
  return result;
}

Command Local(std::vector<std::string> words, std::string summary,
              CommandResult (*run)(const CommandContext&, absl::Span<const std::string>),
              std::vector<std::string> options = {}) {
  Command command{std::move(words), std::move(summary), run, std::move(options)};
  command.runs_locally = true;
  return command;
}

}  // namespace

const std::vector<Command>& ServiceCommands() {
  static const std::vector<Command>* const commands = [] {
    auto* all = new std::vector<Command>{
        Local({"create"},
              "Create ROOT/etc/<svcname>.conf from --config FILE, or from --nodes, "
              "--topology, --start, --stop, --check, --restart, --resource-timeout "
              "(its resource app#1).",
              Create, CreateOptionNames()),
        Local({"print", "config"}, "The service's configuration file.", PrintConfig),
        Local({"delete"},
              "Remove the configuration file (refused while a resource is up here).", Delete),
        Local({"start"}, "Start each resource here, in order; the monitor keeps it started.",
              Start),
        Local({"stop"}, "Stop each resource here, in reverse order.", Stop),
        Local({"status"}, "Each resource's check here (up, down, n/a), and the instance's.",
              Status),
    };
    for (Command& command : ServiceMonitorCommands()) all->push_back(std::move(command));
    for (Command& command : LogsCommands()) all->push_back(std::move(command));
    return all;
  }();
  return *commands;
}

std::vector<Command> SvcCommands() {
  return {SimpleCommand({"svc", "ls"}, "The services of ROOT/etc: their topology and nodes.",
                        ListServicesCommand)};
}

std::string ServiceCommandList() {
  std::string list;
  for (const Command& command : ServiceCommands()) {
    absl::StrAppendFormat(&list, "  om %-26s %s\n",
                          absl::StrCat("<svcname> ", absl::StrJoin(command.words, " ")),
                          command.summary);
  }
  return list;
}

CommandResult RunServiceCommand(const CommandContext& context,
                                absl::Span<const std::string> argv) {
  if (argv.empty()) return Failure(absl::InvalidArgumentError("no command given"));
  if (absl::Status valid = service::ValidateServiceName(argv[0]); !valid.ok()) {
    return Failure(absl::InvalidArgumentError(absl::StrCat(
        "unknown command ", config::QuoteForMessage(absl::StrJoin(argv, " ")),
        ": not one of om's commands, nor a service's (", valid.message(), ")")));
  }
  CommandContext service_context = context;
  service_context.svcname = argv[0];
  const absl::Span<const std::string> words = argv.subspan(1);
  const Command* found = nullptr;
  for (const Command& command : ServiceCommands()) {
    if (words.size() >= command.words.size() &&
        std::equal(command.words.begin(), command.words.end(), words.begin())) {
      found = &command;
      break;
    }
  }
  if (found == nullptr || found->runs_locally) {
    absl::StatusOr<bool> remote = TargetsAnotherNode(context);
    if (!remote.ok()) return Failure(remote.status());
    if (*remote) {
      std::vector<std::string> command(words.begin(), words.end());
      if (found != nullptr) {
        for (std::string& option : OptionArguments(*found)) command.push_back(std::move(option));
      }
      return RunServiceActionRemotely(service_context, command);
    }
  }
  if (found == nullptr) {
    return Failure(absl::InvalidArgumentError(absl::StrCat(
        words.empty() ? absl::StrCat("unknown command \"", argv[0],
                                     "\" (as a service's name, it needs a service command "
                                     "after it)")
                      : absl::StrCat("unknown service command ",
                                     config::QuoteForMessage(absl::StrJoin(words, " "))),
        "; service commands:\n", ServiceCommandList())));
  }
  return found->run(service_context, words.subspan(found->words.size()));
}

}  // namespace omd::client

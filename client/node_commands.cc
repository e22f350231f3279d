#include "client/node_commands.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "config/atomic_file.h"
#include "config/ini.h"
#include "config/node_config.h"
#include "config/quote.h"
#include "posix/unique_fd.h"
#include "process/subprocess.h"

// The options of om node get|set|unset; om flags, parsed by Abseil wherever they
// are on the command line, as in queued actions (CheckQueuedAction).
ABSL_FLAG(std::optional<std::string>, param, std::nullopt,
          "For om node get|set|unset: the node.conf key, section.key (split at the "
          "first '.'), e.g. listener.port, cluster.addr@node2, hb#1.type.");
ABSL_FLAG(std::optional<std::string>, value, std::nullopt,
          "For om node set: the value of --param (--value= for an empty one).");

namespace omd::client {
namespace {

constexpr char kParamExample[] = "e.g. --param listener.port";

struct Param {
  std::string name;  // "listener.port", as given
  std::string section;
  std::string key;
};

CommandResult Failure(absl::Status status) {
  CommandResult result;
  result.status = std::move(status);
  return result;
}

// INVALID_ARGUMENT for --param or --value given to a command that has no use for
// it: silently ignoring it would hide a mistake.
absl::Status RefuseOptionsNotOf(absl::string_view command, bool takes_param,
                                bool takes_value) {
  const char* unused = nullptr;
  if (!takes_param && absl::GetFlag(FLAGS_param).has_value()) unused = "--param";
  if (!takes_value && absl::GetFlag(FLAGS_value).has_value()) unused = "--value";
  if (unused == nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(unused, " is not an option of om ", command));
}

// --param section.key, split at the first '.': a section may hold '#'
// (hb#1.type), a key '@' and '.' (cluster.addr@n2.example).
absl::StatusOr<Param> ParamFlag(absl::string_view command) {
  std::optional<std::string> param = absl::GetFlag(FLAGS_param);
  if (!param.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("om ", command, " needs --param section.key, ", kParamExample));
  }
  std::vector<std::string> parts = absl::StrSplit(*param, absl::MaxSplits('.', 1));
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--param ", config::QuoteForMessage(*param),
                     " is not section.key, ", kParamExample));
  }
  return Param{*param, std::move(parts[0]), std::move(parts[1])};
}

// The arguments every node command checks first: no words beyond its own, no
// option of another command, and --param (for get, set, unset).
absl::StatusOr<Param> CheckArguments(absl::string_view command,
                                     absl::Span<const std::string> arguments,
                                     bool takes_value) {
  absl::Status status = NoArguments(arguments);
  if (status.ok()) status = RefuseOptionsNotOf(command, /*takes_param=*/true, takes_value);
  if (!status.ok()) return status;
  return ParamFlag(command);
}

void SetChangeData(const Param& param, bool changed, CommandResult& result) {
  auto& fields = *result.data.mutable_struct_value()->mutable_fields();
  fields["param"].set_string_value(param.name);
  fields["changed"].set_bool_value(changed);
}

// Reads the file as INI only, without validating it: a key can be read even
// from a configuration that would not load.
CommandResult Get(const CommandContext& context, absl::Span<const std::string> arguments) {
  absl::StatusOr<Param> param = CheckArguments("node get", arguments, /*takes_value=*/false);
  if (!param.ok()) return Failure(param.status());
  const std::string path = config::NodeConfigPath(context.root);
  absl::StatusOr<std::string> text = config::ReadFileToString(path, config::IniFile::kMaxBytes);
  if (!text.ok()) return Failure(text.status());
  absl::StatusOr<config::IniFile> ini = config::IniFile::Parse(*text);
  if (!ini.ok()) {
    return Failure(absl::Status(ini.status().code(),
                                absl::StrCat(path, ": ", ini.status().message())));
  }
  std::optional<std::string> value = ini->Get(param->section, param->key);
  if (!value.has_value()) {
    return Failure(absl::NotFoundError(absl::StrCat(
        config::QuoteForMessage(param->name), " is not set in ", path, " (no key ",
        config::QuoteForMessage(param->key), " in [", config::EscapeForMessage(param->section),
        "])")));
  }
  CommandResult result;
  result.data.set_string_value(*value);
  result.text = absl::StrCat(*value, "\n");
  return result;
}

CommandResult Set(const CommandContext& context, absl::Span<const std::string> arguments) {
  absl::StatusOr<Param> param = CheckArguments("node set", arguments, /*takes_value=*/true);
  if (!param.ok()) return Failure(param.status());
  std::optional<std::string> value = absl::GetFlag(FLAGS_value);
  if (!value.has_value()) {
    return Failure(absl::InvalidArgumentError(
        "om node set needs --value (--value= to set an empty value)"));
  }
  bool changed = false;
  absl::StatusOr<config::NodeConfig> updated =
      config::UpdateNodeConfig(context.root, [&](config::IniFile& ini) {
        changed = ini.Get(param->section, param->key) != *value;
        return ini.Set(param->section, param->key, *value);
      });
  if (!updated.ok()) return Failure(updated.status());
  CommandResult result;
  SetChangeData(*param, changed, result);
  // Not the value: it may be the secret.
  result.text = absl::StrCat(param->name, changed ? " set" : " already had that value", "\n");
  return result;
}

CommandResult Unset(const CommandContext& context, absl::Span<const std::string> arguments) {
  absl::StatusOr<Param> param = CheckArguments("node unset", arguments, /*takes_value=*/false);
  if (!param.ok()) return Failure(param.status());
  bool changed = false;
  absl::StatusOr<config::NodeConfig> updated =
      config::UpdateNodeConfig(context.root, [&](config::IniFile& ini) {
        changed = ini.Remove(param->section, param->key);
        return absl::OkStatus();
      });
  if (!updated.ok()) return Failure(updated.status());
  CommandResult result;
  SetChangeData(*param, changed, result);
  result.text = absl::StrCat(param->name, changed ? " unset" : " was not set", "\n");
  return result;
}

// $EDITOR split into words, no shell involved (so no quoting either): "vi",
// "emacs -nw", "code --wait".
std::vector<std::string> EditorCommand() {
  const char* editor = getenv("EDITOR");
  std::vector<std::string> argv;
  if (editor != nullptr) argv = absl::StrSplit(editor, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (argv.empty()) argv = {"vi"};
  return argv;
}

// A private copy of node.conf for the editor, in ROOT/etc (mode 0700, as node.conf
// holds the secret), removed when this goes.
class EditCopy {
 public:
  static absl::StatusOr<EditCopy> Create(absl::string_view root, absl::string_view text) {
    EditCopy copy;
    copy.path_ = absl::StrCat(config::NodeConfigPath(root), ".edit-XXXXXX");
    // The name starts like node.conf's for the person who sees it; mkstemp
    // makes it with mode 0600 and O_EXCL.
    copy.path_.insert(copy.path_.rfind('/') + 1, ".");
    posix::UniqueFd fd(mkostemp(copy.path_.data(), O_CLOEXEC));
    if (!fd.is_open()) {
      absl::Status error = absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", copy.path_));
      copy.path_.clear();
      return error;
    }
    if (fchmod(fd.get(), 0600) < 0 || !WriteAll(fd.get(), text) || close(fd.Release()) < 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", copy.path_));
    }
    return copy;
  }

  EditCopy(EditCopy&& other) noexcept : path_(std::exchange(other.path_, "")) {}
  EditCopy& operator=(EditCopy&&) = delete;
  ~EditCopy() {
    if (!path_.empty()) unlink(path_.c_str());
  }

  const std::string& path() const { return path_; }

 private:
  EditCopy() = default;

  static bool WriteAll(int fd, absl::string_view data) {
    while (!data.empty()) {
      const ssize_t written = write(fd, data.data(), data.size());
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) return false;
      data.remove_prefix(static_cast<size_t>(written));
    }
    return true;
  }

  std::string path_;
};

CommandResult EditConfig(const CommandContext& context, absl::Span<const std::string> arguments) {
  absl::Status status = NoArguments(arguments);
  if (status.ok()) {
    status = RefuseOptionsNotOf("node edit config", /*takes_param=*/false, /*takes_value=*/false);
  }
  if (!status.ok()) return Failure(status);
  const std::string path = config::NodeConfigPath(context.root);
  absl::StatusOr<std::string> original = config::ReadFileToString(path, config::IniFile::kMaxBytes);
  if (!original.ok()) return Failure(original.status());
  absl::StatusOr<EditCopy> copy = EditCopy::Create(context.root, *original);
  if (!copy.ok()) return Failure(copy.status());

  std::vector<std::string> editor = EditorCommand();
  const std::string editor_name = absl::StrJoin(editor, " ");
  editor.push_back(copy->path());
  absl::StatusOr<process::ProcessResult> edited = process::RunAttached(editor);
  if (!edited.ok()) {
    return Failure(absl::Status(
        edited.status().code(),
        absl::StrCat("cannot run the editor ($EDITOR, default vi): ", edited.status().message(),
                     "; ", path, " is unchanged")));
  }
  if (edited->exit_code != 0) {
    return Failure(absl::AbortedError(absl::StrCat(
        "the editor (", config::EscapeForMessage(editor_name), ") ",
        edited->term_signal != 0 ? absl::StrCat("was killed by signal ", edited->term_signal)
                                 : absl::StrCat("exited with status ", edited->exit_code),
        ": ", path, " is unchanged")));
  }
  // By path: many editors write a new file and rename it over the old one.
  absl::StatusOr<std::string> text = config::ReadFileToString(copy->path(), config::IniFile::kMaxBytes);
  if (!text.ok()) {
    return Failure(absl::Status(text.status().code(),
                                absl::StrCat(text.status().message(), "; ", path, " is unchanged")));
  }
  CommandResult result;
  auto& fields = *result.data.mutable_struct_value()->mutable_fields();
  if (*text == *original) {
    fields["changed"].set_bool_value(false);
    result.text = absl::StrCat(path, " unchanged\n");
    return result;
  }
  absl::StatusOr<config::NodeConfig> installed =
      config::ReplaceNodeConfigIfUnchanged(context.root, *original, *text);
  if (!installed.ok()) {
    // Either node.conf changed meanwhile (ABORTED: the message says so), or the
    // copy would not load (the message names the key and what it allows).
    const bool raced = absl::IsAborted(installed.status());
    return Failure(absl::Status(
        installed.status().code(),
        absl::StrCat("the edited copy is not installed",
                     raced ? "" : absl::StrCat(", ", path, " is unchanged"), ": ",
                     installed.status().message(),
                     raced ? "; run om node edit config again" : "")));
  }
  fields["changed"].set_bool_value(true);
  result.text = absl::StrCat(path, " installed\n");
  return result;
}

}  // namespace

std::vector<Command> NodeCommands() {
  return {
      Command{{"node", "get"},
              "Print the value of --param section.key of node.conf (e.g. listener.port, "
              "cluster.addr@node2).",
              Get,
              {"param"}},
      Command{{"node", "set"},
              "Set --param section.key of node.conf to --value; refused, the file "
              "unchanged, if it would not load.",
              Set,
              {"param", "value"}},
      Command{{"node", "unset"},
              "Remove --param section.key from node.conf; refused, the file unchanged, "
              "if it would not load.",
              Unset,
              {"param"}},
      Command{{"node", "edit", "config"},
              "Edit a copy of node.conf with $EDITOR (default vi); installed if it "
              "loads and node.conf was not changed meanwhile.",
              EditConfig,
              {}},
  };
}

}  // namespace omd::client

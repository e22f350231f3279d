#include "monitor/monitor_store.h"

#include <dirent.h>
#include <errno.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "config/atomic_file.h"
#include "google/protobuf/util/json_util.h"
#include "log/log.h"
#include "service/service_config.h"

namespace omd::monitor {
namespace {

// A state file is a few hundred bytes per resource.
constexpr size_t kMaxStateBytes = 1 << 20;

std::string MonitorDirectory(absl::string_view root) {
  return absl::StrCat(root, "/var/monitor");
}

std::string ServicesDirectory(absl::string_view root) {
  return absl::StrCat(MonitorDirectory(root), "/services");
}

absl::Status Save(const std::string& directory, const std::string& path,
                  const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  if (auto printed = google::protobuf::util::MessageToJsonString(message, &json, options);
      !printed.ok()) {
    return absl::InternalError(absl::StrCat("cannot encode ", path, ": ", std::string(printed.message())));
  }
  if (absl::Status made = config::MakeDirectories(directory, 0700); !made.ok()) return made;
  return config::WriteFileAtomically(path, json, 0600);
}

absl::Status Load(const std::string& path, google::protobuf::Message* message) {
  absl::StatusOr<std::string> json = config::ReadFileToString(path, kMaxStateBytes);
  if (!json.ok()) return json.status();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // a newer daemon's state
  if (auto parsed = google::protobuf::util::JsonStringToMessage(*json, message, options);
      !parsed.ok()) {
    return absl::DataLossError(absl::StrCat(path, " does not read: ", std::string(parsed.message())));
  }
  return absl::OkStatus();
}

}  // namespace

MonitorStore::MonitorStore(std::string root) : root_(std::move(root)) {}

std::string MonitorStore::InstancePath(absl::string_view svcname) const {
  return absl::StrCat(ServicesDirectory(root_), "/", svcname, ".json");
}

absl::StatusOr<v1::NodeMonitor> MonitorStore::LoadNode() const {
  v1::NodeMonitor node;
  if (absl::Status loaded = Load(absl::StrCat(MonitorDirectory(root_), "/node.json"), &node);
      !loaded.ok()) {
    return loaded;
  }
  return node;
}

absl::Status MonitorStore::SaveNode(const v1::NodeMonitor& node) const {
  return Save(MonitorDirectory(root_), absl::StrCat(MonitorDirectory(root_), "/node.json"),
              node);
}

std::map<std::string, v1::InstanceMonitor> MonitorStore::LoadInstances() const {
  std::map<std::string, v1::InstanceMonitor> instances;
  const std::string directory = ServicesDirectory(root_);
  DIR* dir = opendir(directory.c_str());
  if (dir == nullptr) {
    if (errno != ENOENT) {
      OMD_LOG(WARNING, "cannot read %s: %s", directory, std::strerror(errno));
    }
    return instances;
  }
  while (const dirent* entry = readdir(dir)) {
    absl::string_view name = entry->d_name;
    if (!absl::ConsumeSuffix(&name, ".json")) continue;  // temporaries, . and ..
    if (!service::ValidateServiceName(name).ok()) continue;
    v1::InstanceMonitor instance;
    if (absl::Status loaded = Load(InstancePath(name), &instance); !loaded.ok()) {
      OMD_LOG(WARNING, "monitor state of %s: %s: starting afresh", name, loaded.ToString());
      continue;
    }
    instance.set_svcname(std::string(name));
    instances.emplace(std::string(name), std::move(instance));
  }
  closedir(dir);
  return instances;
}

absl::Status MonitorStore::SaveInstance(const v1::InstanceMonitor& instance) const {
  if (absl::Status valid = service::ValidateServiceName(instance.svcname()); !valid.ok()) {
    return valid;
  }
  return Save(ServicesDirectory(root_), InstancePath(instance.svcname()), instance);
}

absl::Status MonitorStore::RemoveInstance(absl::string_view svcname) const {
  if (absl::Status valid = service::ValidateServiceName(svcname); !valid.ok()) return valid;
  const std::string path = InstancePath(svcname);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat("cannot remove ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace omd::monitor

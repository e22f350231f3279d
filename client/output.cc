#include "client/output.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"

namespace omd::client {
namespace {

std::string RenderScalar(const google::protobuf::Value& value) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(value, &json).ok()) return "null";
  return json;
}

void Render(const google::protobuf::Value& value, std::string& out) {
  switch (value.kind_case()) {
    case google::protobuf::Value::kStructValue: {
      std::vector<const std::string*> keys;
      for (const auto& [key, unused] : value.struct_value().fields()) keys.push_back(&key);
      std::sort(keys.begin(), keys.end(),
                [](const std::string* a, const std::string* b) { return *a < *b; });
      out += "{";
      for (size_t i = 0; i < keys.size(); ++i) {
        if (i > 0) out += ", ";
        google::protobuf::Value key;
        key.set_string_value(*keys[i]);
        absl::StrAppend(&out, RenderScalar(key), ": ");
        Render(value.struct_value().fields().at(*keys[i]), out);
      }
      out += "}";
      return;
    }
    case google::protobuf::Value::kListValue: {
      out += "[";
      for (int i = 0; i < value.list_value().values_size(); ++i) {
        if (i > 0) out += ", ";
        Render(value.list_value().values(i), out);
      }
      out += "]";
      return;
    }
    case google::protobuf::Value::KIND_NOT_SET:
      out += "null";
      return;
    default:
      out += RenderScalar(value);
  }
}

google::protobuf::Value StringList(const std::vector<std::string>& items) {
  google::protobuf::Value list;
  for (const std::string& item : items) {
    list.mutable_list_value()->add_values()->set_string_value(item);
  }
  return list;
}

}  // namespace

google::protobuf::Value MessageToValue(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  google::protobuf::Value value;
  // Printing a message and parsing JSON into a Value cannot fail for a valid
  // message; an empty value says so if it ever did.
  if (google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    (void)google::protobuf::util::JsonStringToMessage(json, &value);
  }
  return value;
}

std::string RenderJson(const google::protobuf::Value& value) {
  std::string out;
  Render(value, out);
  return out;
}

int StatusNumber(const absl::Status& status) { return static_cast<int>(status.code()); }

int ExitStatus(const CommandResult& result) {
  return result.exit_code.value_or(StatusNumber(result.status));
}

std::string RenderJsonDocument(const CommandResult& result) {
  google::protobuf::Value document;
  auto& fields = *document.mutable_struct_value()->mutable_fields();
  fields["status"].set_number_value(ExitStatus(result));
  if (!result.node.empty()) fields["node"].set_string_value(result.node);
  if (result.data.kind_case() != google::protobuf::Value::KIND_NOT_SET) {
    fields["data"] = result.data;
  }
  if (!result.info.empty()) fields["info"] = StringList(result.info);
  if (!result.status.ok()) fields["error"] = StringList({result.status.ToString()});
  return RenderJson(document) + "\n";
}

std::string RenderText(const CommandResult& result) {
  if (result.node.empty() || result.exit_code.has_value()) return result.text;
  const size_t first_line_end = result.text.find('\n');
  const bool one_line =
      first_line_end == std::string::npos || first_line_end + 1 == result.text.size();
  return absl::StrCat(result.node, one_line ? ": " : ":\n", result.text);
}

}  // namespace omd::client

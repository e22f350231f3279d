// What om prints: one JSON document, {"status": <int>, "node": "<who answered>",
// "data": ..., "info": [...], "error": [...]}, or text for humans, headed by the
// node that answered.
//
// The JSON looks like the examples of OpenSVC's documentation, `{"data": {},
// "status": 0}`: keys sorted, ", " and ": " separators, on one line. Scalars are
// written by protobuf's JSON printer; only the layout is done here, because that
// printer has no sorted-keys option.
#ifndef OMD_CLIENT_OUTPUT_H_
#define OMD_CLIENT_OUTPUT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"

namespace omd::client {

// The outcome of one om command.
struct CommandResult {
  absl::Status status;
  std::string node;                // the node whose daemon answered, if one did
  google::protobuf::Value data;    // left out of the JSON when unset
  std::vector<std::string> info;
  std::string text;                // what a human reads on success
  // A command that ran elsewhere (a service action on another node's daemon):
  // om exits with its exit code, prints `text` (its stdout) as it is, not headed
  // by the node, and writes `error_text` (its stderr) to om's stderr.
  std::optional<int> exit_code;
  std::string error_text;
  // The command printed its output itself, as it came (om <svcname> logs): on
  // success, om prints nothing more.
  bool streamed = false;
};

std::string RenderJson(const google::protobuf::Value& value);

// A message as a JSON value, its fields under their proto names: a reply's data
// as it is (protobuf's JSON mapping; 64-bit integers are strings).
google::protobuf::Value MessageToValue(const google::protobuf::Message& message);

// The whole JSON document of a result, ending with a newline.
std::string RenderJsonDocument(const CommandResult& result);

// What a human reads on success: "node1: <text>", or "node1:" above a text of
// several lines.
std::string RenderText(const CommandResult& result);

// The status om exits with and reports: the canonical code, 0 on success.
int StatusNumber(const absl::Status& status);

// What om exits with, and the JSON document's "status": result.exit_code if
// set, else StatusNumber(result.status).
int ExitStatus(const CommandResult& result);

}  // namespace omd::client

#endif  // OMD_CLIENT_OUTPUT_H_

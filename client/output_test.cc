#include "client/output.h"

#include "gtest/gtest.h"

namespace omd::client {
namespace {

TEST(OutputTest, EmptyDataLooksLikeTheSpec) {
  CommandResult result;
  result.data.mutable_struct_value();
  EXPECT_EQ(RenderJsonDocument(result), "{\"data\": {}, \"status\": 0}\n");
}

TEST(OutputTest, KeysAreSortedAndNumbersIntegral) {
  CommandResult result;
  auto& fields = *result.data.mutable_struct_value()->mutable_fields();
  fields["node2@127.0.0.3"].set_number_value(5);
  fields["node1@127.0.0.2"].set_number_value(1);
  result.info = {"two senders"};
  EXPECT_EQ(RenderJsonDocument(result),
            "{\"data\": {\"node1@127.0.0.2\": 1, \"node2@127.0.0.3\": 5}, "
            "\"info\": [\"two senders\"], \"status\": 0}\n");
}

TEST(OutputTest, ErrorsCarryTheCodeAndMessage) {
  CommandResult result;
  result.status = absl::UnauthenticatedError("message authentication failed");
  EXPECT_EQ(RenderJsonDocument(result),
            "{\"error\": [\"UNAUTHENTICATED: message authentication failed\"], "
            "\"status\": 16}\n");
  EXPECT_EQ(StatusNumber(result.status), 16);
}

TEST(OutputTest, StringsAreEscaped) {
  google::protobuf::Value value;
  value.set_string_value("quote \" backslash \\ newline \n");
  EXPECT_EQ(RenderJson(value), "\"quote \\\" backslash \\\\ newline \\n\"");
  google::protobuf::Value list;
  list.mutable_list_value()->add_values()->set_bool_value(true);
  list.mutable_list_value()->add_values()->set_null_value(google::protobuf::NULL_VALUE);
  list.mutable_list_value()->add_values()->set_number_value(1.5);
  EXPECT_EQ(RenderJson(list), "[true, null, 1.5]");
}

// Which node answered is part of every reply's output.
TEST(OutputTest, TheAnsweringNodeIsShown) {
  CommandResult result;
  result.node = "node2";
  result.data.mutable_struct_value();
  result.text = "Blacklist cleared (0 senders).\n";
  EXPECT_EQ(RenderJsonDocument(result), "{\"data\": {}, \"node\": \"node2\", \"status\": 0}\n");
  EXPECT_EQ(RenderText(result), "node2: Blacklist cleared (0 senders).\n");
  result.text = "NODE ADDRESS\nnode3 127.0.0.3\n";
  EXPECT_EQ(RenderText(result), "node2:\nNODE ADDRESS\nnode3 127.0.0.3\n");
  result.node.clear();  // no daemon was asked (om node dequeue actions)
  EXPECT_EQ(RenderText(result), result.text);
}

// A command that ran elsewhere: its exit code is om's, its output is its own.
TEST(OutputTest, ARemoteCommandsExitCodeAndOutputAreItsOwn) {
  CommandResult result;
  result.node = "node2";
  result.text = "started\n";
  result.exit_code = 3;
  EXPECT_EQ(RenderText(result), "started\n");
  EXPECT_EQ(ExitStatus(result), 3);
  EXPECT_EQ(RenderJsonDocument(result), "{\"node\": \"node2\", \"status\": 3}\n");
  result.exit_code.reset();
  EXPECT_EQ(ExitStatus(result), 0);
  result.status = absl::UnavailableError("down");
  EXPECT_EQ(ExitStatus(result), 14);
}

}  // namespace
}  // namespace omd::client

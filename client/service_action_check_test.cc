#include "client/service_action_check.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::client {
namespace {

using ::testing::HasSubstr;

std::vector<Command> ServiceCommandsForTest() {
  Command start;
  start.words = {"start"};
  Command fix;
  fix.words = {"compliance", "fix"};
  fix.options = {"moduleset", "force"};
  return {start, fix};
}

TEST(ServiceActionCheckTest, PlainWordsPass) {
  EXPECT_TRUE(CheckServiceActionCommand({}, "web", {"start"}).ok());
  EXPECT_TRUE(CheckServiceActionCommand({}, "web", {"no-such-subcommand", "x"}).ok());
  EXPECT_TRUE(CheckServiceActionCommand(ServiceCommandsForTest(), "web",
                                        {"compliance", "fix", "--moduleset", "base"})
                  .ok());
  EXPECT_TRUE(CheckServiceActionCommand(ServiceCommandsForTest(), "web",
                                        {"compliance", "fix", "--moduleset=base", "--force"})
                  .ok());
}

TEST(ServiceActionCheckTest, OmsGlobalFlagsAreRefused) {
  const std::vector<std::vector<std::string>> refused = {
      {"--root", "/"},          {"start", "--root=/etc"}, {"start", "-flagfile=/tmp/f"},
      {"start", "--"},          {"start", "-"},           {"start", "--moduleset=x"},
      {"compliance", "fix", "--server", "h:1"}, {"compliance", "fix", "--nomoduleset"},
      {"x", "--helpfull"}};
  for (const std::vector<std::string>& command : refused) {
    absl::Status status = CheckServiceActionCommand(ServiceCommandsForTest(), "web", command);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << command.back();
    EXPECT_THAT(status.message(), HasSubstr("may not use om's global flags")) << status;
  }
  absl::Status status = CheckServiceActionCommand(ServiceCommandsForTest(), "web",
                                                  {"compliance", "fix", "--root=/"});
  EXPECT_THAT(status.message(), HasSubstr("--moduleset, --force")) << status;
  status = CheckServiceActionCommand({}, "web", {"start", "--root=/"});
  EXPECT_THAT(status.message(), HasSubstr("\"--root=/\"")) << status;
}

}  // namespace
}  // namespace omd::client

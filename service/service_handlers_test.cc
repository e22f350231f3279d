#include "service/service_handlers.h"

#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/omd.pb.h"
#include "server/handler_registry.h"
#include "service/service_config.h"

namespace omd::service {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<v1::GetServiceConfigReply> Call(const server::HandlerRegistry& registry,
                                               const std::string& svcname) {
  const server::HandlerRegistry::UnaryHandler* handler = registry.FindUnary("GetServiceConfig");
  if (handler == nullptr) return absl::InternalError("no handler");
  v1::GetServiceConfigRequest request;
  request.set_svcname(svcname);
  std::optional<absl::StatusOr<std::string>> answer;
  (*handler)(server::Caller{"node1", "127.0.0.1", true}, request.SerializeAsString(),
             [&](absl::StatusOr<std::string> reply) { answer = std::move(reply); });
  if (!answer.has_value()) return absl::InternalError("no answer");
  if (!answer->ok()) return answer->status();
  v1::GetServiceConfigReply reply;
  if (!reply.ParseFromString(**answer)) return absl::InternalError("bad reply");
  return reply;
}

TEST(ServiceHandlersTest, GetServiceConfig) {
  const std::string root = absl::StrCat(std::getenv("TEST_TMPDIR"), "/root-", getpid());
  const std::string text = "[DEFAULT]\nnodes = node1\n";
  ASSERT_TRUE(CreateService(root, "web", text, "node1").ok());
  server::HandlerRegistry registry;
  ASSERT_TRUE(AddServiceHandlers(root, &registry).ok());

  absl::StatusOr<v1::GetServiceConfigReply> reply = Call(registry, "web");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->config(), text);
  EXPECT_LE(std::abs(reply->mtime_unix_ms() - absl::ToUnixMillis(absl::Now())), 60000);
  EXPECT_EQ(reply->mtime_unix_ms(), absl::ToUnixMillis(ReadServiceConfigFile(root, "web")->mtime));

  absl::Status unknown = Call(registry, "db").status();
  EXPECT_TRUE(absl::IsNotFound(unknown)) << unknown;
  EXPECT_THAT(unknown.message(), HasSubstr("service \"db\" does not exist"));
  for (const char* bad : {"node", "../etc/node", "", "A"}) {
    absl::Status status = Call(registry, bad).status();
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << bad << ": " << status;
  }
}

}  // namespace
}  // namespace omd::service

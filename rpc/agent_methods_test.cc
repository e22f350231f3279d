#include "rpc/agent_methods.h"

#include "gtest/gtest.h"
#include "proto/omd.pb.h"

namespace omd::rpc {
namespace {

TEST(AgentMethodsTest, EveryMethodCarriesExistingMessages) {
  const google::protobuf::ServiceDescriptor& service = AgentService();
  EXPECT_EQ(service.full_name(), "omd.v1.Agent");
  for (int i = 0; i < service.method_count(); ++i) {
    const google::protobuf::MethodDescriptor& method = *service.method(i);
    const v1::Carries& carries = method.options().GetExtension(v1::carries);
    const google::protobuf::DescriptorPool& pool = *service.file()->pool();
    EXPECT_NE(pool.FindMessageTypeByName(carries.request()), nullptr) << method.name();
    EXPECT_NE(pool.FindMessageTypeByName(carries.reply()), nullptr) << method.name();
  }
}

TEST(AgentMethodsTest, FindsUnaryMethodsByTheirCarriedTypes) {
  absl::StatusOr<const google::protobuf::MethodDescriptor*> method = FindUnaryMethod(
      "BlacklistStatus", "omd.v1.BlacklistStatusRequest", "omd.v1.BlacklistStatusReply");
  ASSERT_TRUE(method.ok()) << method.status();
  EXPECT_EQ(MethodPath(**method), "/omd.v1.Agent/BlacklistStatus");
}

TEST(AgentMethodsTest, RefusesWhatDoesNotMatch) {
  EXPECT_EQ(FindUnaryMethod("Nope", "a", "b").status().message(), "no method Nope");
  EXPECT_EQ(FindUnaryMethod("ServiceLogs", "omd.v1.ServiceLogsRequest", "omd.v1.ServiceLogsReply")
                .status()
                .message(),
            "ServiceLogs is not unary");
  EXPECT_EQ(FindUnaryMethod("BlacklistStatus", "omd.v1.BlacklistClearRequest",
                            "omd.v1.BlacklistStatusReply")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AgentMethodsTest, FindsServerStreamMethodsByTheirCarriedTypes) {
  absl::StatusOr<const google::protobuf::MethodDescriptor*> method = FindServerStreamMethod(
      "ServiceLogs", "omd.v1.ServiceLogsRequest", "omd.v1.ServiceLogsReply");
  ASSERT_TRUE(method.ok()) << method.status();
  EXPECT_EQ(MethodPath(**method), "/omd.v1.Agent/ServiceLogs");
  EXPECT_EQ(FindServerStreamMethod("BlacklistStatus", "omd.v1.BlacklistStatusRequest",
                                   "omd.v1.BlacklistStatusReply")
                .status()
                .message(),
            "BlacklistStatus is not server-streaming");
  EXPECT_EQ(FindServerStreamMethod("ServiceLogs", "omd.v1.ServiceLogsRequest",
                                   "omd.v1.BlacklistStatusReply")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace omd::rpc

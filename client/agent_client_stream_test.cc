// Server streams and asynchronous unary calls end to end over real gRPC: a server
// with AgentService behind a real gate, registered handlers, and AgentClient's
// Stream and CallAsync.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "client/agent_client.h"
#include "gtest/gtest.h"
#include "proto/omd.pb.h"
#include "server/address_book.h"
#include "server/agent_service.h"
#include "server/blacklist.h"
#include "server/gate.h"
#include "server/handler_registry.h"
#include "server/replay_guard.h"
#include "sync/mutex.h"
#include "testing/eventually.h"

namespace omd::client {
namespace {

using server::Caller;
using server::ServerStream;
using v1::ServiceLogsReply;
using v1::ServiceLogsRequest;

constexpr char kSecret[] = "a-secret-of-sixteen-bytes-or-more";

crypto::EnvelopeOptions Identity(const std::string& node) {
  crypto::EnvelopeOptions identity;
  identity.cluster = "test";
  identity.nodename = node;
  identity.secrets = {{1, kSecret}};
  return identity;
}

ServiceLogsReply Line(int n) {
  ServiceLogsReply reply;
  reply.add_records()->set_message(absl::StrCat("line ", n));
  return reply;
}

// What a stream's reader saw, for the test thread.
struct Seen {
  sync::Mutex mutex;
  std::vector<std::string> messages ABSL_GUARDED_BY(mutex);
  bool done ABSL_GUARDED_BY(mutex) = false;
  absl::Status status ABSL_GUARDED_BY(mutex);

  size_t count() {
    sync::MutexLock lock(&mutex);
    return messages.size();
  }
  bool is_done() {
    sync::MutexLock lock(&mutex);
    return done;
  }
  absl::Status final_status() {
    sync::MutexLock lock(&mutex);
    return status;
  }
};

class StreamTest : public ::testing::Test {
 protected:
  // Starts node1's server with `registry`'s handlers.
  void Serve(std::function<void(server::HandlerRegistry&)> register_handlers) {
    register_handlers(registry_);
    replay_guard_ = server::ReplayGuard::Create({}).value();
    auto view = std::make_shared<server::ClusterView>();
    view->nodes = {"node1", "node2"};
    view->codec = std::make_shared<crypto::EnvelopeCodec>(Identity("node1"));
    server::Gate::Options options;
    options.refusals.write = [](absl::string_view) {};
    gate_ = std::make_unique<server::Gate>(options, view, &blacklist_, replay_guard_.get(),
                                           &book_, nullptr);
    service_ =
        server::AgentService::Create(gate_.get(), &registry_, &dispatched_, &open_streams_)
            .value();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  std::unique_ptr<AgentClient> Client(std::string recipient = "node1") {
    AgentClient::Options options;
    options.target = absl::StrCat("127.0.0.1:", port_);
    options.envelope = Identity("node2");
    options.recipient = std::move(recipient);
    options.reply_senders = {"node1", "node2"};
    return AgentClient::Create(std::move(options)).value();
  }

  // Reads `method` into `seen`, each message after `delay`.
  std::unique_ptr<StreamCall> Read(AgentClient& client, Seen* seen,
                                   absl::Duration delay = absl::ZeroDuration()) {
    absl::StatusOr<std::unique_ptr<StreamCall>> call = client.Stream<ServiceLogsReply>(
        "ServiceLogs", ServiceLogsRequest(),
        [seen, delay](const ServiceLogsReply& reply) {
          absl::SleepFor(delay);  // a slow reader, not an assertion
          sync::MutexLock lock(&seen->mutex);
          seen->messages.push_back(reply.records(0).message());
        },
        [seen](absl::Status status) {
          sync::MutexLock lock(&seen->mutex);
          EXPECT_FALSE(seen->done) << "on_done twice";
          seen->done = true;
          seen->status = status;
        });
    EXPECT_TRUE(call.ok()) << call.status();
    return call.ok() ? *std::move(call) : nullptr;
  }

  void TearDown() override {
    if (server_ != nullptr) {
      service_->FinishStreams(absl::UnavailableError("the test is over"));
      server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      server_->Wait();
    }
    for (std::thread& thread : threads_) thread.join();
  }

  server::HandlerRegistry registry_;
  server::Blacklist blacklist_{{}};
  server::AddressBook book_{{}, &blacklist_};
  std::unique_ptr<server::ReplayGuard> replay_guard_;
  std::unique_ptr<server::Gate> gate_;
  std::atomic<int64_t> dispatched_{0};
  std::atomic<int64_t> open_streams_{0};
  std::unique_ptr<server::AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::vector<std::thread> threads_;
};

TEST_F(StreamTest, RepliesWrittenFromAnotherThreadArriveInOrder) {
  constexpr int kReplies = 200;
  Serve([this](server::HandlerRegistry& registry) {
    ASSERT_TRUE((registry.AddServerStream<ServiceLogsRequest, ServiceLogsReply>(
                     "ServiceLogs",
                     [this](const Caller& caller, const ServiceLogsRequest&,
                            std::shared_ptr<ServerStream<ServiceLogsReply>> stream) {
                       EXPECT_EQ(caller.nodename, "node2");
                       threads_.emplace_back([stream] {
                         for (int i = 1; i <= kReplies; ++i) {
                           // Bounded queue: wait for room rather than lose a line.
                           while (!stream->Write(Line(i))) {
                             ASSERT_FALSE(stream->closed());
                             absl::SleepFor(absl::Milliseconds(1));
                           }
                         }
                         stream->Finish(absl::OkStatus());
                       });
                     },
                     /*max_queued=*/8))
                    .ok());
  });
  std::unique_ptr<AgentClient> client = Client();
  Seen seen;
  std::unique_ptr<StreamCall> call = Read(*client, &seen);
  ASSERT_TRUE(testing::Eventually([&] { return seen.is_done(); }, absl::Seconds(60)));
  EXPECT_TRUE(seen.final_status().ok()) << seen.final_status();
  sync::MutexLock lock(&seen.mutex);
  ASSERT_EQ(seen.messages.size(), static_cast<size_t>(kReplies));
  for (int i = 1; i <= kReplies; ++i) EXPECT_EQ(seen.messages[i - 1], absl::StrCat("line ", i));
  EXPECT_TRUE(testing::Eventually([&] { return open_streams_.load() == 0; }));
}

TEST_F(StreamTest, AHandlersErrorReachesOnDone) {
  Serve([](server::HandlerRegistry& registry) {
    ASSERT_TRUE((registry.AddServerStream<ServiceLogsRequest, ServiceLogsReply>(
                     "ServiceLogs", [](const Caller&, const ServiceLogsRequest&,
                                       std::shared_ptr<ServerStream<ServiceLogsReply>> stream) {
                       EXPECT_TRUE(stream->Write(Line(1)));
                       stream->Finish(absl::NotFoundError("no service svc1"));
                       EXPECT_FALSE(stream->Write(Line(2)));  // over
                     }))
                    .ok());
  });
  std::unique_ptr<AgentClient> client = Client();
  Seen seen;
  std::unique_ptr<StreamCall> call = Read(*client, &seen);
  ASSERT_TRUE(testing::Eventually([&] { return seen.is_done(); }));
  EXPECT_EQ(seen.final_status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(seen.final_status().message(), "no service svc1");
  EXPECT_EQ(seen.count(), 1u);  // the queued reply went out before the status
}

TEST_F(StreamTest, CancelClosesTheServersStreamPromptly) {
  std::shared_ptr<ServerStream<ServiceLogsReply>> held;
  sync::Mutex mutex;
  std::atomic<int> closed_calls{0};
  Serve([&](server::HandlerRegistry& registry) {
    ASSERT_TRUE((registry.AddServerStream<ServiceLogsRequest, ServiceLogsReply>(
                     "ServiceLogs", [&](const Caller& caller, const ServiceLogsRequest&,
                                        std::shared_ptr<ServerStream<ServiceLogsReply>> stream) {
                       EXPECT_EQ(caller.deadline, absl::InfiniteFuture());  // a follow
                       stream->OnClosed([&] { closed_calls.fetch_add(1); });
                       EXPECT_TRUE(stream->Write(Line(1)));
                       sync::MutexLock lock(&mutex);
                       held = stream;  // a follow: never finished by the handler
                     }))
                    .ok());
  });
  std::unique_ptr<AgentClient> client = Client();
  Seen seen;
  std::unique_ptr<StreamCall> call = Read(*client, &seen);
  ASSERT_TRUE(testing::Eventually([&] { return seen.count() == 1; }));
  EXPECT_EQ(open_streams_.load(), 1);
  const absl::Time cancelled = absl::Now();
  call->Cancel();
  call->Cancel();  // idempotent
  ASSERT_TRUE(testing::Eventually([&] { return closed_calls.load() == 1; }));
  EXPECT_LT(absl::Now() - cancelled, absl::Seconds(10));
  ASSERT_TRUE(testing::Eventually([&] { return seen.is_done(); }));
  EXPECT_EQ(seen.final_status().code(), absl::StatusCode::kCancelled);
  ASSERT_TRUE(testing::Eventually([&] { return open_streams_.load() == 0; }));
  sync::MutexLock lock(&mutex);
  EXPECT_TRUE(held->closed());
  EXPECT_FALSE(held->Write(Line(2)));  // the reactor is gone; the stream is not
  int late = 0;
  held->OnClosed([&] { ++late; });  // already over: at once
  EXPECT_EQ(late, 1);
  EXPECT_EQ(closed_calls.load(), 1);
}

TEST_F(StreamTest, TheQueueIsBoundedForASlowReader) {
  std::atomic<int> refused{0};
  std::atomic<size_t> most_queued{0};
  Serve([&](server::HandlerRegistry& registry) {
    ASSERT_TRUE((registry.AddServerStream<ServiceLogsRequest, ServiceLogsReply>(
                     "ServiceLogs",
                     [&](const Caller&, const ServiceLogsRequest&,
                         std::shared_ptr<ServerStream<ServiceLogsReply>> stream) {
                       threads_.emplace_back([&, stream] {
                         for (int i = 1; i <= 5000; ++i) {
                           if (!stream->Write(Line(i))) refused.fetch_add(1);
                           most_queued = std::max(most_queued.load(), stream->queued());
                         }
                         stream->Finish(absl::OkStatus());
                       });
                     },
                     /*max_queued=*/16))
                    .ok());
  });
  std::unique_ptr<AgentClient> client = Client();
  Seen seen;
  std::unique_ptr<StreamCall> call = Read(*client, &seen, absl::Milliseconds(2));
  ASSERT_TRUE(testing::Eventually([&] { return seen.is_done(); }, absl::Seconds(60)));
  EXPECT_TRUE(seen.final_status().ok()) << seen.final_status();
  EXPECT_GT(refused.load(), 0);
  EXPECT_LE(most_queued.load(), 16u);
  EXPECT_EQ(seen.count() + refused.load(), 5000u);  // what was accepted arrived
}

TEST_F(StreamTest, FinishStreamsEndsAFollowAndRefusesNewOnes) {
  Serve([](server::HandlerRegistry& registry) {
    ASSERT_TRUE((registry.AddServerStream<ServiceLogsRequest, ServiceLogsReply>(
                     "ServiceLogs", [](const Caller&, const ServiceLogsRequest&,
                                       std::shared_ptr<ServerStream<ServiceLogsReply>> stream) {
                       stream->Write(Line(1));  // and never finished
                     }))
                    .ok());
  });
  std::unique_ptr<AgentClient> client = Client();
  Seen seen;
  std::unique_ptr<StreamCall> call = Read(*client, &seen);
  ASSERT_TRUE(testing::Eventually([&] { return seen.count() == 1; }));
  const absl::Time stopping = absl::Now();
  service_->FinishStreams(absl::UnavailableError("the daemon is stopping"));
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  server_->Wait();
  server_ = nullptr;
  EXPECT_LT(absl::Now() - stopping, absl::Seconds(10));  // not the 30 s grace
  ASSERT_TRUE(testing::Eventually([&] { return seen.is_done(); }));
  EXPECT_EQ(seen.final_status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(seen.final_status().message(), "the daemon is stopping");
  EXPECT_EQ(open_streams_.load(), 0);
}

TEST_F(StreamTest, RefusedCallsAndRequests) {
  Serve([](server::HandlerRegistry& registry) {
    ASSERT_TRUE((registry.AddServerStream<ServiceLogsRequest, ServiceLogsReply>(
                     "ServiceLogs", [](const Caller&, const ServiceLogsRequest&,
                                       std::shared_ptr<ServerStream<ServiceLogsReply>>) {
                       ADD_FAILURE() << "no request should get here";
                     }))
                    .ok());
    // The registry checks the types and the kind.
    EXPECT_FALSE((registry.AddServerStream<v1::BlacklistStatusRequest, v1::BlacklistStatusReply>(
                      "BlacklistStatus", nullptr))
                     .ok());
    EXPECT_FALSE((registry.AddServerStream<ServiceLogsRequest, v1::BlacklistStatusReply>(
                      "ServiceLogs", nullptr))
                     .ok());
  });
  // No known node: no Identify for a stream.
  std::unique_ptr<AgentClient> unbound = Client("");
  EXPECT_EQ(unbound
                ->Stream("ServiceLogs", ServiceLogsRequest(), "omd.v1.ServiceLogsReply",
                         AgentClient::StreamOptions())
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  std::unique_ptr<AgentClient> client = Client();
  EXPECT_EQ(client
                ->Stream("BlacklistStatus", v1::BlacklistStatusRequest(),
                         "omd.v1.BlacklistStatusReply", AgentClient::StreamOptions())
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  // A request for another node is refused by the gate, like any method's.
  std::unique_ptr<AgentClient> misdirected = Client("node2");
  Seen seen;
  std::unique_ptr<StreamCall> call = Read(*misdirected, &seen);
  ASSERT_TRUE(testing::Eventually([&] { return seen.is_done(); }));
  EXPECT_EQ(seen.final_status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(dispatched_.load(), 0);
}

// A server that seals two replies with sequence 1: the reader refuses the
// second one and cancels the call.
class RepeatingServer final : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    return new Reactor();
  }

 private:
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    Reactor() { StartRead(&request_); }
    void OnReadDone(bool ok) override {
      if (!ok) return Finish(grpc::Status(grpc::StatusCode::INTERNAL, "no request"));
      std::vector<grpc::Slice> slices;
      v1::Envelope envelope;
      request_.Dump(&slices);
      std::string bytes;
      for (const grpc::Slice& slice : slices) bytes.append(slice.begin(), slice.end());
      envelope.ParseFromString(bytes);
      crypto::EnvelopeCodec node1(Identity("node1"));
      crypto::OpenedEnvelope opened =
          node1.Open(crypto::Direction::kRequest, "/omd.v1.Agent/ServiceLogs", envelope).value();
      for (int i = 0; i < 2; ++i) {
        const std::string reply = node1
                                      .SealStreamReply("/omd.v1.Agent/ServiceLogs", opened,
                                                       Line(i + 1).SerializeAsString(), 1)
                                      .value()
                                      .SerializeAsString();
        grpc::Slice slice(reply);
        replies_[i] = grpc::ByteBuffer(&slice, 1);
      }
      StartWrite(&replies_[0]);
    }
    void OnWriteDone(bool ok) override {
      if (ok && ++written_ < 2) return StartWrite(&replies_[written_]);
      // Held open: the reader must end the call itself.
    }
    void OnCancel() override { Finish(grpc::Status::CANCELLED); }
    void OnDone() override { delete this; }

   private:
    grpc::ByteBuffer request_;
    grpc::ByteBuffer replies_[2];
    int written_ = 0;
  };
};

TEST_F(StreamTest, ARepeatedSequenceIsRefused) {
  RepeatingServer generic;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterCallbackGenericService(&generic);
  std::unique_ptr<grpc::Server> repeating = builder.BuildAndStart();
  ASSERT_NE(repeating, nullptr);
  {
    std::unique_ptr<AgentClient> client = Client();
    Seen seen;
    std::unique_ptr<StreamCall> call = Read(*client, &seen);
    ASSERT_TRUE(testing::Eventually([&] { return seen.is_done(); }));
    EXPECT_EQ(seen.final_status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(seen.final_status().message(), "stream reply 1 where 2 was due");
    EXPECT_EQ(seen.count(), 1u);
  }
  repeating->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  repeating->Wait();
}

}  // namespace
}  // namespace omd::client

namespace omd::client {
namespace {

// What an asynchronous call's on_done saw, for the test thread.
struct AsyncOutcomes {
  sync::Mutex mutex;
  std::vector<absl::Status> statuses ABSL_GUARDED_BY(mutex);

  std::function<void(absl::StatusOr<v1::IdentifyReply>)> Recorder() {
    return [this](absl::StatusOr<v1::IdentifyReply> reply) {
      sync::MutexLock lock(&mutex);
      statuses.push_back(reply.status());
    };
  }
  // The outcomes once `count` calls are done (waiting up to 10 s).
  std::vector<absl::Status> Await(size_t count) {
    sync::MutexLock lock(&mutex);
    mutex.AwaitWithTimeout(
        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex) { return statuses.size() >= count; },
        absl::Seconds(10));
    return statuses;
  }
};

void ServeIdentify(server::HandlerRegistry& registry) {
  ASSERT_TRUE((registry.AddUnary<v1::IdentifyRequest, v1::IdentifyReply>(
                   "Identify",
                   [](const Caller&, const v1::IdentifyRequest&)
                       -> absl::StatusOr<v1::IdentifyReply> { return v1::IdentifyReply(); }))
                  .ok());
}

// Many calls at once, none holding a thread: each gets the checked reply, once.
TEST_F(StreamTest, CallAsyncGetsEachCheckedReplyOnce) {
  Serve(ServeIdentify);
  std::unique_ptr<AgentClient> client = Client();
  AsyncOutcomes outcomes;
  constexpr int kCalls = 200;
  for (int i = 0; i < kCalls; ++i) {
    client->CallAsync<v1::IdentifyReply>("Identify", v1::IdentifyRequest(), absl::Seconds(5),
                                         outcomes.Recorder());
  }
  std::vector<absl::Status> statuses = outcomes.Await(kCalls);
  ASSERT_EQ(statuses.size(), static_cast<size_t>(kCalls));
  for (const absl::Status& status : statuses) EXPECT_TRUE(status.ok()) << status;
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(outcomes.Await(kCalls).size(), static_cast<size_t>(kCalls)) << "on_done twice";
}

// A reply sealed by another node than the recipient is refused, as by Call.
TEST_F(StreamTest, CallAsyncChecksTheReplyAsCallDoes) {
  Serve(ServeIdentify);
  std::unique_ptr<AgentClient> client = Client("node3");  // the daemon is node1
  AsyncOutcomes outcomes;
  client->CallAsync<v1::IdentifyReply>("Identify", v1::IdentifyRequest(), absl::Seconds(5),
                                       outcomes.Recorder());
  std::vector<absl::Status> statuses = outcomes.Await(1);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0].code(), absl::StatusCode::kUnauthenticated) << statuses[0];
  EXPECT_EQ(statuses[0].ToString(),
            client->Call<v1::IdentifyReply>("Identify", v1::IdentifyRequest()).status().ToString());
}

// Nothing listening: the error comes within the deadline; a request of the wrong
// type is refused before anything is sent, at once.
TEST_F(StreamTest, CallAsyncReportsErrorsOnce) {
  Serve(ServeIdentify);
  const int port = port_;
  server_->Shutdown();
  server_->Wait();
  server_ = nullptr;
  AgentClient::Options options;
  options.target = absl::StrCat("127.0.0.1:", port);
  options.envelope = Identity("node2");
  options.recipient = "node1";
  options.reply_senders = {"node1"};
  std::unique_ptr<AgentClient> client = AgentClient::Create(std::move(options)).value();
  AsyncOutcomes outcomes;
  const absl::Time start = absl::Now();
  client->CallAsync<v1::IdentifyReply>("Identify", v1::IdentifyRequest(),
                                       absl::Milliseconds(500), outcomes.Recorder());
  std::vector<absl::Status> statuses = outcomes.Await(1);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_FALSE(statuses[0].ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));

  client->CallAsync<v1::IdentifyReply>("Identify", v1::BlacklistStatusRequest(),
                                       absl::Seconds(5), outcomes.Recorder());
  statuses = outcomes.Await(2);
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kInvalidArgument) << statuses[1];
}

}  // namespace
}  // namespace omd::client

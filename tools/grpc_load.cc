// A closed-loop load process for one unary method, with gRPC's callback client
// API: --in_flight calls are kept outstanding, spread over --channels channels
// with a connection each, and every call that completes starts the next at once.
// testing/versus_echo_bench runs it against omd and against tools/echo_server in
// alternating rounds; it is a process of its own so that the server's CPU, read
// from /proc, is the server's alone.
//
// --kind=echo sends omd.bench.Echo/Echo with a --payload_bytes payload; --kind=omd
// seals every request for the daemon (a fresh envelope each time, as a client
// must: the daemon refuses a replayed request id). Prints one line,
// "calls=N total=T seconds=S" (T: the warm-up's calls too) after the
// measured --duration (a --warmup before it is not counted), and writes each measured call's latency to --latencies_out
// (int64 nanoseconds, native byte order).
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "crypto/envelope.h"
#include "proto/omd.pb.h"
#include "rpc/agent_methods.h"
#include "sync/mutex.h"
#include "testing/daemon_harness.h"
#include "tools/echo.pb.h"

ABSL_FLAG(std::string, target, "", "The server, host:port.");
ABSL_FLAG(std::string, kind, "echo",
          "echo: omd.bench.Echo/Echo; omd: an Agent method, sealed for the daemon.");
ABSL_FLAG(int, in_flight, 16, "Calls kept outstanding.");
ABSL_FLAG(int, channels, 4, "Channels, each with a connection of its own.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(2), "Measured time.");
ABSL_FLAG(absl::Duration, warmup, absl::Milliseconds(300), "Load before the measured time.");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(10), "Each call's deadline.");
ABSL_FLAG(std::string, source, "",
          "Local IPv4 address the connections leave from (e.g. 127.0.0.2); empty: any.");
ABSL_FLAG(std::string, latencies_out, "", "Where to write the measured latencies.");
ABSL_FLAG(std::string, expect, "OK",
          "The status every call must end with: OK, or e.g. PERMISSION_DENIED for a "
          "blacklisted sender.");
ABSL_FLAG(int, payload_bytes, 200, "echo: the payload's size.");
ABSL_FLAG(std::string, method, "BlacklistStatus",
          "omd: the Agent method (its request is the empty message of its type).");
ABSL_FLAG(std::string, cluster, "bench", "omd: the cluster's name.");
ABSL_FLAG(std::string, nodename, "node2", "omd: the sender's node name.");
ABSL_FLAG(std::string, recipient, "node1", "omd: the daemon's node name.");
ABSL_FLAG(std::string, secret_file, "", "omd: a file holding the cluster secret.");
ABSL_FLAG(int, key_generation, 1, "omd: the secret's generation.");

namespace omd::bench {
namespace {

absl::StatusOr<grpc::StatusCode> ParseStatusCode(absl::string_view name) {
  for (int code = grpc::StatusCode::OK; code <= grpc::StatusCode::UNAUTHENTICATED; ++code) {
    if (absl::StatusCodeToString(static_cast<absl::StatusCode>(code)) == name) {
      return static_cast<grpc::StatusCode>(code);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("--expect: no status code ", name));
}

// What each call sends.
class RequestSource {
 public:
  virtual ~RequestSource() = default;
  virtual const std::string& method_path() const = 0;
  virtual absl::StatusOr<grpc::ByteBuffer> Next(int channel) = 0;
};

class EchoRequests : public RequestSource {
 public:
  explicit EchoRequests(int payload_bytes) {
    EchoMessage message;
    message.set_payload(std::string(static_cast<size_t>(payload_bytes), 'x'));
    grpc::Slice slice(message.SerializeAsString());
    request_ = grpc::ByteBuffer(&slice, 1);
  }
  const std::string& method_path() const override { return path_; }
  absl::StatusOr<grpc::ByteBuffer> Next(int) override { return request_; }

 private:
  const std::string path_ = "/omd.bench.Echo/Echo";
  grpc::ByteBuffer request_;
};

// A fresh envelope per call, one salt per channel (as AgentClient keeps one), so
// the daemon's derived-key cache behaves as with real clients.
class OmdRequests : public RequestSource {
 public:
  static absl::StatusOr<std::unique_ptr<OmdRequests>> Create(int channels) {
    const google::protobuf::MethodDescriptor* method =
        rpc::AgentService().FindMethodByName(absl::GetFlag(FLAGS_method));
    if (method == nullptr || method->server_streaming()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--method: no unary Agent method ", absl::GetFlag(FLAGS_method)));
    }
    absl::StatusOr<std::string> secret =
        config::ReadFileToString(absl::GetFlag(FLAGS_secret_file), 4096);
    if (!secret.ok()) return secret.status();
    crypto::EnvelopeOptions options;
    options.cluster = absl::GetFlag(FLAGS_cluster);
    options.nodename = absl::GetFlag(FLAGS_nodename);
    options.secrets = {{static_cast<uint32_t>(absl::GetFlag(FLAGS_key_generation)),
                        std::string(absl::StripAsciiWhitespace(*secret))}};
    std::unique_ptr<OmdRequests> requests(new OmdRequests(std::move(options)));
    requests->path_ = rpc::MethodPath(*method);
    requests->recipient_ = absl::GetFlag(FLAGS_recipient);
    // The request type's empty message serializes to no bytes.
    for (int i = 0; i < channels; ++i) {
      requests->salts_.push_back(crypto::EnvelopeCodec::NewSalt());
    }
    return requests;
  }

  const std::string& method_path() const override { return path_; }

  absl::StatusOr<grpc::ByteBuffer> Next(int channel) override {
    absl::StatusOr<v1::Envelope> sealed = codec_.Seal(
        crypto::Direction::kRequest, path_, recipient_, salts_[channel], /*payload=*/"");
    if (!sealed.ok()) return sealed.status();
    grpc::Slice slice(sealed->SerializeAsString());
    return grpc::ByteBuffer(&slice, 1);
  }

 private:
  explicit OmdRequests(crypto::EnvelopeOptions options) : codec_(std::move(options)) {}

  crypto::EnvelopeCodec codec_;
  std::string path_;
  std::string recipient_;
  std::vector<std::string> salts_;
};

class Load {
 public:
  struct Options {
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    RequestSource* requests = nullptr;
    int in_flight = 1;
    grpc::StatusCode expect = grpc::StatusCode::OK;
    absl::Duration deadline;
  };

  explicit Load(Options options) : options_(std::move(options)) {
    for (const auto& channel : options_.channels) {
      stubs_.push_back(std::make_unique<grpc::GenericStub>(channel));
    }
    slots_.resize(static_cast<size_t>(options_.in_flight));
  }

  // Runs until `measure_from + duration`, recording what completes in between.
  absl::Status Run(absl::Time measure_from, absl::Time end) {
    measure_from_ = measure_from;
    end_ = end;
    {
      sync::MutexLock lock(&mutex_);
      running_ = options_.in_flight;
    }
    for (size_t i = 0; i < slots_.size(); ++i) StartCall(i);
    sync::MutexLock lock(&mutex_);
    mutex_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return running_ == 0; });
    return first_error_;
  }

  int64_t calls() const {
    int64_t total = 0;
    for (const Slot& slot : slots_) total += static_cast<int64_t>(slot.latencies.size());
    return total;
  }
  int64_t total_calls() const { return total_calls_.load(); }

  std::vector<int64_t> Latencies() const {
    std::vector<int64_t> all;
    for (const Slot& slot : slots_) {
      for (absl::Duration latency : slot.latencies) {
        all.push_back(absl::ToInt64Nanoseconds(latency));
      }
    }
    return all;
  }

 private:
  // One outstanding call at a time: its fields are touched by one call's start
  // and its completion, which gRPC orders.
  struct Slot {
    std::unique_ptr<grpc::ClientContext> context;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
    absl::Time sent;
    std::vector<absl::Duration> latencies;
  };

  void StartCall(size_t index) {
    Slot& slot = slots_[index];
    const int channel = static_cast<int>(index % stubs_.size());
    absl::StatusOr<grpc::ByteBuffer> request = options_.requests->Next(channel);
    if (!request.ok()) {
      Stop(request.status());
      return;
    }
    slot.request = *std::move(request);
    slot.context = std::make_unique<grpc::ClientContext>();
    slot.context->set_deadline(absl::ToChronoTime(absl::Now() + options_.deadline));
    slot.sent = absl::Now();
    stubs_[channel]->UnaryCall(slot.context.get(), options_.requests->method_path(),
                               grpc::StubOptions(), &slot.request, &slot.response,
                               [this, index](grpc::Status status) { Done(index, status); });
  }

  void Done(size_t index, const grpc::Status& status) {
    Slot& slot = slots_[index];
    const absl::Time now = absl::Now();
    if (status.error_code() != options_.expect) {
      Stop(absl::UnknownError(absl::StrCat("a call ended with ", status.error_code(), " (",
                                           status.error_message(), "), expected ",
                                           options_.expect)));
      return;
    }
    total_calls_.fetch_add(1, std::memory_order_relaxed);
    if (slot.sent >= measure_from_ && now <= end_) slot.latencies.push_back(now - slot.sent);
    if (now >= end_) {
      Stop(absl::OkStatus());
      return;
    }
    StartCall(index);
  }

  void Stop(const absl::Status& status) {
    sync::MutexLock lock(&mutex_);
    if (first_error_.ok()) first_error_ = status;
    --running_;
  }

  const Options options_;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
  std::vector<Slot> slots_;
  absl::Time measure_from_;
  absl::Time end_;
  std::atomic<int64_t> total_calls_{0};  // warm-up included
  sync::Mutex mutex_;
  int running_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::Status first_error_ ABSL_GUARDED_BY(mutex_);
};

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const std::string& target) {
  const std::string source = absl::GetFlag(FLAGS_source);
  if (!source.empty()) return testing::ChannelFromSource(source, target);
  grpc::ChannelArguments arguments;
  // A subchannel pool of its own: otherwise channels to one target share a
  // connection.
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
  if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(5)))) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", target));
  }
  return channel;
}

absl::Status Run() {
  const std::string target = absl::GetFlag(FLAGS_target);
  const int channel_count = absl::GetFlag(FLAGS_channels);
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  if (target.empty()) return absl::InvalidArgumentError("--target is required");
  if (channel_count < 1 || in_flight < 1) {
    return absl::InvalidArgumentError("--channels and --in_flight must be at least 1");
  }
  absl::StatusOr<grpc::StatusCode> expect = ParseStatusCode(absl::GetFlag(FLAGS_expect));
  if (!expect.ok()) return expect.status();

  std::unique_ptr<RequestSource> requests;
  if (absl::GetFlag(FLAGS_kind) == "echo") {
    requests = std::make_unique<EchoRequests>(absl::GetFlag(FLAGS_payload_bytes));
  } else if (absl::GetFlag(FLAGS_kind) == "omd") {
    absl::StatusOr<std::unique_ptr<OmdRequests>> omd = OmdRequests::Create(channel_count);
    if (!omd.ok()) return omd.status();
    requests = *std::move(omd);
  } else {
    return absl::InvalidArgumentError("--kind is echo or omd");
  }

  Load::Options options;
  for (int i = 0; i < channel_count; ++i) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Connect(target);
    if (!channel.ok()) return channel.status();
    options.channels.push_back(*std::move(channel));
  }
  options.requests = requests.get();
  options.in_flight = in_flight;
  options.expect = *expect;
  options.deadline = absl::GetFlag(FLAGS_deadline);
  Load load(std::move(options));
  const absl::Time measure_from = absl::Now() + absl::GetFlag(FLAGS_warmup);
  const absl::Time end = measure_from + absl::GetFlag(FLAGS_duration);
  absl::Status ran = load.Run(measure_from, end);
  if (!ran.ok()) return ran;
  if (!absl::GetFlag(FLAGS_latencies_out).empty()) {
    const std::vector<int64_t> latencies = load.Latencies();
    absl::Status written = config::WriteFileAtomically(
        absl::GetFlag(FLAGS_latencies_out),
        absl::string_view(reinterpret_cast<const char*>(latencies.data()),
                          latencies.size() * sizeof(int64_t)),
        0644);
    if (!written.ok()) return written;
  }
  std::printf("calls=%lld total=%lld seconds=%.6f\n", static_cast<long long>(load.calls()),
              static_cast<long long>(load.total_calls()),
              absl::ToDoubleSeconds(absl::GetFlag(FLAGS_duration)));
  return absl::OkStatus();
}

}  // namespace
}  // namespace omd::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Closed-loop load on one unary gRPC method with the callback client API.\n"
      "Usage: grpc_load --target=HOST:PORT [--kind=echo|omd] [--in_flight=16] "
      "[--channels=4] [--duration=2s]\n"
      "  omd: --secret_file=PATH [--cluster --nodename --recipient --method "
      "--source --expect]");
  absl::ParseCommandLine(argc, argv);
  absl::Status status = omd::bench::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "grpc_load: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

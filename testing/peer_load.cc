#include "testing/peer_load.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/omd.pb.h"

namespace omd::testing {

PeerLoad::PeerLoad(std::string target, Options options)
    : target_(std::move(target)), options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

PeerLoad::~PeerLoad() { Stop(); }

PeerLatencies PeerLoad::Stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
  sync::MutexLock lock(&mutex_);
  PeerLatencies result = result_;
  std::vector<absl::Duration> sorted = samples_;
  std::sort(sorted.begin(), sorted.end());
  if (!sorted.empty()) {
    result.p50 = sorted[sorted.size() / 2];
    result.p99 = sorted[sorted.size() * 99 / 100];
    result.max = sorted.back();
  }
  return result;
}

std::unique_ptr<client::AgentClient> PeerLoad::Connect() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ChannelFromSource(options_.source, target_);
  if (!channel.ok()) return nullptr;
  client::AgentClient::Options options;
  options.channel = *channel;
  options.envelope.cluster = options_.cluster;
  options.envelope.nodename = options_.nodename;
  options.envelope.secrets = {{1, options_.secret}};
  options.recipient = options_.recipient;
  options.reply_senders = {options_.recipient};
  options.timeout = options_.timeout;
  absl::StatusOr<std::unique_ptr<client::AgentClient>> client =
      client::AgentClient::Create(std::move(options));
  return client.ok() ? *std::move(client) : nullptr;
}

void PeerLoad::Run() {
  std::unique_ptr<client::AgentClient> client = Connect();
  while (!stopping_.load()) {
    const absl::Time start = absl::Now();
    absl::Status status =
        client == nullptr
            ? absl::UnavailableError(absl::StrCat("cannot connect from ", options_.source))
            : client->Call<v1::BlacklistStatusReply>("BlacklistStatus",
                                                     v1::BlacklistStatusRequest())
                  .status();
    const absl::Duration took = absl::Now() - start;
    {
      sync::MutexLock lock(&mutex_);
      ++result_.calls;
      samples_.push_back(took);
      if (!status.ok() && result_.failures++ == 0) result_.first_failure = status.ToString();
    }
    // A channel over a given descriptor cannot reconnect by itself: a new one.
    if (!status.ok()) client = Connect();
    absl::SleepFor(options_.pause);
  }
}

}  // namespace omd::testing

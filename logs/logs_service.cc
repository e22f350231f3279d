#include "logs/logs_service.h"

#include <pthread.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/agent_client.h"
#include "config/names.h"
#include "config/quote.h"
#include "log/log.h"
#include "logs/log_files.h"
#include "logs/log_merger.h"
#include "service/service_config.h"

namespace omd::logs {
namespace {

// What the daemon itself says in a stream, as a record of `node`'s.
v1::LogRecord StreamRecord(const std::string& node, absl::string_view level,
                           std::string message, absl::string_view key, std::string value) {
  v1::LogRecord record;
  record.set_time_unix_ms(absl::ToUnixMillis(absl::Now()));
  record.set_level(std::string(level));
  record.set_message(std::move(message));
  record.set_nodename(node);
  (*record.mutable_extra())[std::string(key)] = std::move(value);
  return record;
}

}  // namespace

// One served stream: its sources (a node each), their merge, and the stream.
// Its methods run on the watcher's thread, gRPC's and the timer thread, under
// its mutex; it never holds it while it calls something that could call back
// into it (a source's creation or cancellation).
class LogsService::Follower : public std::enable_shared_from_this<Follower> {
 public:
  Follower(LogsService* service, uint64_t id, v1::ServiceLogsRequest request, Stream stream,
           std::vector<std::string> nodes, std::string local_node, absl::Time deadline)
      : service_(service),
        id_(id),
        request_(std::move(request)),
        stream_(std::move(stream)),
        local_node_(std::move(local_node)),
        deadline_(deadline),
        merger_(nodes, LogMerger::Options{service->options_.lateness}) {
    for (std::string& node : nodes) {
      Source& source = sources_[node];
      source.node = std::move(node);
    }
  }

  void Start() {
    std::weak_ptr<Follower> weak = weak_from_this();
    stream_->OnClosed([weak, service = service_] {
      // Not here: this may run inside one of the stream's calls.
      service->At(absl::InfinitePast(), [weak] {
        if (std::shared_ptr<Follower> self = weak.lock()) self->Close();
      });
    });
    for (auto& [node, source] : sources_) Connect(node);
  }

  // The stream is over: every source goes. On the timer thread.
  void Close() {
    std::vector<std::unique_ptr<client::StreamCall>> calls;
    std::vector<uint64_t> subscriptions;
    {
      sync::MutexLock lock(&mutex_);
      if (closed_) return;
      closed_ = true;
      for (auto& [node, source] : sources_) {
        if (source.call != nullptr) calls.push_back(std::move(source.call));
        if (source.subscription != 0) subscriptions.push_back(source.subscription);
        source.subscription = 0;
      }
    }
    for (uint64_t subscription : subscriptions) service_->watcher_->Unsubscribe(subscription);
    for (auto& call : calls) call->Cancel();
    calls.clear();  // each waits for its last callback, which takes mutex_: not held
    service_->Forget(id_);
  }

  // The daemon stops.
  void Abort() {
    stream_->Finish(absl::UnavailableError("the daemon is stopping"));
    Close();
  }

  // A node is asked (again), from its last record on.
  void Connect(const std::string& node) {
    v1::ServiceLogsRequest upstream;
    uint64_t generation = 0;
    {
      sync::MutexLock lock(&mutex_);
      if (closed_) return;
      Source& source = sources_[node];
      generation = ++source.generation;
      source.answered = false;
      upstream.set_svcname(request_.svcname());
      upstream.set_follow(request_.follow());
      upstream.set_local_only(true);
      if (source.last_time_ms > 0) {
        // Back after an interruption: everything since its last record.
        upstream.set_since_unix_ms(source.last_time_ms + 1);
        upstream.set_backlog(static_cast<uint32_t>(service_->options_.max_backlog));
      } else {
        upstream.set_since_unix_ms(request_.since_unix_ms());
        upstream.set_backlog(request_.backlog());
      }
      merger_.Reopen(node);
    }
    if (node == local_node_) {
      ConnectLocal(node, upstream, generation);
    } else {
      ConnectRemote(node, upstream, generation);
    }
  }

 private:
  struct Source {
    std::string node;
    uint64_t generation = 0;  // of its current connection; older callbacks are stale
    bool answered = false;
    int64_t last_time_ms = 0;
    std::unique_ptr<client::StreamCall> call;  // a remote node's
    uint64_t subscription = 0;                 // this node's, with follow
  };

  size_t Backlog(const v1::ServiceLogsRequest& request) const {
    return request.backlog() == 0 ? service_->options_.default_backlog : request.backlog();
  }

  absl::Time Since(const v1::ServiceLogsRequest& request) const {
    return request.since_unix_ms() == 0 ? absl::InfinitePast()
                                        : absl::FromUnixMillis(request.since_unix_ms());
  }

  void ConnectLocal(const std::string& node, const v1::ServiceLogsRequest& upstream,
                    uint64_t generation) {
    if (!upstream.follow()) {
      absl::StatusOr<std::vector<v1::LogRecord>> backlog =
          ReadBacklog(service_->options_.root, upstream.svcname(), Backlog(upstream),
                      Since(upstream));
      if (!backlog.ok()) {
        Ended(node, generation, backlog.status());
        return;
      }
      Records(node, generation, *std::move(backlog), /*backlog_done=*/true);
      Ended(node, generation, absl::OkStatus());
      return;
    }
    std::weak_ptr<Follower> weak = weak_from_this();
    absl::StatusOr<uint64_t> subscription = service_->watcher_->Subscribe(
        upstream.svcname(), Backlog(upstream), Since(upstream),
        // The watcher's first call is the backlog (maybe empty), then live.
        [weak, node, generation, first = true](const std::vector<v1::LogRecord>& records) mutable {
          if (std::shared_ptr<Follower> self = weak.lock()) {
            self->Records(node, generation, records, /*backlog_done=*/first);
          }
          first = false;
        });
    if (!subscription.ok()) {
      Ended(node, generation, subscription.status());
      return;
    }
    bool unsubscribe = false;
    {
      sync::MutexLock lock(&mutex_);
      sources_[node].answered = true;
      if (closed_) {
        unsubscribe = true;
      } else {
        sources_[node].subscription = *subscription;
      }
    }
    if (unsubscribe) service_->watcher_->Unsubscribe(*subscription);
  }

  void ConnectRemote(const std::string& node, const v1::ServiceLogsRequest& upstream,
                     uint64_t generation) {
    std::weak_ptr<Follower> weak = weak_from_this();
    client::AgentClient::StreamOptions options;
    options.timeout = upstream.follow() ? absl::InfiniteDuration()
                                        : std::max(deadline_ - absl::Now(), absl::ZeroDuration());
    std::atomic<int64_t>* upstreams = &service_->upstreams_;
    upstreams->fetch_add(1);
    absl::StatusOr<std::unique_ptr<client::StreamCall>> call =
        service_->peers_->Stream<v1::ServiceLogsReply>(
            node, "ServiceLogs", upstream,
            [weak, node, generation](const v1::ServiceLogsReply& reply) {
              std::shared_ptr<Follower> self = weak.lock();
              if (self == nullptr) return;
              self->Records(node, generation, {reply.records().begin(), reply.records().end()},
                            reply.backlog_done());
            },
            [weak, node, generation, upstreams](absl::Status status) {
              upstreams->fetch_sub(1);
              if (std::shared_ptr<Follower> self = weak.lock()) {
                self->Ended(node, generation, status);
              }
            },
            std::move(options));
    if (!call.ok()) {
      upstreams->fetch_sub(1);
      Ended(node, generation, call.status());
      return;
    }
    std::unique_ptr<client::StreamCall> cancel;
    {
      sync::MutexLock lock(&mutex_);
      Source& source = sources_[node];
      if (closed_ || source.generation != generation) {
        cancel = *std::move(call);
      } else {
        source.call = *std::move(call);
      }
    }
    if (cancel != nullptr) {
      cancel->Cancel();
      return;
    }
    // A node that says nothing at all (not even the empty first reply of a
    // local_only stream) within the bound is taken as down, for now.
    service_->At(absl::Now() + service_->options_.connect_timeout, [weak, node, generation] {
      std::shared_ptr<Follower> self = weak.lock();
      if (self != nullptr) self->GiveUpIfSilent(node, generation);
    });
  }

  void GiveUpIfSilent(const std::string& node, uint64_t generation) {
    std::unique_ptr<client::StreamCall> call;
    {
      sync::MutexLock lock(&mutex_);
      Source& source = sources_[node];
      if (closed_ || source.generation != generation || source.answered) return;
      silent_generation_[node] = generation;
      call = std::move(source.call);
    }
    if (call != nullptr) call->Cancel();  // its on_done ends the source
  }

  // A source's records; `backlog_done`: its backlog is all in (what follows is
  // live).
  void Records(const std::string& node, uint64_t generation, std::vector<v1::LogRecord> records,
               bool backlog_done) {
    sync::MutexLock lock(&mutex_);
    Source& source = sources_[node];
    if (closed_ || source.generation != generation) return;
    source.answered = true;
    for (v1::LogRecord& record : records) {
      // A node speaks for its own records only (its name is authenticated).
      record.set_nodename(node);
      source.last_time_ms = std::max(source.last_time_ms, record.time_unix_ms());
    }
    merger_.Add(node, std::move(records), absl::Now());
    if (backlog_done) merger_.Ready(node);
    FlushLocked();
    if (backlog_done && request_.local_only()) {
      // Its one source's backlog is out: the asking node's merge may go on (an
      // empty message if the backlog was).
      v1::ServiceLogsReply done;
      done.set_backlog_done(true);
      if (!stream_->Write(done)) ++missed_;
    }
  }

  // A source's stream is over: its end (OK), or an error, said as a record.
  void Ended(const std::string& node, uint64_t generation, absl::Status status) {
    bool retry = false;
    {
      sync::MutexLock lock(&mutex_);
      Source& source = sources_[node];
      if (closed_ || source.generation != generation) return;
      source.subscription = 0;
      if (!status.ok()) {
        const bool silent = silent_generation_[node] == generation;
        const std::string why =
            silent ? absl::StrCat("no answer within ",
                                  absl::FormatDuration(service_->options_.connect_timeout))
                   : status.ToString();
        merger_.Add(node,
                    {StreamRecord(node, "ERROR", absl::StrCat("node ", node, ": ", why,
                                                              request_.follow() ? ": asking again"
                                                                                : ""),
                                  "node_error", why)},
                    absl::Now());
        retry = request_.follow();
      }
      merger_.End(node);
      FlushLocked();
    }
    if (retry) {
      std::weak_ptr<Follower> weak = weak_from_this();
      service_->At(absl::Now() + service_->options_.retry_interval, [weak, node] {
        if (std::shared_ptr<Follower> self = weak.lock()) self->Connect(node);
      });
    }
  }

  // What the merge lets out, to the stream; the end, once every source ended
  // (without follow).
  void FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    const absl::Time now = absl::Now();
    Deliver(merger_.Take(now));
    if (!request_.follow() && merger_.done()) {
      stream_->Finish(absl::OkStatus());
      return;
    }
    std::optional<absl::Time> next = merger_.NextDeadline();
    if (next.has_value() && (!flush_at_.has_value() || *next < *flush_at_)) {
      flush_at_ = next;
      std::weak_ptr<Follower> weak = weak_from_this();
      service_->At(*next, [weak] {
        std::shared_ptr<Follower> self = weak.lock();
        if (self == nullptr) return;
        sync::MutexLock lock(&self->mutex_);
        self->flush_at_.reset();
        if (!self->closed_) self->FlushLocked();
      });
    }
  }

  // Records to the stream, in messages of at most records_per_message and
  // max_message_bytes. A reader whose queue is full loses them, and then gets a
  // record saying how many.
  void Deliver(const std::vector<v1::LogRecord>& records) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (records.empty() && missed_ > 0 && stream_->Write(MissedNotice())) missed_ = 0;
    const size_t per_message = service_->options_.records_per_message;
    size_t end = 0;
    for (size_t begin = 0; begin < records.size(); begin = end) {
      size_t bytes = 0;
      end = begin;
      while (end < records.size() && end - begin < per_message &&
             (end == begin || bytes + records[end].ByteSizeLong() <=
                                  service_->options_.max_message_bytes)) {
        bytes += records[end].ByteSizeLong();
        ++end;
      }
      if (missed_ > 0) {
        if (stream_->Write(MissedNotice())) {
          missed_ = 0;
        } else {
          missed_ += end - begin;
          continue;
        }
      }
      v1::ServiceLogsReply reply;
      for (size_t i = begin; i < end; ++i) *reply.add_records() = records[i];
      if (!stream_->Write(reply)) missed_ += end - begin;
    }
    if (missed_ > 0) ScheduleNotice();
  }

  v1::ServiceLogsReply MissedNotice() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    v1::ServiceLogsReply notice;
    *notice.add_records() = StreamRecord(
        local_node_, "WARNING", absl::StrCat(missed_, " records missed: this reader did not keep up"),
        "missed", absl::StrCat(missed_));
    return notice;
  }

  // The count of the missed records goes out as soon as the queue has room,
  // whether or not another record comes.
  void ScheduleNotice() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (notice_scheduled_) return;
    notice_scheduled_ = true;
    std::weak_ptr<Follower> weak = weak_from_this();
    service_->At(absl::Now() + absl::Milliseconds(50), [weak] {
      std::shared_ptr<Follower> self = weak.lock();
      if (self == nullptr) return;
      sync::MutexLock lock(&self->mutex_);
      self->notice_scheduled_ = false;
      if (!self->closed_ && self->missed_ > 0) self->Deliver({});
    });
  }

  LogsService* const service_;
  const uint64_t id_;
  const v1::ServiceLogsRequest request_;
  const Stream stream_;
  const std::string local_node_;
  const absl::Time deadline_;

  sync::Mutex mutex_;
  std::map<std::string, Source> sources_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, uint64_t> silent_generation_ ABSL_GUARDED_BY(mutex_);
  LogMerger merger_ ABSL_GUARDED_BY(mutex_);
  std::optional<absl::Time> flush_at_ ABSL_GUARDED_BY(mutex_);
  uint64_t missed_ ABSL_GUARDED_BY(mutex_) = 0;
  bool notice_scheduled_ ABSL_GUARDED_BY(mutex_) = false;
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
};

LogsService::LogsService(Options options, LogWatcher* watcher, cluster::Peers* peers,
                         std::function<std::shared_ptr<const config::NodeConfig>()> config)
    : options_(std::move(options)),
      watcher_(watcher),
      peers_(peers),
      config_(std::move(config)),
      timer_thread_([this] { TimerLoop(); }) {}

LogsService::~LogsService() { Stop(); }

void LogsService::Serve(const server::Caller& caller, const v1::ServiceLogsRequest& request,
                        Stream stream) {
  const auto refuse = [&stream](absl::Status status) { stream->Finish(std::move(status)); };
  if (absl::Status valid = service::ValidateServiceName(request.svcname()); !valid.ok()) {
    return refuse(valid);
  }
  if (request.backlog() > options_.max_backlog) {
    return refuse(absl::InvalidArgumentError(absl::StrCat(
        "a backlog of ", request.backlog(), " records: at most ", options_.max_backlog)));
  }
  for (const std::string& node : request.nodes()) {
    if (absl::Status valid = config::ValidateName("node name", node); !valid.ok()) {
      return refuse(valid);
    }
  }
  const std::shared_ptr<const config::NodeConfig> config = config_();
  absl::StatusOr<service::ServiceConfig> service =
      service::LoadServiceConfig(options_.root, request.svcname(), config->node_name);
  if (!service.ok()) return refuse(service.status());
  std::vector<std::string> nodes;
  if (request.local_only()) {
    nodes = {config->node_name};
  } else if (request.nodes().empty()) {
    nodes = service->nodes;
  } else {
    for (const std::string& node : request.nodes()) {
      if (std::find(service->nodes.begin(), service->nodes.end(), node) ==
          service->nodes.end()) {
        return refuse(absl::InvalidArgumentError(
            absl::StrCat("node ", config::QuoteForMessage(node), " is not one of ",
                         request.svcname(), "'s nodes (", absl::StrJoin(service->nodes, " "),
                         ")")));
      }
      if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) nodes.push_back(node);
    }
  }
  const absl::Time deadline =
      caller.deadline == absl::InfiniteFuture() ? absl::Now() + absl::Minutes(1) : caller.deadline;
  std::shared_ptr<Follower> follower;
  {
    sync::MutexLock lock(&mutex_);
    if (stopping_) return refuse(absl::UnavailableError("the daemon is stopping"));
    if (followers_.size() >= options_.max_streams) {
      return refuse(absl::ResourceExhaustedError(absl::StrCat(
          followers_.size(), " log streams are served, the most this daemon serves at once")));
    }
    const uint64_t id = next_id_++;
    follower = std::make_shared<Follower>(this, id, request, std::move(stream), std::move(nodes),
                                          config->node_name, deadline);
    followers_.emplace(id, follower);
  }
  follower->Start();
}

void LogsService::Forget(uint64_t id) {
  sync::MutexLock lock(&mutex_);
  followers_.erase(id);
}

int64_t LogsService::streams() const {
  sync::MutexLock lock(&mutex_);
  return static_cast<int64_t>(followers_.size());
}

void LogsService::At(absl::Time at, std::function<void()> run) {
  sync::MutexLock lock(&mutex_);
  if (stopping_) return;
  timers_.push(Timer{at, timer_order_++, std::move(run)});
}

void LogsService::TimerLoop() {
  pthread_setname_np(pthread_self(), "omd-logtimer");
  while (true) {
    std::function<void()> run;
    {
      sync::MutexLock lock(&mutex_);
      while (true) {
        if (stopping_) return;
        if (!timers_.empty() && timers_.top().at <= absl::Now()) break;
        const absl::Duration wait = timers_.empty() ? absl::Seconds(1)
                                                    : timers_.top().at - absl::Now();
        // Also woken by a new timer, which may be due before `wait` is over.
        const uint64_t seen = timer_order_;
        mutex_.AwaitWithTimeout(
            [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
              return stopping_ || timer_order_ != seen;
            },
            wait);
      }
      run = timers_.top().run;
      timers_.pop();
    }
    run();
  }
}

void LogsService::Stop() {
  std::map<uint64_t, std::shared_ptr<Follower>> followers;
  {
    sync::MutexLock lock(&mutex_);
    if (stopping_ && !timer_thread_.joinable()) return;
    stopping_ = true;
    followers = followers_;
  }
  if (timer_thread_.joinable()) timer_thread_.join();
  for (auto& [id, follower] : followers) follower->Abort();
  sync::MutexLock lock(&mutex_);
  followers_.clear();
  while (!timers_.empty()) timers_.pop();
}

}  // namespace omd::logs

// ServiceLogs: a service's log records, streamed to the caller.
//
// local_only: this node's records (logs/log_watcher.h): the backlog, then, with
// follow, each record as it is appended, until the caller goes.
//
// Otherwise every node of the service (or those the request names) is asked
// with local_only, this node in process and the others through the same gated
// RPC (cluster::Peers), and their records are merged by time
// (logs/log_merger.h) as they come. A node that is down, or refuses, shows as
// one record saying so (extra "node_error"); with follow, it is asked again
// every few seconds, from its last record on, and picked up when it is back.
//
// No thread per stream: records are pushed by the watcher's thread and gRPC's
// (the upstream streams' callbacks), and one thread of this service's runs the
// timers (a merge waiting for a silent node, a node asked again). A reader
// slower than its records gets its stream's bounded queue, then a record saying
// how many it missed (extra "missed").
//
//   LogsService logs(options, &watcher, &peers, [&] { return reloader.config(); });
//   registry.AddServerStream<v1::ServiceLogsRequest, v1::ServiceLogsReply>(
//       "ServiceLogs", [&](const Caller& caller, const auto& request, auto stream) {
//         logs.Serve(caller, request, std::move(stream));
//       });
#ifndef OMD_LOGS_LOGS_SERVICE_H_
#define OMD_LOGS_LOGS_SERVICE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "cluster/peers.h"
#include "config/node_config.h"
#include "logs/log_watcher.h"
#include "proto/omd.pb.h"
#include "server/caller.h"
#include "server/handler_registry.h"
#include "sync/mutex.h"

namespace omd::logs {

class LogsService {
 public:
  struct Options {
    std::string root;
    size_t default_backlog = 50;
    size_t max_backlog = 5000;         // a larger request is INVALID_ARGUMENT
    // Of each ServiceLogsReply, at most. With the stream's queue (64 messages),
    // they bound what a reader can be behind by: a backlog of 5000 records from
    // six nodes fits.
    size_t records_per_message = 500;
    size_t max_message_bytes = 256 << 10;
    size_t max_streams = 2000;         // served at once; past it, RESOURCE_EXHAUSTED
    // How long a merged record waits for a silent node (LogMerger::Options).
    absl::Duration lateness = absl::Milliseconds(5);
    // A node that does not answer within this is taken as down for now.
    absl::Duration connect_timeout = absl::Seconds(3);
    // How soon a follow asks a node that was down again.
    absl::Duration retry_interval = absl::Seconds(2);
  };

  using Stream = std::shared_ptr<server::ServerStream<v1::ServiceLogsReply>>;

  LogsService(Options options, LogWatcher* watcher, cluster::Peers* peers,
              std::function<std::shared_ptr<const config::NodeConfig>()> config);
  ~LogsService();  // Stop

  LogsService(const LogsService&) = delete;
  LogsService& operator=(const LogsService&) = delete;

  // The ServiceLogs handler. Errors end `stream` at once: INVALID_ARGUMENT (a
  // bad service or node name, a node not of the service, a backlog over
  // max_backlog), NOT_FOUND (no such service here), RESOURCE_EXHAUSTED.
  void Serve(const server::Caller& caller, const v1::ServiceLogsRequest& request, Stream stream);

  // Ends every stream (UNAVAILABLE), cancels the upstream ones, and stops the
  // timer thread. Idempotent.
  void Stop();

  // For the daemon's status: streams served now, and those this node reads
  // from the other nodes for them.
  int64_t streams() const;
  int64_t upstreams() const { return upstreams_.load(); }

  class Follower;  // one served stream (logs_service.cc)

 private:
  struct Timer {
    absl::Time at;
    uint64_t order;
    std::function<void()> run;
    bool operator>(const Timer& other) const {
      return at != other.at ? at > other.at : order > other.order;
    }
  };

  // Runs `run` on the timer thread at `at` (at once if past).
  void At(absl::Time at, std::function<void()> run);
  void TimerLoop();
  void Forget(uint64_t id);

  friend class Follower;

  const Options options_;
  LogWatcher* const watcher_;
  cluster::Peers* const peers_;
  const std::function<std::shared_ptr<const config::NodeConfig>()> config_;
  std::atomic<int64_t> upstreams_{0};

  mutable sync::Mutex mutex_;
  std::map<uint64_t, std::shared_ptr<Follower>> followers_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_id_ ABSL_GUARDED_BY(mutex_) = 1;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_
      ABSL_GUARDED_BY(mutex_);
  uint64_t timer_order_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread timer_thread_;
};

}  // namespace omd::logs

#endif  // OMD_LOGS_LOGS_SERVICE_H_

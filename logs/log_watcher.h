// Following services' logs (DIR/var/log/<svcname>.log, service/service_log.h) as
// they grow: the local side of log streaming. One thread for every follower: it
// waits on inotify (DIR/var/log) and an eventfd in one poll, reads what was
// appended to a followed log as soon as it is (IN_MODIFY), and hands the
// records to each of the service's subscribers. Each service followed has one
// open descriptor, its offset and the bytes after its last '\n' (they wait for
// the rest of their line). Rotation: when <svc>.log is no longer the file the
// watcher reads (renamed to <svc>.log.1, replaced, removed), that file is read
// to its end, then the new one from its start; a file shorter than what was
// read of it (truncated) is read again from its start. Every second, and after
// an inotify queue overflow, every followed log is checked again.
//
// A subscription's backlog is read on the watcher's thread too, after what was
// appended so far went to the existing subscribers, and up to exactly where the
// watcher's reading of the file is: the backlog and the live records meet with
// no gap and no repeat.
//
//   LogWatcher watcher({.root = root});
//   absl::StatusOr<uint64_t> id = watcher.Subscribe(
//       "web", 100, absl::InfinitePast(),
//       [](const std::vector<v1::LogRecord>& records) { ...; });
//   ...
//   watcher.Unsubscribe(*id);
#ifndef OMD_LOGS_LOG_WATCHER_H_
#define OMD_LOGS_LOG_WATCHER_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "posix/unique_fd.h"
#include "proto/omd.pb.h"
#include "sync/mutex.h"

namespace omd::logs {

class LogWatcher {
 public:
  struct Options {
    std::string root;  // the logs are in root/var/log (which need not exist yet)
  };
  using Callback = std::function<void(const std::vector<v1::LogRecord>& records)>;

  // Starts the watcher's thread.
  explicit LogWatcher(Options options);
  ~LogWatcher();  // Stop()
  LogWatcher(const LogWatcher&) = delete;
  LogWatcher& operator=(const LogWatcher&) = delete;

  // Stops the thread: no callback runs after it returns. Not from a callback.
  void Stop();

  // Follows svcname's log: `callback` is called once with the backlog (the last
  // `backlog` records at or after `since`, possibly none), then with every
  // record appended from then on, in the file's order, none lost or repeated,
  // across rotations. Always on the watcher's thread, one call at a time per
  // subscription. The log need not exist yet. INVALID_ARGUMENT for a bad name;
  // FAILED_PRECONDITION once stopped. A backlog that cannot be read (a file
  // system error) is logged and empty.
  absl::StatusOr<uint64_t> Subscribe(absl::string_view svcname, size_t backlog, absl::Time since,
                                     Callback callback);
  // After it returns the callback is not running (unless called from that very
  // callback, which then goes on to its end) and is not called again. An
  // unknown id is ignored.
  void Unsubscribe(uint64_t id);

  size_t subscriptions() const;
  // Services followed (their log open, or waited for).
  size_t followed_files() const;

 private:
  struct Subscription {
    std::string svcname;
    size_t backlog;
    absl::Time since;
    Callback callback;
  };
  struct LastFile {
    dev_t device = 0;
    ino_t inode = 0;
    bool known = false;
  };
  // A followed log: the watcher thread's alone.
  struct Followed {
    // The file read last (the one open, or the newest rotated file when the
    // log did not exist yet): rotated files newer than it are read before the
    // new log, so that two rotations between two looks lose nothing.
    LastFile last;
    posix::UniqueFd fd;
    dev_t device = 0;
    ino_t inode = 0;
    int64_t offset = 0;   // bytes read, `partial` included
    std::string partial;  // after the last '\n'
    // While no file is open (the log rotated away, not there again yet): the
    // file `last` names, read to its end at `finished_end`. A backlog then ends
    // there, not at whatever rotated files came after it, which are still to be
    // read live.
    posix::UniqueFd finished;
    int64_t finished_end = 0;
    std::vector<uint64_t> subscribers;  // in the order they came
  };

  void Run();
  void Wake();
  void WatchDirectory();
  void ReadEvents(std::vector<std::string>* names, bool* everything);
  void Refresh(const std::string& svcname, Followed& followed);
  bool Open(const std::string& path, Followed& followed, bool at_end);
  void Follow(const std::string& svcname, Followed& followed);
  void CatchUp(const std::string& svcname, Followed& followed);
  void FlushPartial(Followed& followed);
  void Finish(Followed& followed);
  void ReadAppended(const std::string& svcname, Followed& followed);
  void Deliver(Followed& followed, const std::vector<v1::LogRecord>& records);
  void ProcessReleased();
  void ProcessPending();
  void CountFollowed();

  const Options options_;
  const std::string directory_;
  posix::UniqueFd wake_;     // eventfd
  posix::UniqueFd inotify_;  // the watcher thread's
  int watch_ = -1;           // the watcher thread's
  std::vector<int> parent_watches_;           // the watcher thread's: ancestors of DIR/var/log
  std::map<std::string, Followed> followed_;  // the watcher thread's
  std::thread::id thread_id_;                 // set before any Subscribe

  sync::Mutex stop_mutex_;
  std::thread thread_ ABSL_GUARDED_BY(stop_mutex_);

  mutable sync::Mutex mutex_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mutex_) = 1;
  std::map<uint64_t, std::shared_ptr<Subscription>> subscriptions_ ABSL_GUARDED_BY(mutex_);
  std::deque<uint64_t> pending_ ABSL_GUARDED_BY(mutex_);  // backlogs to read
  std::vector<std::string> released_ ABSL_GUARDED_BY(mutex_);  // lost a subscriber
  uint64_t running_ ABSL_GUARDED_BY(mutex_) = 0;               // whose callback runs
  size_t followed_count_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace omd::logs

#endif  // OMD_LOGS_LOG_WATCHER_H_

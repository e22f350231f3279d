#include "logs/log_watcher.h"

#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "log/log.h"
#include "logs/log_files.h"
#include "logs/log_record.h"
#include "posix/unique_fd.h"
#include "proto/omd.pb.h"
#include "service/service_config.h"
#include "service/service_log.h"
#include "sync/mutex.h"

namespace omd::logs {
namespace {

constexpr size_t kReadChunk = 256 << 10;
// Bytes with no '\n' after them wait for the rest of their line up to this
// much (a writer's record is at most 64 KiB and a header); past it, they are
// read as a line.
constexpr size_t kMaxPartialBytes = 1 << 20;
// A record's line is found within this many bytes of a file's end.
constexpr size_t kMaxTailBytes = 128 << 10;
// A bound on following a log that rotates while its files are listed (each
// round is a rotation seen).
constexpr int kMaxCatchUpRounds = 10;
constexpr absl::Duration kRecheck = absl::Seconds(1);
constexpr uint32_t kWatchMask = IN_MODIFY | IN_CREATE | IN_MOVED_FROM | IN_MOVED_TO |
                                IN_DELETE | IN_MOVE_SELF | IN_DELETE_SELF;

}  // namespace

LogWatcher::LogWatcher(Options options)
    : options_(std::move(options)),
      directory_(absl::StrCat(options_.root, "/var/log")),
      wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      inotify_(inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) {
  if (!wake_.is_open() || !inotify_.is_open()) {
    // Without them the thread still polls every second.
    OMD_LOG(ERROR, "log watcher: cannot make its eventfd or inotify descriptor: %s",
            strerror(errno));
  }
  sync::MutexLock lock(&stop_mutex_);
  thread_ = std::thread([this] { Run(); });
  thread_id_ = thread_.get_id();
}

LogWatcher::~LogWatcher() { Stop(); }

void LogWatcher::Stop() {
  {
    sync::MutexLock lock(&mutex_);
    stopping_ = true;
  }
  Wake();
  sync::MutexLock lock(&stop_mutex_);
  if (thread_.joinable()) thread_.join();
}

void LogWatcher::Wake() {
  if (!wake_.is_open()) return;
  const uint64_t one = 1;
  // EAGAIN: the counter is already far from 0, the thread will wake.
  (void)!write(wake_.get(), &one, sizeof(one));
}

absl::StatusOr<uint64_t> LogWatcher::Subscribe(absl::string_view svcname, size_t backlog,
                                               absl::Time since, Callback callback) {
  if (absl::Status valid = service::ValidateServiceName(svcname); !valid.ok()) return valid;
  uint64_t id;
  {
    sync::MutexLock lock(&mutex_);
    if (stopping_) return absl::FailedPreconditionError("the log watcher is stopped");
    id = next_id_++;
    subscriptions_[id] = std::make_shared<Subscription>(
        Subscription{std::string(svcname), backlog, since, std::move(callback)});
    pending_.push_back(id);
  }
  Wake();
  return id;
}

void LogWatcher::Unsubscribe(uint64_t id) {
  {
    sync::MutexLock lock(&mutex_);
    auto it = subscriptions_.find(id);
    if (it == subscriptions_.end()) return;
    released_.push_back(it->second->svcname);
    subscriptions_.erase(it);
    // The watcher's own thread is running the callback that called this.
    if (std::this_thread::get_id() != thread_id_) {
      mutex_.Await([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return running_ != id; });
    }
  }
  Wake();
}

size_t LogWatcher::subscriptions() const {
  sync::MutexLock lock(&mutex_);
  return subscriptions_.size();
}

size_t LogWatcher::followed_files() const {
  sync::MutexLock lock(&mutex_);
  return followed_count_;
}

void LogWatcher::Run() {
  pthread_setname_np(pthread_self(), "omd-logwatch");
  absl::Time last_check = absl::Now();
  std::vector<std::string> names;
  while (true) {
    {
      sync::MutexLock lock(&mutex_);
      if (stopping_) break;
    }
    WatchDirectory();
    pollfd fds[2] = {{wake_.get(), POLLIN, 0}, {inotify_.get(), POLLIN, 0}};
    const absl::Duration left = std::max(absl::ZeroDuration(), last_check + kRecheck - absl::Now());
    const int ready = poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (ready < 0 && errno != EINTR) {
      OMD_LOG(ERROR, "log watcher: poll: %s", strerror(errno));
      absl::SleepFor(absl::Milliseconds(100));
    }
    if (ready > 0 && (fds[0].revents & POLLIN) != 0) {
      uint64_t count;
      (void)!read(wake_.get(), &count, sizeof(count));
    }
    bool everything = false;
    names.clear();
    if (ready > 0 && (fds[1].revents & POLLIN) != 0) ReadEvents(&names, &everything);
    if (absl::Now() >= last_check + kRecheck) {
      everything = true;
      last_check = absl::Now();
    }
    if (everything) {
      for (auto& [svcname, followed] : followed_) Refresh(svcname, followed);
    } else {
      std::sort(names.begin(), names.end());
      names.erase(std::unique(names.begin(), names.end()), names.end());
      for (const std::string& svcname : names) {
        auto it = followed_.find(svcname);
        if (it != followed_.end()) Refresh(svcname, it->second);
      }
    }
    ProcessReleased();
    ProcessPending();
  }
  followed_.clear();
  CountFollowed();
}

void LogWatcher::WatchDirectory() {
  if (watch_ >= 0 || !inotify_.is_open()) return;
  watch_ = inotify_add_watch(inotify_.get(), directory_.c_str(), kWatchMask);
  if (watch_ < 0) {
    // No log directory yet: its nearest ancestor that exists is watched for
    // the creation of the next one down, which wakes the thread to try again
    // (and it does at least every second). A path watched already keeps its
    // descriptor.
    std::string parent = directory_;
    while (true) {
      const size_t slash = parent.rfind('/');
      if (slash == std::string::npos) break;
      parent.resize(slash == 0 ? 1 : slash);
      const int parent_watch = inotify_add_watch(inotify_.get(), parent.c_str(),
                                                 IN_CREATE | IN_MOVED_TO | IN_ONLYDIR);
      if (parent_watch >= 0) {
        if (std::find(parent_watches_.begin(), parent_watches_.end(), parent_watch) ==
            parent_watches_.end()) {
          parent_watches_.push_back(parent_watch);
        }
        break;
      }
      if (parent.size() == 1) break;
    }
    return;
  }
  for (const int parent_watch : parent_watches_) inotify_rm_watch(inotify_.get(), parent_watch);
  parent_watches_.clear();
  // What was written before the watch began.
  for (auto& [svcname, followed] : followed_) Refresh(svcname, followed);
}

void LogWatcher::ReadEvents(std::vector<std::string>* names, bool* everything) {
  alignas(inotify_event) char buffer[64 << 10];
  while (true) {
    const ssize_t got = read(inotify_.get(), buffer, sizeof(buffer));
    if (got <= 0) return;  // EAGAIN: all read
    for (char* at = buffer; at < buffer + got;) {
      const inotify_event* event = reinterpret_cast<const inotify_event*>(at);
      at += sizeof(inotify_event) + event->len;
      if ((event->mask & IN_Q_OVERFLOW) != 0) *everything = true;
      if ((event->mask & (IN_IGNORED | IN_MOVE_SELF | IN_DELETE_SELF)) != 0 &&
          event->wd == watch_) {
        // The directory is gone or moved: watch whatever has its name again.
        if ((event->mask & IN_IGNORED) == 0) inotify_rm_watch(inotify_.get(), watch_);
        watch_ = -1;
        *everything = true;
        continue;
      }
      if (event->len == 0) continue;
      const absl::string_view name(event->name);
      absl::string_view svcname = name;
      if (absl::ConsumeSuffix(&svcname, ".log") && !svcname.empty()) {
        names->emplace_back(svcname);
      }
    }
  }
}

bool LogWatcher::Open(const std::string& path, Followed& followed, bool at_end) {
  followed.fd.Reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  followed.offset = 0;
  followed.partial.clear();
  followed.device = 0;
  followed.inode = 0;
  if (!followed.fd.is_open()) {
    if (errno != ENOENT) OMD_LOG(WARNING, "log watcher: cannot open %s: %s", path, strerror(errno));
    return false;
  }
  struct stat info;
  if (fstat(followed.fd.get(), &info) != 0) {
    OMD_LOG(WARNING, "log watcher: cannot stat %s: %s", path, strerror(errno));
    followed.fd.Reset();
    return false;
  }
  followed.device = info.st_dev;
  followed.inode = info.st_ino;
  if (!at_end || info.st_size == 0) return true;
  // From the end on, the bytes after the last '\n' waiting for their line.
  followed.offset = info.st_size;
  const int64_t from = std::max<int64_t>(0, info.st_size - static_cast<int64_t>(kMaxTailBytes));
  absl::StatusOr<std::string> tail =
      ReadFileRange(followed.fd.get(), from, static_cast<size_t>(info.st_size - from));
  if (!tail.ok()) return true;
  const size_t newline = tail->rfind('\n');
  if (newline != std::string::npos) {
    followed.partial = tail->substr(newline + 1);
  } else if (from == 0) {
    followed.partial = *tail;
  }
  return true;
}

void LogWatcher::Follow(const std::string& svcname, Followed& followed) {
  const std::string path = service::ServiceLogPath(options_.root, svcname);
  if (Open(path, followed, /*at_end=*/true)) {
    followed.last = {followed.device, followed.inode, true};
    return;
  }
  // No log yet: the rotated files there are (if any) are older than the
  // subscription; those that come later are not. Held open, it is where a
  // backlog ends, even if it rotates on.
  posix::UniqueFd newest(open(absl::StrCat(path, ".1").c_str(), O_RDONLY | O_CLOEXEC));
  struct stat info;
  if (newest.is_open() && fstat(newest.get(), &info) == 0) {
    followed.last = {info.st_dev, info.st_ino, true};
    followed.finished = std::move(newest);
    followed.finished_end = info.st_size;
  }
}

void LogWatcher::CatchUp(const std::string& svcname, Followed& followed) {
  const std::string path = service::ServiceLogPath(options_.root, svcname);
  for (int round = 0; round < kMaxCatchUpRounds; ++round) {
    // The rotated files newer than the last one read, newest first.
    absl::StatusOr<std::vector<FileIdentity>> listed = ListRotatedFiles(path);
    if (!listed.ok()) {
      OMD_LOG(WARNING, "log watcher: %s", listed.status().ToString());
      return;
    }
    std::vector<LastFile> newer;
    bool found = false;
    for (const FileIdentity& file : *listed) {
      if (followed.last.known && file.device == followed.last.device &&
          file.inode == followed.last.inode) {
        found = true;
        break;
      }
      newer.push_back({file.device, file.inode, true});
    }
    if (followed.last.known && !found && !newer.empty()) {
      // The last file read was removed, not rotated: which are newer is unknown.
      OMD_LOG(WARNING, "log watcher: %s's log was removed: its rotated files are not read", svcname);
      newer.clear();
    }
    bool moved = false;
    for (size_t i = newer.size(); i-- > 0;) {
      const std::string name = absl::StrCat(path, ".", i + 1);
      if (!Open(name, followed, /*at_end=*/false) || followed.device != newer[i].device ||
          followed.inode != newer[i].inode) {
        moved = true;  // rotated meanwhile: list them again
        break;
      }
      ReadAppended(svcname, followed);
      FlushPartial(followed);
      Finish(followed);
      followed.last = newer[i];
    }
    followed.fd.Reset();
    if (moved) continue;
    const LastFile before = followed.last;
    if (!Open(path, followed, /*at_end=*/false)) return;  // gone again: the next event
    // Rotated between the listing and the open: a file may be between them.
    struct stat info;
    const bool rotated = stat(absl::StrCat(path, ".1").c_str(), &info) == 0;
    const bool next = rotated ? (before.known && info.st_dev == before.device &&
                                 info.st_ino == before.inode) ||
                                    (info.st_dev == followed.device && info.st_ino == followed.inode)
                              : !before.known;
    if (next) {
      followed.last = {followed.device, followed.inode, true};
      followed.finished.Reset();
      followed.finished_end = 0;
      ReadAppended(svcname, followed);
      return;
    }
    followed.fd.Reset();
  }
  OMD_LOG(WARNING, "log watcher: %s's log rotates too fast to follow; read again in a second",
          svcname);
}

void LogWatcher::FlushPartial(Followed& followed) {
  if (followed.partial.empty()) return;
  const std::vector<v1::LogRecord> records = ParseLogRecords(followed.partial);
  followed.partial.clear();
  if (!records.empty()) Deliver(followed, records);
}

void LogWatcher::Finish(Followed& followed) {
  followed.finished = std::move(followed.fd);
  followed.finished_end = followed.offset;
  followed.fd.Reset();
  followed.offset = 0;
}

void LogWatcher::ReadAppended(const std::string& svcname, Followed& followed) {
  while (followed.fd.is_open()) {
    absl::StatusOr<std::string> chunk = ReadFileRange(followed.fd.get(), followed.offset, kReadChunk);
    if (!chunk.ok()) {
      OMD_LOG(WARNING, "log watcher: cannot read %s's log: %s", svcname,
              chunk.status().ToString());
      return;
    }
    if (chunk->empty()) return;
    followed.offset += static_cast<int64_t>(chunk->size());
    std::string text = std::move(followed.partial);
    followed.partial.clear();
    text.append(*chunk);
    const size_t newline = text.rfind('\n');
    size_t complete = newline == std::string::npos ? 0 : newline + 1;
    // Not waited for any longer: read as a line.
    if (text.size() - complete > kMaxPartialBytes) complete = text.size();
    followed.partial = text.substr(complete);
    text.resize(complete);
    if (!text.empty()) {
      const std::vector<v1::LogRecord> records = ParseLogRecords(text);
      if (!records.empty()) Deliver(followed, records);
    }
    if (chunk->size() < kReadChunk) return;
  }
}

void LogWatcher::Refresh(const std::string& svcname, Followed& followed) {
  ReadAppended(svcname, followed);
  const std::string path = service::ServiceLogPath(options_.root, svcname);
  struct stat info;
  const bool exists = stat(path.c_str(), &info) == 0;
  if (followed.fd.is_open()) {
    if (exists && info.st_dev == followed.device && info.st_ino == followed.inode) {
      struct stat open_info;
      if (fstat(followed.fd.get(), &open_info) == 0 && open_info.st_size < followed.offset) {
        // Truncated: read again from its start.
        followed.offset = 0;
        followed.partial.clear();
        ReadAppended(svcname, followed);
      }
      return;
    }
    // Rotated, replaced or removed: no writer appends to that file any more
    // (rotation holds the lock appenders share), so it is read to its end.
    ReadAppended(svcname, followed);
    FlushPartial(followed);
    Finish(followed);
  }
  if (exists) CatchUp(svcname, followed);
}

void LogWatcher::Deliver(Followed& followed, const std::vector<v1::LogRecord>& records) {
  for (const uint64_t id : followed.subscribers) {
    std::shared_ptr<Subscription> subscription;
    {
      sync::MutexLock lock(&mutex_);
      auto it = subscriptions_.find(id);
      if (it == subscriptions_.end() || stopping_) continue;
      subscription = it->second;
      running_ = id;
    }
    subscription->callback(records);
    // Unsubscribe may have dropped it: its callback ends here, before
    // Unsubscribe returns.
    subscription.reset();
    sync::MutexLock lock(&mutex_);
    running_ = 0;
  }
}

void LogWatcher::ProcessReleased() {
  std::vector<std::string> released;
  {
    sync::MutexLock lock(&mutex_);
    released.swap(released_);
  }
  if (released.empty()) return;
  std::sort(released.begin(), released.end());
  released.erase(std::unique(released.begin(), released.end()), released.end());
  for (const std::string& svcname : released) {
    auto it = followed_.find(svcname);
    if (it == followed_.end()) continue;
    std::vector<uint64_t>& subscribers = it->second.subscribers;
    {
      sync::MutexLock lock(&mutex_);
      subscribers.erase(std::remove_if(subscribers.begin(), subscribers.end(),
                                       [&](uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
                                         return subscriptions_.count(id) == 0;
                                       }),
                        subscribers.end());
    }
    if (subscribers.empty()) followed_.erase(it);  // closes its log
  }
  CountFollowed();
}

void LogWatcher::ProcessPending() {
  while (true) {
    uint64_t id;
    std::shared_ptr<Subscription> subscription;
    {
      sync::MutexLock lock(&mutex_);
      if (pending_.empty() || stopping_) break;
      id = pending_.front();
      pending_.pop_front();
      auto it = subscriptions_.find(id);
      if (it == subscriptions_.end()) continue;
      subscription = it->second;
    }
    const std::string svcname = subscription->svcname;
    auto [it, created] = followed_.try_emplace(svcname);
    Followed& followed = it->second;
    if (created) {
      Follow(svcname, followed);
    } else {
      Refresh(svcname, followed);  // what came so far, to the others
    }
    std::vector<v1::LogRecord> backlog;
    if (subscription->backlog > 0) {
      // Up to where the watcher's reading is: in the open file, or at the end
      // of the one read last when none is open.
      const bool open = followed.fd.is_open();
      absl::StatusOr<std::vector<v1::LogRecord>> read = ReadBacklogBefore(
          options_.root, svcname, open ? followed.fd.get() : followed.finished.get(),
          open ? followed.offset - static_cast<int64_t>(followed.partial.size())
               : followed.finished_end,
          subscription->backlog, subscription->since);
      if (read.ok()) {
        backlog = *std::move(read);
      } else {
        OMD_LOG(WARNING, "log watcher: cannot read %s's backlog: %s", svcname,
                read.status().ToString());
      }
    }
    bool subscribed = false;
    {
      sync::MutexLock lock(&mutex_);
      subscribed = subscriptions_.count(id) == 1 && !stopping_;
      if (subscribed) running_ = id;
    }
    if (subscribed) {
      subscription->callback(backlog);
      subscription.reset();  // as in Deliver
      sync::MutexLock lock(&mutex_);
      running_ = 0;
      // Unless it unsubscribed from its callback.
      if (subscriptions_.count(id) == 1) followed.subscribers.push_back(id);
    }
    if (followed.subscribers.empty()) followed_.erase(it);
    CountFollowed();
  }
}

void LogWatcher::CountFollowed() {
  sync::MutexLock lock(&mutex_);
  followed_count_ = followed_.size();
}

}  // namespace omd::logs

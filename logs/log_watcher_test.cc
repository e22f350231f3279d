#include "logs/log_watcher.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "config/atomic_file.h"
#include "gtest/gtest.h"
#include "logs/log_record.h"
#include "process/subprocess.h"
#include "proto/omd.pb.h"
#include "service/service_log.h"
#include "sync/mutex.h"
#include "testing/eventually.h"

namespace omd::logs {
namespace {

using omd::testing::Eventually;

constexpr char kChildRootVariable[] = "LOG_WATCHER_TEST_CHILD_ROOT";
constexpr int kChildRecords = 300;

std::string NewRoot() {
  static int count = 0;
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/watch", ++count, "-", getpid());
}

// What one subscription received: each call's records, in order.
class Received {
 public:
  LogWatcher::Callback Callback() {
    return [this](const std::vector<v1::LogRecord>& records) {
      sync::MutexLock lock(&mutex_);
      if (calls_ == 0) backlog_ = records.size();
      ++calls_;
      for (const v1::LogRecord& record : records) messages_.push_back(record.message());
      last_ = absl::Now();
    };
  }
  std::vector<std::string> messages() const {
    sync::MutexLock lock(&mutex_);
    return messages_;
  }
  size_t size() const {
    sync::MutexLock lock(&mutex_);
    return messages_.size();
  }
  int calls() const {
    sync::MutexLock lock(&mutex_);
    return calls_;
  }
  size_t backlog() const {
    sync::MutexLock lock(&mutex_);
    return backlog_;
  }
  absl::Time last() const {
    sync::MutexLock lock(&mutex_);
    return last_;
  }

 private:
  mutable sync::Mutex mutex_;
  int calls_ ABSL_GUARDED_BY(mutex_) = 0;
  size_t backlog_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<std::string> messages_ ABSL_GUARDED_BY(mutex_);
  absl::Time last_ ABSL_GUARDED_BY(mutex_);
};

std::string Message(const std::string& tag, int i) {
  return absl::StrCat(tag, " ", i, "\nsecond line of ", i);
}

void Append(const std::string& root, const std::string& tag, int from, int to,
            service::ServiceLog::Options options = {}) {
  service::ServiceLog log(root, "web", options);
  for (int i = from; i < to; ++i) {
    ASSERT_TRUE(log.Append(service::LogLevel::kInfo, Message(tag, i)).ok());
  }
}

std::vector<std::string> Messages(const std::string& tag, int from, int to) {
  std::vector<std::string> messages;
  for (int i = from; i < to; ++i) messages.push_back(Message(tag, i));
  return messages;
}

// Every record of the log's files, oldest first.
std::vector<std::string> FileMessages(const std::string& root) {
  const std::string path = service::ServiceLogPath(root, "web");
  int oldest = 0;
  struct stat info;
  while (stat(absl::StrCat(path, ".", oldest + 1).c_str(), &info) == 0) ++oldest;
  std::string text;
  for (int i = oldest; i >= 0; --i) {
    absl::StatusOr<std::string> file =
        config::ReadFileToString(i == 0 ? path : absl::StrCat(path, ".", i), 64 << 20);
    if (file.ok()) text += *file;
  }
  std::vector<std::string> messages;
  for (const v1::LogRecord& record : ParseLogRecords(text)) messages.push_back(record.message());
  return messages;
}

TEST(LogWatcherTest, BacklogThenLive) {
  const std::string root = NewRoot();
  Append(root, "r", 0, 10);
  LogWatcher watcher({.root = root});
  Received received;
  absl::StatusOr<uint64_t> id =
      watcher.Subscribe("web", 5, absl::InfinitePast(), received.Callback());
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(Eventually([&] { return received.calls() == 1; }));
  EXPECT_EQ(received.backlog(), 5u);
  EXPECT_EQ(received.messages(), Messages("r", 5, 10));
  Append(root, "r", 10, 20);
  ASSERT_TRUE(Eventually([&] { return received.size() == 15; }));
  EXPECT_EQ(received.messages(), Messages("r", 5, 20));
  EXPECT_EQ(watcher.subscriptions(), 1u);
  EXPECT_EQ(watcher.followed_files(), 1u);
  watcher.Unsubscribe(*id);
  EXPECT_EQ(watcher.subscriptions(), 0u);
  EXPECT_TRUE(Eventually([&] { return watcher.followed_files() == 0; }));
}

TEST(LogWatcherTest, EmptyBacklogAndSince) {
  const std::string root = NewRoot();
  Append(root, "old", 0, 3);
  LogWatcher watcher({.root = root});
  Received none, since_now;
  ASSERT_TRUE(watcher.Subscribe("web", 0, absl::InfinitePast(), none.Callback()).ok());
  ASSERT_TRUE(
      watcher.Subscribe("web", 100, absl::Now() + absl::Seconds(1), since_now.Callback()).ok());
  ASSERT_TRUE(Eventually([&] { return none.calls() == 1 && since_now.calls() == 1; }));
  EXPECT_EQ(none.size(), 0u);
  EXPECT_EQ(since_now.size(), 0u);
  Append(root, "new", 0, 2);
  ASSERT_TRUE(Eventually([&] { return none.size() == 2 && since_now.size() == 2; }));
  EXPECT_EQ(none.messages(), Messages("new", 0, 2));
}

TEST(LogWatcherTest, BadNamesAndStopped) {
  const std::string root = NewRoot();
  LogWatcher watcher({.root = root});
  Received received;
  for (const char* name : {"", "../web", "Web", "a/b", "node"}) {
    absl::StatusOr<uint64_t> id =
        watcher.Subscribe(name, 1, absl::InfinitePast(), received.Callback());
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(watcher.subscriptions(), 0u);
  watcher.Unsubscribe(12345);  // unknown: ignored
  watcher.Stop();
  EXPECT_EQ(watcher.Subscribe("web", 1, absl::InfinitePast(), received.Callback()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(received.calls(), 0);
}

TEST(LogWatcherTest, TwoSubscribers) {
  const std::string root = NewRoot();
  LogWatcher watcher({.root = root});
  Received first, second;
  ASSERT_TRUE(watcher.Subscribe("web", 10, absl::InfinitePast(), first.Callback()).ok());
  ASSERT_TRUE(Eventually([&] { return first.calls() == 1; }));
  Append(root, "a", 0, 3);
  ASSERT_TRUE(Eventually([&] { return first.size() == 3; }));
  ASSERT_TRUE(watcher.Subscribe("web", 10, absl::InfinitePast(), second.Callback()).ok());
  ASSERT_TRUE(Eventually([&] { return second.calls() == 1; }));
  EXPECT_EQ(second.messages(), Messages("a", 0, 3));
  Append(root, "a", 3, 6);
  ASSERT_TRUE(Eventually([&] { return first.size() == 6 && second.size() == 6; }));
  EXPECT_EQ(first.messages(), Messages("a", 0, 6));
  EXPECT_EQ(second.messages(), Messages("a", 0, 6));
  EXPECT_EQ(watcher.followed_files(), 1u);
}

// Run by ThreadsAndProcessesInFileOrder, in a process of its own.
TEST(LogWatcherChild, Append) {
  const char* root = std::getenv(kChildRootVariable);
  if (root == nullptr) GTEST_SKIP() << "only in a child of ThreadsAndProcessesInFileOrder";
  Append(root, absl::StrCat("process", getpid()), 0, kChildRecords,
         {.max_bytes = 4096, .keep = 1000});
}

TEST(LogWatcherTest, ThreadsAndProcessesInFileOrder) {
  const std::string root = NewRoot();
  LogWatcher watcher({.root = root});
  Received received;
  ASSERT_TRUE(watcher.Subscribe("web", 0, absl::InfinitePast(), received.Callback()).ok());
  ASSERT_TRUE(Eventually([&] { return received.calls() == 1; }));
  const service::ServiceLog::Options options = {.max_bytes = 4096, .keep = 1000};
  const std::string self = process::CurrentExecutablePath();
  ASSERT_FALSE(self.empty());
  absl::StatusOr<process::ProcessResult> child;
  std::vector<std::thread> writers;
  writers.emplace_back([&] {
    process::ProcessOptions process_options;
    process_options.argv = {"env", absl::StrCat(kChildRootVariable, "=", root), self,
                            "--gtest_filter=LogWatcherChild.Append"};
    process_options.timeout = absl::Seconds(120);
    child = process::RunProcess(process_options);
  });
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back(Append, root, absl::StrCat("thread", t), 0, 300, options);
  }
  for (std::thread& writer : writers) writer.join();
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_EQ(child->exit_code, 0) << child->stdout_text << child->stderr_text;
  const size_t total = 4 * 300 + kChildRecords;
  ASSERT_TRUE(Eventually([&] { return received.size() >= total; }, absl::Seconds(60)))
      << received.size();
  const std::vector<std::string> in_files = FileMessages(root);
  ASSERT_EQ(in_files.size(), total);
  const std::vector<std::string> got = received.messages();
  EXPECT_EQ(got.size(), in_files.size());
  for (size_t i = 0; i < std::min(got.size(), in_files.size()); ++i) {
    if (got[i] != in_files[i]) {
      ADD_FAILURE() << "first difference at " << i << " of " << in_files.size() << ": got "
                    << got[i] << " where the files have " << in_files[i];
      break;
    }
  }
}

TEST(LogWatcherTest, RotationUnderAContinuousWriter) {
  const std::string root = NewRoot();
  LogWatcher watcher({.root = root});
  Received received;
  ASSERT_TRUE(watcher.Subscribe("web", 0, absl::InfinitePast(), received.Callback()).ok());
  ASSERT_TRUE(Eventually([&] { return received.calls() == 1; }));
  constexpr int kRecords = 5000;
  Append(root, "r", 0, kRecords, {.max_bytes = 2048, .keep = 1000});
  ASSERT_TRUE(Eventually([&] { return received.size() >= kRecords; }, absl::Seconds(60)))
      << received.size();
  struct stat info;
  ASSERT_EQ(stat((service::ServiceLogPath(root, "web") + ".100").c_str(), &info), 0);
  EXPECT_EQ(received.messages(), Messages("r", 0, kRecords));
}

TEST(LogWatcherTest, SubscribeWhileAWriterAppends) {
  const std::string root = NewRoot();
  LogWatcher watcher({.root = root});
  constexpr int kRecords = 3000;
  std::atomic<int> written{0};
  std::thread writer([&] {
    service::ServiceLog log(root, "web", {.max_bytes = 4096, .keep = 1000});
    for (int i = 0; i < kRecords; ++i) {
      ASSERT_TRUE(log.Append(service::LogLevel::kInfo, Message("r", i)).ok());
      written = i + 1;
    }
  });
  // Several subscriptions at points along the way: each one's backlog (all of
  // the file, or its last 100 records) and live records meet exactly.
  std::vector<std::unique_ptr<Received>> all(6), last(6);
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_TRUE(Eventually([&] { return written >= static_cast<int>(200 + 400 * i); }));
    all[i] = std::make_unique<Received>();
    last[i] = std::make_unique<Received>();
    ASSERT_TRUE(watcher.Subscribe("web", 1000000, absl::InfinitePast(), all[i]->Callback()).ok());
    ASSERT_TRUE(watcher.Subscribe("web", 100, absl::InfinitePast(), last[i]->Callback()).ok());
  }
  writer.join();
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_TRUE(Eventually([&] { return all[i]->size() >= kRecords; }, absl::Seconds(60)))
        << i << ": " << all[i]->size();
    EXPECT_EQ(all[i]->messages(), Messages("r", 0, kRecords)) << i;
    EXPECT_GE(all[i]->backlog(), 200u) << i;
    EXPECT_EQ(last[i]->backlog(), 100u) << i;
    const int from = kRecords - static_cast<int>(last[i]->size());
    ASSERT_TRUE(Eventually([&] { return last[i]->messages().back() == Message("r", kRecords - 1); }));
    EXPECT_EQ(last[i]->messages(), Messages("r", from, kRecords)) << i;
  }
}

// The log rotates away between the watcher's reading of it and its look at
// whether it is still there; before the log is there again, a subscription
// comes and another file rotates in after the one read last. The backlog ends
// where the watcher's reading is (the end of the file read last), and that
// other file comes live, once.
TEST(LogWatcherTest, BacklogWhileTheLogIsRotatedAway) {
  const std::string root = NewRoot();
  const std::string path = service::ServiceLogPath(root, "web");
  const std::string first = absl::StrCat(path, ".1");
  const std::string second = absl::StrCat(path, ".2");
  Append(root, "a", 0, 3);
  LogWatcher watcher({.root = root});
  Received early, late;
  LogWatcher::Callback record = early.Callback();
  std::atomic<bool> subscribed{false};
  // On the watcher's thread, in the middle of its look at the log.
  ASSERT_TRUE(watcher
                  .Subscribe("web", 0, absl::InfinitePast(),
                             [&](const std::vector<v1::LogRecord>& records) {
                               record(records);
                               for (const v1::LogRecord& each : records) {
                                 if (each.message() != "go") continue;
                                 ASSERT_EQ(rename(path.c_str(), first.c_str()), 0);
                                 subscribed = watcher
                                                  .Subscribe("web", 1000, absl::InfinitePast(),
                                                             late.Callback())
                                                  .ok();
                                 Append(root, "b", 0, 3);
                                 ASSERT_EQ(rename(first.c_str(), second.c_str()), 0);
                                 ASSERT_EQ(rename(path.c_str(), first.c_str()), 0);
                               }
                             })
                  .ok());
  ASSERT_TRUE(Eventually([&] { return early.calls() == 1; }));
  ASSERT_TRUE(service::ServiceLog(root, "web").Append(service::LogLevel::kInfo, "go").ok());
  ASSERT_TRUE(Eventually([&] { return late.calls() >= 1; }));
  EXPECT_TRUE(subscribed);
  Append(root, "c", 0, 2);  // a new log, after b's file
  ASSERT_TRUE(Eventually([&] { return early.size() >= 1 + 3 + 2; })) << early.size();
  ASSERT_TRUE(Eventually([&] { return late.size() >= 3 + 1 + 3 + 2; })) << late.size();
  std::vector<std::string> expected = Messages("a", 0, 3);
  expected.push_back("go");
  EXPECT_EQ(late.backlog(), expected.size());
  for (const std::string& message : Messages("b", 0, 3)) expected.push_back(message);
  for (const std::string& message : Messages("c", 0, 2)) expected.push_back(message);
  EXPECT_EQ(late.messages(), expected);
  EXPECT_EQ(early.messages(), std::vector<std::string>(expected.begin() + 3, expected.end()));
}

TEST(LogWatcherTest, UnsubscribeFromAnotherThread) {
  const std::string root = NewRoot();
  LogWatcher watcher({.root = root});
  std::atomic<bool> inside{false};
  std::atomic<int> calls{0};
  absl::StatusOr<uint64_t> id = watcher.Subscribe(
      "web", 0, absl::InfinitePast(), [&](const std::vector<v1::LogRecord>& records) {
        inside = true;
        ++calls;
        if (!records.empty()) absl::SleepFor(absl::Milliseconds(200));  // a slow reader
        inside = false;
      });
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(Eventually([&] { return calls == 1; }));
  Append(root, "r", 0, 1);
  ASSERT_TRUE(Eventually([&] { return inside.load(); }, absl::Seconds(20)));
  watcher.Unsubscribe(*id);  // waits for the callback's end
  EXPECT_FALSE(inside);
  const int seen = calls;
  // Another subscriber shows when later records were read.
  Received other;
  ASSERT_TRUE(watcher.Subscribe("web", 0, absl::InfinitePast(), other.Callback()).ok());
  ASSERT_TRUE(Eventually([&] { return other.calls() == 1; }));
  Append(root, "r", 1, 3);
  ASSERT_TRUE(Eventually([&] { return other.size() == 2; }));
  EXPECT_EQ(calls, seen);
  EXPECT_EQ(watcher.subscriptions(), 1u);
}

TEST(LogWatcherTest, UnsubscribeFromItsCallback) {
  const std::string root = NewRoot();
  LogWatcher watcher({.root = root});
  std::atomic<int> calls{0};
  std::atomic<uint64_t> own{0};
  absl::StatusOr<uint64_t> id = watcher.Subscribe(
      "web", 0, absl::InfinitePast(), [&](const std::vector<v1::LogRecord>& records) {
        if (++calls == 2) watcher.Unsubscribe(own);
      });
  ASSERT_TRUE(id.ok());
  own = *id;
  ASSERT_TRUE(Eventually([&] { return calls == 1; }));
  Append(root, "r", 0, 1);
  ASSERT_TRUE(Eventually([&] { return calls == 2; }));
  EXPECT_TRUE(Eventually([&] { return watcher.subscriptions() == 0 && watcher.followed_files() == 0; }));
  Received other;
  ASSERT_TRUE(watcher.Subscribe("web", 0, absl::InfinitePast(), other.Callback()).ok());
  ASSERT_TRUE(Eventually([&] { return other.calls() == 1; }));
  Append(root, "r", 1, 3);
  ASSERT_TRUE(Eventually([&] { return other.size() == 2; }));
  EXPECT_EQ(calls, 2);

  // And from its backlog's call.
  std::atomic<uint64_t> second{0};
  std::atomic<int> backlog_calls{0};
  absl::StatusOr<uint64_t> second_id = watcher.Subscribe(
      "web", 10, absl::InfinitePast(), [&](const std::vector<v1::LogRecord>&) {
        // The id is known once Subscribe returned.
        while (second == 0) absl::SleepFor(absl::Milliseconds(1));
        ++backlog_calls;
        watcher.Unsubscribe(second);
      });
  ASSERT_TRUE(second_id.ok());
  second = *second_id;
  ASSERT_TRUE(Eventually([&] { return backlog_calls == 1; }));
  Append(root, "r", 3, 5);
  ASSERT_TRUE(Eventually([&] { return other.size() == 4; }));
  EXPECT_EQ(backlog_calls, 1);
  EXPECT_EQ(watcher.subscriptions(), 1u);
}

TEST(LogWatcherTest, AThousandSubscribers) {
  const std::string root = NewRoot();
  LogWatcher watcher({.root = root});
  constexpr int kSubscribers = 1000;
  std::vector<std::unique_ptr<Received>> received;
  for (int i = 0; i < kSubscribers; ++i) {
    received.push_back(std::make_unique<Received>());
    ASSERT_TRUE(
        watcher.Subscribe("web", 0, absl::InfinitePast(), received.back()->Callback()).ok());
  }
  const auto all = [&](auto condition) {
    return std::all_of(received.begin(), received.end(),
                       [&](const std::unique_ptr<Received>& r) { return condition(*r); });
  };
  ASSERT_TRUE(Eventually([&] { return all([](const Received& r) { return r.calls() == 1; }); },
                         absl::Seconds(60)));
  EXPECT_EQ(watcher.subscriptions(), static_cast<size_t>(kSubscribers));
  EXPECT_EQ(watcher.followed_files(), 1u);
  for (int round = 0; round < 3; ++round) {
    const absl::Time before = absl::Now();
    Append(root, "r", round, round + 1);
    ASSERT_TRUE(Eventually(
        [&] { return all([&](const Received& r) { return r.size() == static_cast<size_t>(round + 1); }); },
        absl::Seconds(60)));
    absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
    for (const auto& r : received) {
      first = std::min(first, r->last());
      last = std::max(last, r->last());
    }
    std::printf("1000 subscribers, one record: first callback %.3f ms, last %.3f ms after the append began\n",
                absl::ToDoubleMilliseconds(first - before),
                absl::ToDoubleMilliseconds(last - before));
  }
  for (const auto& r : received) EXPECT_EQ(r->messages(), Messages("r", 0, 3));
}

TEST(LogWatcherTest, LogCreatedAfterSubscribing) {
  // No var/log at all yet, then one with the log created in it.
  const std::string root = NewRoot();
  LogWatcher watcher({.root = root});
  Received received, other;
  ASSERT_TRUE(watcher.Subscribe("web", 10, absl::InfinitePast(), received.Callback()).ok());
  ASSERT_TRUE(watcher.Subscribe("db", 10, absl::InfinitePast(), other.Callback()).ok());
  ASSERT_TRUE(Eventually([&] { return received.calls() == 1 && other.calls() == 1; }));
  EXPECT_EQ(watcher.followed_files(), 2u);
  Append(root, "r", 0, 3);
  ASSERT_TRUE(Eventually([&] { return received.size() == 3; }));
  EXPECT_EQ(received.messages(), Messages("r", 0, 3));
  service::ServiceLog db(root, "db");
  ASSERT_TRUE(db.Append(service::LogLevel::kError, "db's first").ok());
  ASSERT_TRUE(Eventually([&] { return other.size() == 1; }));
  EXPECT_EQ(other.messages(), std::vector<std::string>{"db's first"});
  EXPECT_EQ(received.size(), 3u);
}

TEST(LogWatcherTest, Truncation) {
  const std::string root = NewRoot();
  Append(root, "before", 0, 20);
  LogWatcher watcher({.root = root});
  Received received;
  ASSERT_TRUE(watcher.Subscribe("web", 0, absl::InfinitePast(), received.Callback()).ok());
  ASSERT_TRUE(Eventually([&] { return received.calls() == 1; }));
  ASSERT_EQ(truncate(service::ServiceLogPath(root, "web").c_str(), 0), 0);
  // Shorter than what was read: seen as truncated whenever the watcher looks.
  Append(root, "after", 0, 1);
  ASSERT_TRUE(Eventually([&] { return received.size() == 1; }));
  Append(root, "after", 1, 30);
  ASSERT_TRUE(Eventually([&] { return received.size() == 30; }));
  EXPECT_EQ(received.messages(), Messages("after", 0, 30));
}

}  // namespace
}  // namespace omd::logs

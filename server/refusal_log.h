// Refused messages, counted per sender and logged as a summary: at most one line
// per sender per interval, and a bounded number of lines per interval in all
// (past it, the remaining senders share one line).
//
// A flood of invalid messages, with rotating names and sources, must not become
// a flood of log lines (each one a formatted string and a write(2)): the first
// refusal of a sender is logged at once, so an operator sees it start; later
// ones are counted and summed up by Flush, which the daemon calls every second.
//
//   RefusalLog refusals({});
//   refusals.Record(sender, absl::UnauthenticatedError("bad tag"), absl::Now());
//   ... every second: refusals.Flush(absl::Now());
#ifndef OMD_SERVER_REFUSAL_LOG_H_
#define OMD_SERVER_REFUSAL_LOG_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/blacklist.h"
#include "sync/mutex.h"

namespace omd::server {

class RefusalLog {
 public:
  struct Options {
    absl::Duration interval = absl::Seconds(10);  // per sender, between lines
    size_t max_senders = 1024;                    // tracked; beyond, summed as one
    size_t max_lines_per_interval = 20;           // in all
    // Where lines go; default: OMD_LOG(WARNING, ...).
    std::function<void(absl::string_view line)> write;
  };

  explicit RefusalLog(Options options);

  void Record(const Sender& sender, const absl::Status& reason, absl::Time now);
  // Summary lines for the senders refused since their last line, if due.
  void Flush(absl::Time now);

  uint64_t refused() const;

 private:
  struct Tally {
    uint64_t since_line = 0;
    absl::Status last_reason;  // formatted only when a line is written
    absl::Time last_line = absl::InfinitePast();
  };

  // Whether one more line fits this interval's allowance.
  bool TakeLine(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const Options options_;
  mutable sync::Mutex mutex_;
  absl::flat_hash_map<Sender, Tally> tallies_ ABSL_GUARDED_BY(mutex_);
  Tally overflow_ ABSL_GUARDED_BY(mutex_);  // senders beyond max_senders
  uint64_t refused_ ABSL_GUARDED_BY(mutex_) = 0;
  absl::Time window_start_ ABSL_GUARDED_BY(mutex_) = absl::InfinitePast();
  size_t lines_in_window_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace omd::server

#endif  // OMD_SERVER_REFUSAL_LOG_H_

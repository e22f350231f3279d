#include "server/refusal_log.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "log/log.h"

namespace omd::server {

RefusalLog::RefusalLog(Options options) : options_(std::move(options)) {}

bool RefusalLog::TakeLine(absl::Time now) {
  if (now - window_start_ >= options_.interval) {
    window_start_ = now;
    lines_in_window_ = 0;
  }
  if (lines_in_window_ >= options_.max_lines_per_interval) return false;
  ++lines_in_window_;
  return true;
}

void RefusalLog::Record(const Sender& sender, const absl::Status& reason, absl::Time now) {
  std::string line;
  {
    sync::MutexLock lock(&mutex_);
    ++refused_;
    Tally* tally = nullptr;
    auto it = tallies_.find(sender);
    if (it != tallies_.end()) {
      tally = &it->second;
    } else if (tallies_.size() < options_.max_senders) {
      tally = &tallies_[sender];
    } else {
      tally = &overflow_;
    }
    if (tally->since_line == 0 && now - tally->last_line >= options_.interval &&
        tally != &overflow_ && TakeLine(now)) {
      tally->last_line = now;
      line = absl::StrCat("refused a message from ", sender.ToString(), ": ", reason.ToString());
    } else {
      ++tally->since_line;
      tally->last_reason = reason;
    }
  }
  if (line.empty()) return;
  if (options_.write) {
    options_.write(line);
  } else {
    OMD_LOG(WARNING, "%s", line);
  }
}

void RefusalLog::Flush(absl::Time now) {
  std::vector<std::string> lines;
  {
    sync::MutexLock lock(&mutex_);
    uint64_t rest_senders = 0;
    uint64_t rest_messages = 0;
    for (auto it = tallies_.begin(); it != tallies_.end();) {
      Tally& tally = it->second;
      if (tally.since_line > 0 && now - tally.last_line >= options_.interval) {
        if (TakeLine(now)) {
          lines.push_back(absl::StrFormat(
              "refused %d more message(s) from %s since %s (last: %s)", tally.since_line,
              it->first.ToString(),
              absl::FormatTime("%H:%M:%S", tally.last_line, absl::UTCTimeZone()),
              tally.last_reason.ToString()));
        } else {
          ++rest_senders;
          rest_messages += tally.since_line;
        }
        tally.since_line = 0;
        tally.last_line = now;
      }
      // Quiet senders are forgotten, which keeps the table to active ones.
      if (tally.since_line == 0 && now - tally.last_line >= 2 * options_.interval) {
        tallies_.erase(it++);
      } else {
        ++it;
      }
    }
    if (overflow_.since_line > 0 && now - overflow_.last_line >= options_.interval) {
      ++rest_senders;
      rest_messages += overflow_.since_line;
      overflow_.since_line = 0;
      overflow_.last_line = now;
    }
    if (rest_senders > 0) {
      // Past the allowance of lines, the remaining senders share one.
      lines.push_back(absl::StrFormat("refused %d message(s) from %d more sender(s)",
                                      rest_messages, rest_senders));
    }
  }
  for (const std::string& line : lines) {
    if (options_.write) {
      options_.write(line);
    } else {
      OMD_LOG(WARNING, "%s", line);
    }
  }
}

uint64_t RefusalLog::refused() const {
  sync::MutexLock lock(&mutex_);
  return refused_;
}

}  // namespace omd::server

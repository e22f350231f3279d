#include "logs/log_merger.h"

#include <algorithm>
#include <utility>

namespace omd::logs {

LogMerger::LogMerger(std::vector<std::string> sources, Options options) : options_(options) {
  for (std::string& name : sources) {
    Source& source = sources_.emplace_back();
    source.name = std::move(name);
  }
}

LogMerger::Source* LogMerger::Find(absl::string_view name) {
  for (Source& source : sources_) {
    if (source.name == name) return &source;
  }
  return nullptr;
}

void LogMerger::Add(absl::string_view name, std::vector<v1::LogRecord> records,
                    absl::Time arrived) {
  Source* source = Find(name);
  if (source == nullptr) return;
  for (v1::LogRecord& record : records) {
    source->last_key = std::max(source->last_key, record.time_unix_ms());
    source->records.push_back(Waiting{std::move(record), source->last_key, arrived});
    ++waiting_;
  }
}

void LogMerger::End(absl::string_view name) {
  if (Source* source = Find(name)) source->open = false;
}

void LogMerger::Ready(absl::string_view name) {
  if (Source* source = Find(name)) source->ready = true;
}

void LogMerger::Reopen(absl::string_view name) {
  if (Source* source = Find(name)) {
    source->open = true;
    source->ready = false;
  }
}

int LogMerger::Oldest() const {
  int oldest = -1;
  for (int i = 0; i < static_cast<int>(sources_.size()); ++i) {
    const std::deque<Waiting>& records = sources_[i].records;
    if (records.empty()) continue;
    if (oldest < 0 || records.front().key < sources_[oldest].records.front().key) oldest = i;
  }
  return oldest;
}

std::vector<v1::LogRecord> LogMerger::Take(absl::Time now) {
  std::vector<v1::LogRecord> out;
  for (int oldest = Oldest(); oldest >= 0; oldest = Oldest()) {
    Source& source = sources_[oldest];
    // A silent open source may still send something older: until its backlog
    // is in, or else until the head has waited long enough for it.
    bool backlog_missing = false;
    bool others_have_spoken = true;
    for (const Source& other : sources_) {
      if (&other == &source || !other.open) continue;
      backlog_missing |= !other.ready;
      others_have_spoken &= !other.records.empty();
    }
    if (backlog_missing ||
        (!others_have_spoken && now < source.records.front().arrived + options_.lateness)) {
      break;
    }
    out.push_back(std::move(source.records.front().record));
    source.records.pop_front();
    --waiting_;
  }
  return out;
}

std::optional<absl::Time> LogMerger::NextDeadline() const {
  const int oldest = Oldest();
  if (oldest < 0) return std::nullopt;
  // Waiting for a backlog has no deadline: its arrival, or its end, is the next
  // event.
  for (int i = 0; i < static_cast<int>(sources_.size()); ++i) {
    if (i != oldest && sources_[i].open && !sources_[i].ready) return std::nullopt;
  }
  return sources_[oldest].records.front().arrived + options_.lateness;
}

bool LogMerger::done() const {
  return waiting_ == 0 && std::none_of(sources_.begin(), sources_.end(),
                                       [](const Source& source) { return source.open; });
}

size_t LogMerger::waiting() const { return waiting_; }

}  // namespace omd::logs

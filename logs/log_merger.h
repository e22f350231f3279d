// Merges the log records of several sources (one per node), each in its own
// time order, into one time order: a k-way merge over the sources' heads, so a
// record comes out as soon as it is known to be the oldest, never after a sort
// of everything.
//
// A record is known to be the oldest when every other open source has a record
// waiting (the merge picks the oldest head), or, while some open source has
// nothing waiting, once it has waited `lateness` here: a record that source
// wrote before then would have arrived by now. That holds for live records
// only: a source whose backlog has not all arrived (not Ready) holds the others
// back for as long as it takes. Records arriving later than that still come
// out, as soon as they can: never dropped.
//
//   LogMerger merger({"n1", "n2"}, LogMerger::Options());
//   merger.Add("n1", records, absl::Now());
//   merger.End("n2");                       // its stream is over
//   std::vector<v1::LogRecord> out = merger.Take(absl::Now());
//   std::optional<absl::Time> next = merger.NextDeadline();  // when to Take again
#ifndef OMD_LOGS_LOG_MERGER_H_
#define OMD_LOGS_LOG_MERGER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <climits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/omd.pb.h"

namespace omd::logs {

class LogMerger {
 public:
  struct Options {
    // How long a record waits for a silent source.
    absl::Duration lateness = absl::Milliseconds(5);
  };

  // The sources, open; names not listed are ignored by Add.
  LogMerger(std::vector<std::string> sources, Options options);

  // Records from `source`, in its time order (a record older than its source's
  // previous one is taken as just as old as that one: each source's order is
  // kept), arrived here at `arrived`.
  void Add(absl::string_view source, std::vector<v1::LogRecord> records, absl::Time arrived);
  // `source`'s backlog has all been added: from now on it holds the others back
  // for `lateness` at most.
  void Ready(absl::string_view source);
  // `source` sends no more, for now: it no longer holds the others back.
  void End(absl::string_view source);
  // `source` sends again (a follow reconnected to it), its backlog first.
  void Reopen(absl::string_view source);

  // The records that can come out at `now`, oldest first.
  std::vector<v1::LogRecord> Take(absl::Time now);
  // When records waiting for a silent source may come out; none if nothing
  // waits.
  std::optional<absl::Time> NextDeadline() const;

  // Every source ended, and nothing waits.
  bool done() const;
  size_t waiting() const;

 private:
  struct Waiting {
    v1::LogRecord record;
    int64_t key;          // its time, or its source's previous record's if older
    absl::Time arrived;   // here
  };
  struct Source {
    std::string name;
    bool open = true;
    bool ready = false;  // its backlog is in
    int64_t last_key = INT64_MIN;
    std::deque<Waiting> records;
  };

  // The index of the source whose head is the oldest (on a tie, the first
  // listed); -1 if nothing waits.
  int Oldest() const;

  Source* Find(absl::string_view name);

  const Options options_;
  std::vector<Source> sources_;
  size_t waiting_ = 0;
};

}  // namespace omd::logs

#endif  // OMD_LOGS_LOG_MERGER_H_

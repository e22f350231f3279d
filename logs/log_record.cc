#include "logs/log_record.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "proto/omd.pb.h"
#include "service/service_log.h"

namespace omd::logs {
namespace {

constexpr absl::string_view kCut = "...";
constexpr absl::string_view kLevels[] = {"DEBUG", "INFO", "WARNING", "ERROR"};


int Digits(absl::string_view line, size_t at, size_t count) {
  int value = 0;
  for (size_t i = at; i < at + count; ++i) value = value * 10 + (line[i] - '0');
  return value;
}

struct Header {
  int64_t time_unix_ms = 0;
  absl::string_view level;
  absl::string_view message;  // the first line's
};

bool ParseHeader(absl::string_view line, const absl::TimeZone& zone, Header* header) {
  if (!service::HasRecordShape(line)) return false;
  const int year = Digits(line, 0, 4), month = Digits(line, 5, 2), day = Digits(line, 8, 2);
  const int hour = Digits(line, 11, 2), minute = Digits(line, 14, 2);
  const int second = Digits(line, 17, 2), millis = Digits(line, 20, 3);
  // CivilSecond normalizes (February 30 is March 2): a date that moved was invalid.
  const absl::CivilSecond civil(year, month, day, hour, minute, second);
  if (civil.year() != year || civil.month() != month || civil.day() != day ||
      civil.hour() != hour || civil.minute() != minute || civil.second() != second) {
    return false;
  }
  absl::string_view rest = line.substr(service::kRecordShape.size());
  if (rest.empty() || rest[0] != ' ') return false;
  rest.remove_prefix(1);
  absl::string_view level;
  for (absl::string_view known : kLevels) {
    if (rest.size() >= known.size() + 2 && rest.substr(0, known.size()) == known &&
        rest.substr(known.size(), 2) == " |") {
      level = known;
      break;
    }
  }
  if (level.empty()) return false;
  rest.remove_prefix(level.size() + 2);
  // "LEVEL | message"; an empty message may have lost its trailing space.
  if (!rest.empty()) {
    if (rest[0] != ' ') return false;
    rest.remove_prefix(1);
  }
  const absl::TimeZone::TimeInfo info = zone.At(civil);
  header->time_unix_ms = absl::ToUnixMillis(info.pre) + millis;
  header->level = level;
  header->message = rest;
  return true;
}

// Appends `text` to `message`, up to kMaxLogMessageBytes; true when it was cut.
void AppendCapped(absl::string_view text, bool* cut, std::string* message) {
  if (*cut) return;
  const size_t room = kMaxLogMessageBytes - kCut.size();
  if (message->size() + text.size() <= room) {
    message->append(text.data(), text.size());
    return;
  }
  message->append(text.data(), room - message->size());
  message->append(kCut.data(), kCut.size());
  *cut = true;
}

}  // namespace

bool StartsRecord(absl::string_view line) {
  Header header;
  return ParseHeader(line, absl::LocalTimeZone(), &header);
}

std::vector<v1::LogRecord> ParseLogRecords(absl::string_view text) {
  std::vector<v1::LogRecord> records;
  const absl::TimeZone zone = absl::LocalTimeZone();
  std::string* message = nullptr;
  bool cut = false;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    absl::string_view line = text.substr(0, end);
    text.remove_prefix(end == absl::string_view::npos ? text.size() : end + 1);
    Header header;
    if (ParseHeader(line, zone, &header)) {
      v1::LogRecord& record = records.emplace_back();
      record.set_time_unix_ms(header.time_unix_ms);
      record.set_level(std::string(header.level));
      message = record.mutable_message();
      cut = false;
      AppendCapped(header.message, &cut, message);
      continue;
    }
    if (line.size() > service::kRecordShape.size() && line[0] == ' ' && service::HasRecordShape(line.substr(1))) {
      line.remove_prefix(1);  // the writer's escape
    }
    if (message == nullptr) {
      // Lines before the first record: a record of their own, time 0, no level.
      message = records.emplace_back().mutable_message();
      cut = false;
    } else {
      AppendCapped("\n", &cut, message);
    }
    AppendCapped(line, &cut, message);
  }
  return records;
}

}  // namespace omd::logs

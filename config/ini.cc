#include "config/ini.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "config/quote.h"

namespace omd::config {
namespace {

// Characters that would end a line, or a C string, if written into the file.
constexpr absl::string_view kLineBreaksAndNul("\n\r\0", 3);

bool HasSurroundingWhitespace(absl::string_view text) {
  return !text.empty() &&
         (absl::ascii_isspace(static_cast<unsigned char>(text.front())) ||
          absl::ascii_isspace(static_cast<unsigned char>(text.back())));
}

bool IsComment(absl::string_view stripped_line) {
  return stripped_line.empty() || stripped_line.front() == '#' ||
         stripped_line.front() == ';';
}

// Why Set() must refuse these, or OK: each rule keeps Parse(Serialize()) equal
// to the file, and line breaks in particular could inject sections or keys.
absl::Status ValidateSectionName(absl::string_view section) {
  if (section.empty()) return absl::InvalidArgumentError("empty section name");
  absl::string_view problem;
  if (section.find_first_of(kLineBreaksAndNul) != absl::string_view::npos) {
    problem = "contains a line break or NUL";
  } else if (section.find_first_of("[]") != absl::string_view::npos) {
    problem = "contains '[' or ']'";
  } else if (HasSurroundingWhitespace(section)) {
    problem = "starts or ends with whitespace";
  } else {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("section name ", QuoteForMessage(section), " ", problem));
}

absl::Status ValidateKey(absl::string_view section, absl::string_view key) {
  if (key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("empty key in [", EscapeForMessage(section), "]"));
  }
  absl::string_view problem;
  if (key.find_first_of(kLineBreaksAndNul) != absl::string_view::npos) {
    problem = "contains a line break or NUL";
  } else if (absl::StrContains(key, '=')) {
    problem = "contains '='";
  } else if (key.front() == '[' || IsComment(key)) {
    problem = "starts with '[', '#' or ';'";
  } else if (HasSurroundingWhitespace(key)) {
    problem = "starts or ends with whitespace";
  } else {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("[", EscapeForMessage(section),
                                                 "] key ", QuoteForMessage(key),
                                                 " ", problem));
}

// Never quotes the value: it may be a secret.
absl::Status ValidateValue(absl::string_view section, absl::string_view key,
                           absl::string_view value) {
  absl::string_view problem;
  if (value.find_first_of(kLineBreaksAndNul) != absl::string_view::npos) {
    problem = "contains a line break or NUL";
  } else if (HasSurroundingWhitespace(value)) {
    problem = "starts or ends with whitespace";
  } else {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("value of [", EscapeForMessage(section), "] ",
                   EscapeForMessage(key), " ", problem));
}

void AppendLines(const std::vector<std::string>& lines, std::string* out) {
  for (const std::string& line : lines) absl::StrAppend(out, line, "\n");
}

}  // namespace

absl::StatusOr<IniFile> IniFile::Parse(absl::string_view text) {
  if (text.size() > kMaxBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("INI text is ", text.size(),
                     " bytes, more than the limit of ", kMaxBytes));
  }
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // Final '\n'.

  IniFile ini;
  std::vector<std::string> comments;  // Waiting for the line they describe.
  // Where each section, and each key of the current section, first appeared.
  // Duplicate sections are refused, so a section's keys are all in one run.
  absl::flat_hash_map<std::string, int> section_lines;
  absl::flat_hash_map<std::string, int> key_lines;
  int line_number = 0;
  for (absl::string_view raw_line : lines) {
    ++line_number;
    auto error = [line_number](absl::string_view problem) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": ", problem));
    };
    absl::ConsumeSuffix(&raw_line, "\r");
    if (absl::StrContains(raw_line, '\0')) return error("NUL character");
    absl::string_view line = absl::StripAsciiWhitespace(raw_line);

    if (IsComment(line)) {
      comments.emplace_back(raw_line);
      continue;
    }

    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 2) {
        return error("a section header must end with ']'");
      }
      absl::string_view name =
          absl::StripAsciiWhitespace(line.substr(1, line.size() - 2));
      if (name.empty()) return error("empty section name");
      if (name.find_first_of("[]") != absl::string_view::npos) {
        return error("'[' or ']' inside a section name");
      }
      auto [first, inserted] =
          section_lines.emplace(std::string(name), line_number);
      if (!inserted) {
        return error(absl::StrCat("duplicate section [", EscapeForMessage(name),
                                  "] (first on line ", first->second, ")"));
      }
      ini.sections_.push_back(
          Section{std::move(comments), std::string(name), {}});
      comments.clear();
      key_lines.clear();
      continue;
    }

    size_t equals = line.find('=');
    if (equals == absl::string_view::npos) {
      return error("expected \"key = value\", \"[section]\" or a comment");
    }
    absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, equals));
    if (key.empty()) return error("missing key before '='");
    if (ini.sections_.empty()) {
      return error(
          absl::StrCat("key ", QuoteForMessage(key), " is not in a [section]"));
    }
    Section& section = ini.sections_.back();
    auto [first, inserted] = key_lines.emplace(std::string(key), line_number);
    if (!inserted) {
      return error(absl::StrCat("duplicate key ", QuoteForMessage(key), " in [",
                                EscapeForMessage(section.name),
                                "] (first on line ", first->second, ")"));
    }
    section.entries.push_back(Entry{
        std::move(comments), std::string(key),
        std::string(absl::StripAsciiWhitespace(line.substr(equals + 1)))});
    comments.clear();
  }
  ini.trailing_comments_ = std::move(comments);
  return ini;
}

std::optional<std::string> IniFile::Get(absl::string_view section,
                                        absl::string_view key) const {
  const Section* found = FindSection(section);
  if (found == nullptr) return std::nullopt;
  for (const Entry& entry : found->entries) {
    if (entry.key == key) return entry.value;
  }
  return std::nullopt;
}

absl::Status IniFile::Set(absl::string_view section, absl::string_view key,
                          absl::string_view value) {
  absl::Status status = ValidateSectionName(section);
  if (status.ok()) status = ValidateKey(section, key);
  if (status.ok()) status = ValidateValue(section, key, value);
  if (!status.ok()) return status;

  Section* found = FindSection(section);
  if (found == nullptr) {
    Section added;
    // A blank line between sections, as a person would write it.
    if (!sections_.empty()) added.comments.emplace_back();
    added.name = std::string(section);
    sections_.push_back(std::move(added));
    found = &sections_.back();
  }
  for (Entry& entry : found->entries) {
    if (entry.key == key) {
      entry.value = std::string(value);
      return absl::OkStatus();
    }
  }
  found->entries.push_back(Entry{{}, std::string(key), std::string(value)});
  return absl::OkStatus();
}

bool IniFile::Remove(absl::string_view section, absl::string_view key) {
  Section* found = FindSection(section);
  if (found == nullptr) return false;
  for (auto entry = found->entries.begin(); entry != found->entries.end();
       ++entry) {
    if (entry->key == key) {
      found->entries.erase(entry);
      return true;
    }
  }
  return false;
}

bool IniFile::RemoveSection(absl::string_view section) {
  for (auto it = sections_.begin(); it != sections_.end(); ++it) {
    if (it->name == section) {
      sections_.erase(it);
      return true;
    }
  }
  return false;
}

std::vector<std::string> IniFile::SectionNames() const {
  std::vector<std::string> names;
  names.reserve(sections_.size());
  for (const Section& section : sections_) names.push_back(section.name);
  return names;
}

std::vector<std::pair<std::string, std::string>> IniFile::Entries(
    absl::string_view section) const {
  std::vector<std::pair<std::string, std::string>> entries;
  const Section* found = FindSection(section);
  if (found == nullptr) return entries;
  entries.reserve(found->entries.size());
  for (const Entry& entry : found->entries) {
    entries.emplace_back(entry.key, entry.value);
  }
  return entries;
}

std::string IniFile::Serialize() const {
  std::string text;
  for (const Section& section : sections_) {
    AppendLines(section.comments, &text);
    absl::StrAppend(&text, "[", section.name, "]\n");
    for (const Entry& entry : section.entries) {
      AppendLines(entry.comments, &text);
      // "key =" rather than "key = ": no trailing space for an empty value.
      absl::StrAppend(&text, entry.key, entry.value.empty() ? " =" : " = ",
                      entry.value, "\n");
    }
  }
  AppendLines(trailing_comments_, &text);
  return text;
}

IniFile::Section* IniFile::FindSection(absl::string_view name) {
  for (Section& section : sections_) {
    if (section.name == name) return &section;
  }
  return nullptr;
}

const IniFile::Section* IniFile::FindSection(absl::string_view name) const {
  for (const Section& section : sections_) {
    if (section.name == name) return &section;
  }
  return nullptr;
}

}  // namespace omd::config

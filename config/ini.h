// The INI dialect of OpenSVC's node.conf, read and rewritten without losing
// anything a person wrote: section and key order, comments and unknown keys.
//
//   absl::StatusOr<IniFile> ini = IniFile::Parse(text);
//   if (!ini.ok()) return ini.status();  // "line 7: duplicate key ..."
//   std::optional<std::string> port = ini->Get("listener", "port");
//   absl::Status status = ini->Set("cluster", "nodes", "n1 n2");
//   std::string rewritten = ini->Serialize();
//
// The dialect:
//
//   # A comment line ('#' or ';' first); blank lines are kept too.
//   [section]
//   key = value with = signs kept
//
// Keys and section names are case-sensitive. Values run to the end of the line:
// there are no inline comments, quotes or continuation lines. Every key belongs
// to a section, and a key or section appears only once, so a value never
// silently shadows another.
#ifndef OMD_CONFIG_INI_H_
#define OMD_CONFIG_INI_H_

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace omd::config {

class IniFile {
 public:
  // Parse() refuses larger input: configuration files are small, and a bound
  // keeps a corrupt or hostile file from costing much memory.
  static constexpr size_t kMaxBytes = 1 << 20;

  // An empty file.
  IniFile() = default;

  // INVALID_ARGUMENT "line N: ..." for the first malformed line, duplicated
  // section or duplicated key; RESOURCE_EXHAUSTED over kMaxBytes. Error
  // messages never quote values, which may be secrets.
  static absl::StatusOr<IniFile> Parse(absl::string_view text);

  // The value of `key` in `section`, if both exist.
  std::optional<std::string> Get(absl::string_view section,
                                 absl::string_view key) const;

  // Sets `key` in `section` to `value`. An existing key keeps its position and
  // comments; a new key goes at the end of its section, and a new section at
  // the end of the file. INVALID_ARGUMENT, changing nothing, if something would
  // not read back the same: a line break or NUL anywhere, brackets in
  // `section`, '=' in `key`, a `key` starting like a comment or header, or
  // surrounding spaces.
  absl::Status Set(absl::string_view section, absl::string_view key,
                   absl::string_view value);

  // Removes `key` from `section` together with the comment lines just above it,
  // which describe it. False if there was no such key. The section stays, even
  // if empty.
  bool Remove(absl::string_view section, absl::string_view key);

  // Removes `section`, its entries and the comment lines just above it. False if
  // there was no such section.
  bool RemoveSection(absl::string_view section);

  // Section names in file order.
  std::vector<std::string> SectionNames() const;

  // (key, value) pairs of `section` in file order; empty if there is no such
  // section.
  std::vector<std::pair<std::string, std::string>> Entries(
      absl::string_view section) const;

  // The file as text, '\n'-terminated lines; Parse(Serialize()) gives back the
  // same file. An unmodified parsed file serializes to its input, except that
  // headers and entries take the canonical forms "[section]" and "key = value",
  // and "\r\n" line ends become "\n".
  std::string Serialize() const;

 private:
  struct Entry {
    std::vector<std::string> comments;  // Comment and blank lines above it.
    std::string key;
    std::string value;
  };
  struct Section {
    std::vector<std::string> comments;  // Comment and blank lines above it.
    std::string name;
    std::vector<Entry> entries;
  };

  Section* FindSection(absl::string_view name);
  const Section* FindSection(absl::string_view name) const;

  std::vector<Section> sections_;
  std::vector<std::string> trailing_comments_;  // After the last entry.
};

}  // namespace omd::config

#endif  // OMD_CONFIG_INI_H_

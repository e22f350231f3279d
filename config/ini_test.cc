#include "config/ini.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;

// A file with everything the dialect allows, already in canonical form.
constexpr char kCanonical[] =
    "# omd node configuration\n"
    "\n"
    "[node]\n"
    "name = n1\n"
    "\n"
    "; the cluster\n"
    "[cluster]\n"
    "# shared by every node\n"
    "secret = abc=def==\n"
    "nodes = n1 n2\n"
    "empty =\n"
    "unknown_key = kept\n"
    "\n"
    "[listener]\n"
    "addr = 127.0.0.1\n"
    "    # indented comment\n"
    "port = 1214\n"
    "\n"
    "# trailing comment\n";

IniFile ParseOrDie(absl::string_view text) {
  absl::StatusOr<IniFile> ini = IniFile::Parse(text);
  EXPECT_TRUE(ini.ok()) << ini.status();
  return ini.ok() ? *std::move(ini) : IniFile();
}

// The error Parse gives for `text`, which must be INVALID_ARGUMENT.
std::string ParseError(absl::string_view text) {
  absl::StatusOr<IniFile> ini = IniFile::Parse(text);
  EXPECT_EQ(ini.status().code(), absl::StatusCode::kInvalidArgument)
      << ini.status();
  return std::string(ini.status().message());
}

TEST(IniFileTest, ParsesSectionsKeysAndValues) {
  IniFile ini = ParseOrDie(kCanonical);
  EXPECT_EQ(ini.Get("node", "name"), "n1");
  EXPECT_EQ(ini.Get("cluster", "secret"), "abc=def==");  // '=' kept.
  EXPECT_EQ(ini.Get("cluster", "nodes"), "n1 n2");
  EXPECT_EQ(ini.Get("cluster", "empty"), "");
  EXPECT_EQ(ini.Get("listener", "port"), "1214");
  EXPECT_THAT(ini.SectionNames(), ElementsAre("node", "cluster", "listener"));
  EXPECT_THAT(ini.Entries("cluster"),
              ElementsAre(Pair("secret", "abc=def=="), Pair("nodes", "n1 n2"),
                          Pair("empty", ""), Pair("unknown_key", "kept")));
}

TEST(IniFileTest, GetReturnsNothingForMissingSectionsAndKeys) {
  IniFile ini = ParseOrDie(kCanonical);
  EXPECT_EQ(ini.Get("missing", "name"), std::nullopt);
  EXPECT_EQ(ini.Get("node", "missing"), std::nullopt);
  EXPECT_EQ(ini.Get("Node", "name"), std::nullopt);  // Case-sensitive.
  EXPECT_EQ(ini.Get("node", "NAME"), std::nullopt);
  EXPECT_THAT(ini.Entries("missing"), IsEmpty());
}

TEST(IniFileTest, TrimsWhitespaceAroundNamesKeysAndValues) {
  IniFile ini = ParseOrDie(
      "  [  spaced  ]  \n"
      "\tkey\t=\t value with  inner  spaces \t\n"
      "other=tight\n");
  EXPECT_EQ(ini.Get("spaced", "key"), "value with  inner  spaces");
  EXPECT_EQ(ini.Get("spaced", "other"), "tight");
}

TEST(IniFileTest, ValuesHaveNoInlineComments) {
  IniFile ini = ParseOrDie("[a]\nkey = value # not a comment\nhash = #x\n");
  EXPECT_EQ(ini.Get("a", "key"), "value # not a comment");
  EXPECT_EQ(ini.Get("a", "hash"), "#x");
}

TEST(IniFileTest, SerializesAnUnmodifiedCanonicalFileToItsInput) {
  EXPECT_EQ(ParseOrDie(kCanonical).Serialize(), kCanonical);
}

TEST(IniFileTest, NormalizesEntriesHeadersAndLineEnds) {
  IniFile ini = ParseOrDie(
      "# comment\r\n"
      "[ a ]\r\n"
      "key=value\r\n"
      "   spaced   =   out   \r\n"
      "empty=\r\n"
      "last = no final newline");
  EXPECT_EQ(ini.Serialize(),
            "# comment\n"
            "[a]\n"
            "key = value\n"
            "spaced = out\n"
            "empty =\n"
            "last = no final newline\n");
}

TEST(IniFileTest, RoundTripsThroughSerialize) {
  IniFile ini = ParseOrDie(kCanonical);
  ASSERT_TRUE(ini.Set("cluster", "nodes", "n1 n2 n3").ok());
  ASSERT_TRUE(ini.Set("new", "key", "value = with equals").ok());
  ASSERT_TRUE(ini.Remove("listener", "addr"));
  std::string text = ini.Serialize();
  IniFile reparsed = ParseOrDie(text);
  EXPECT_EQ(reparsed.Serialize(), text);
  for (const std::string& section : ini.SectionNames()) {
    EXPECT_EQ(reparsed.Entries(section), ini.Entries(section)) << section;
  }
}

TEST(IniFileTest, EmptyInput) {
  IniFile ini = ParseOrDie("");
  EXPECT_THAT(ini.SectionNames(), IsEmpty());
  EXPECT_EQ(ini.Serialize(), "");
  EXPECT_EQ(ParseOrDie("\n# only comments\n").Serialize(),
            "\n# only comments\n");
}

TEST(IniFileTest, SetReplacesAValueInPlace) {
  IniFile ini = ParseOrDie(kCanonical);
  ASSERT_TRUE(ini.Set("cluster", "secret", "rotated").ok());
  std::string expected = kCanonical;
  expected.replace(expected.find("abc=def=="), 9, "rotated");
  EXPECT_EQ(ini.Serialize(), expected);  // Comment above it kept too.
}

TEST(IniFileTest, SetAppendsANewKeyToItsSection) {
  IniFile ini = ParseOrDie(kCanonical);
  ASSERT_TRUE(ini.Set("node", "zone", "eu").ok());
  EXPECT_THAT(ini.Entries("node"),
              ElementsAre(Pair("name", "n1"), Pair("zone", "eu")));
  EXPECT_THAT(ini.Serialize(), HasSubstr("[node]\nname = n1\nzone = eu\n\n"));
}

TEST(IniFileTest, SetAppendsANewSectionAtTheEnd) {
  IniFile ini = ParseOrDie("[a]\nx = 1\n# trailing\n");
  ASSERT_TRUE(ini.Set("b", "y", "2").ok());
  EXPECT_THAT(ini.SectionNames(), ElementsAre("a", "b"));
  EXPECT_EQ(ini.Serialize(), "[a]\nx = 1\n\n[b]\ny = 2\n# trailing\n");

  IniFile empty;
  ASSERT_TRUE(empty.Set("a", "x", "1").ok());
  ASSERT_TRUE(empty.Set("a", "e", "").ok());
  EXPECT_EQ(empty.Serialize(), "[a]\nx = 1\ne =\n");
}

TEST(IniFileTest, RemoveDropsTheKeyAndTheCommentAboveIt) {
  IniFile ini = ParseOrDie(kCanonical);
  EXPECT_TRUE(ini.Remove("cluster", "secret"));
  EXPECT_EQ(ini.Get("cluster", "secret"), std::nullopt);
  EXPECT_THAT(ini.Serialize(), Not(HasSubstr("shared by every node")));
  EXPECT_THAT(ini.Serialize(), HasSubstr("[cluster]\nnodes = n1 n2\n"));

  EXPECT_FALSE(ini.Remove("cluster", "secret"));
  EXPECT_FALSE(ini.Remove("missing", "key"));

  EXPECT_TRUE(ini.Remove("node", "name"));
  EXPECT_THAT(ini.SectionNames(), ElementsAre("node", "cluster", "listener"));
}

TEST(IniFileTest, RemoveSectionDropsItsEntriesAndTheCommentAboveIt) {
  IniFile ini = ParseOrDie(kCanonical);
  EXPECT_TRUE(ini.RemoveSection("cluster"));
  EXPECT_THAT(ini.SectionNames(), ElementsAre("node", "listener"));
  EXPECT_EQ(ini.Get("cluster", "nodes"), std::nullopt);
  EXPECT_THAT(ini.Serialize(), Not(HasSubstr("the cluster")));
  EXPECT_THAT(ini.Serialize(), HasSubstr("name = n1\n"));
  EXPECT_THAT(ini.Serialize(), HasSubstr("# trailing comment\n"));
  EXPECT_FALSE(ini.RemoveSection("cluster"));
  // And it parses back the same.
  IniFile again = ParseOrDie(ini.Serialize());
  EXPECT_EQ(again.Serialize(), ini.Serialize());
}

TEST(IniFileTest, SetRefusesLineBreaksThatCouldInjectEntries) {
  IniFile ini = ParseOrDie(kCanonical);
  const std::string before = ini.Serialize();

  absl::Status status = ini.Set("cluster", "nodes", "n1\n[evil]\nkey = x");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "value of [cluster] nodes contains a line break or NUL");

  status = ini.Set("cluster", "secret", "top\rsecret");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), Not(HasSubstr("secret\"")));
  EXPECT_THAT(status.message(), Not(HasSubstr("top")));

  status = ini.Set("cluster", "a\nsecret", "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "[cluster] key \"a\\nsecret\" contains a line break or NUL");

  status = ini.Set("a]\n[b", "key", "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "section name \"a]\\n[b\" contains a line break or NUL");

  EXPECT_EQ(ini.Set("a", "key", std::string("x\0y", 3)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ini.Serialize(), before);
}

TEST(IniFileTest, SetRefusesWhatWouldNotReadBackTheSame) {
  IniFile ini = ParseOrDie(kCanonical);
  const std::string before = ini.Serialize();
  struct Case {
    std::string section, key, value, message;
  };
  const std::vector<Case> cases = {
      {"", "key", "x", "empty section name"},
      {"a]", "key", "x", "section name \"a]\" contains '[' or ']'"},
      {"[a", "key", "x", "section name \"[a\" contains '[' or ']'"},
      {" a", "key", "x", "section name \" a\" starts or ends with whitespace"},
      {"a", "", "x", "empty key in [a]"},
      {"a", "k=v", "x", "[a] key \"k=v\" contains '='"},
      {"a", "[k", "x", "[a] key \"[k\" starts with '[', '#' or ';'"},
      {"a", "#k", "x", "[a] key \"#k\" starts with '[', '#' or ';'"},
      {"a", ";k", "x", "[a] key \";k\" starts with '[', '#' or ';'"},
      {"a", "k ", "x", "[a] key \"k \" starts or ends with whitespace"},
      {"a", "\tk", "x", "[a] key \"\\tk\" starts or ends with whitespace"},
      {"a", "k", " x", "value of [a] k starts or ends with whitespace"},
      {"a", "k", "x\t", "value of [a] k starts or ends with whitespace"},
  };
  for (const Case& test : cases) {
    absl::Status status = ini.Set(test.section, test.key, test.value);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << test.message;
    EXPECT_EQ(status.message(), test.message);
  }
  EXPECT_EQ(ini.Serialize(), before);
}

TEST(IniFileTest, RejectsKeysOutsideASection) {
  EXPECT_EQ(ParseError("# comment\n\nkey = value\n[a]\n"),
            "line 3: key \"key\" is not in a [section]");
}

TEST(IniFileTest, RejectsDuplicateKeysWithBothLineNumbers) {
  std::string message = ParseError(
      "[cluster]\n"
      "secret = first-secret-value\n"
      "nodes = n1\n"
      "secret = second-secret-value\n");
  EXPECT_EQ(message,
            "line 4: duplicate key \"secret\" in [cluster] (first on line 2)");
  EXPECT_THAT(message, Not(HasSubstr("secret-value")));
}

TEST(IniFileTest, AllowsTheSameKeyInDifferentSections) {
  IniFile ini = ParseOrDie("[a]\nname = 1\n[b]\nname = 2\n");
  EXPECT_EQ(ini.Get("a", "name"), "1");
  EXPECT_EQ(ini.Get("b", "name"), "2");
}

TEST(IniFileTest, RejectsDuplicateSections) {
  EXPECT_EQ(ParseError("[a]\nx = 1\n[b]\n[a]\ny = 2\n"),
            "line 4: duplicate section [a] (first on line 1)");
}

TEST(IniFileTest, RejectsMalformedLinesWithTheirLineNumber) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[a]\nno equals sign\n",
       "line 2: expected \"key = value\", \"[section]\" or a comment"},
      {"[a]\n\n= value\n", "line 3: missing key before '='"},
      {"[a]\n  =  \n", "line 2: missing key before '='"},
      {"[a\n", "line 1: a section header must end with ']'"},
      {"[a]\n[b] trailing\n", "line 2: a section header must end with ']'"},
      {"[a]\n[\n", "line 2: a section header must end with ']'"},
      {"[]\n", "line 1: empty section name"},
      {"[   ]\n", "line 1: empty section name"},
      {"[a[b]\n", "line 1: '[' or ']' inside a section name"},
      {"[a]b]\n", "line 1: '[' or ']' inside a section name"},
      {std::string("[a]\nk = v\0w\n", 11), "line 2: NUL character"},
  };
  for (const auto& [text, message] : cases) {
    EXPECT_EQ(ParseError(text), message) << text;
  }
}

TEST(IniFileTest, ErrorsDoNotQuoteTheLine) {
  // A malformed line may be a secret pasted without its key.
  std::string message = ParseError("[cluster]\nhunter2hunter2hunter2\n");
  EXPECT_THAT(message, Not(HasSubstr("hunter2")));
}

TEST(IniFileTest, RefusesInputOverOneMebibyte) {
  std::string text = "[a]\n";
  text +=
      "k = " + std::string(IniFile::kMaxBytes - text.size() - 5, 'x') + "\n";
  ASSERT_EQ(text.size(), IniFile::kMaxBytes);
  EXPECT_TRUE(IniFile::Parse(text).ok());

  text += "\n";
  absl::StatusOr<IniFile> ini = IniFile::Parse(text);
  EXPECT_EQ(ini.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ini.status().message(),
            "INI text is 1048577 bytes, more than the limit of 1048576");
}

}  // namespace
}  // namespace omd::config

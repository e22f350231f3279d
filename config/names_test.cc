#include "config/names.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace omd::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(IsValidNameTest, AcceptsLettersDigitsDotsUnderscoresAndDashes) {
  EXPECT_TRUE(IsValidName("a"));
  EXPECT_TRUE(IsValidName("Z"));
  EXPECT_TRUE(IsValidName("7"));
  EXPECT_TRUE(IsValidName("n1"));
  EXPECT_TRUE(IsValidName("node-1.example_com"));
  EXPECT_TRUE(IsValidName("a.b.c"));
  EXPECT_TRUE(IsValidName("a-"));
  EXPECT_TRUE(IsValidName("a."));
  EXPECT_TRUE(IsValidName(std::string(63, 'x')));
}

TEST(IsValidNameTest, RejectsEmptyAndTooLong) {
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName(std::string(64, 'x')));
}

TEST(IsValidNameTest, RejectsNamesNotStartingWithALetterOrDigit) {
  EXPECT_FALSE(IsValidName("."));
  EXPECT_FALSE(IsValidName(".."));
  EXPECT_FALSE(IsValidName(".hidden"));
  EXPECT_FALSE(IsValidName("-rf"));
  EXPECT_FALSE(IsValidName("_x"));
}

TEST(IsValidNameTest, RejectsPathAndShellCharacters) {
  for (const char* name : {"a/b", "/a", "a\\b", "a b", "a\tb", "a\nb", "a;b",
                           "a$b", "a*b", "a:b", "a'b", "a\"b", "caf\xc3\xa9"}) {
    EXPECT_FALSE(IsValidName(name)) << name;
  }
  EXPECT_FALSE(IsValidName(std::string("a\0b", 3)));
}

TEST(IsValidNameTest, RejectsDoubleDots) {
  EXPECT_FALSE(IsValidName("a..b"));
  EXPECT_FALSE(IsValidName("a.."));
  EXPECT_TRUE(IsValidName("a.b.c"));
}

TEST(ValidateNameTest, AcceptsValidNames) {
  EXPECT_TRUE(ValidateName("node name", "n1").ok());
}

TEST(ValidateNameTest, ExplainsTheRulesAndNamesWhatWasInvalid) {
  absl::Status status = ValidateName("node name", "a/b");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "invalid node name \"a/b\": use 1-63 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit");
  EXPECT_THAT(ValidateName("service name", "").message(),
              HasSubstr("invalid service name \"\": use 1-63"));
}

TEST(ValidateNameTest, SaysWhenDoubleDotsAreTheProblem) {
  absl::Status status = ValidateName("node name", "a..b");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "invalid node name \"a..b\": \"..\" is not allowed");
}

TEST(ValidateNameTest, EscapesControlCharactersAndCutsLongNames) {
  absl::Status status = ValidateName("node name", "a\nb");
  EXPECT_THAT(status.message(), HasSubstr("\"a\\nb\""));
  EXPECT_THAT(status.message(), Not(HasSubstr("\n")));

  status = ValidateName("node name", std::string(10000, 'x'));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(status.message().size(), 300u);
}

TEST(IsValidHostNameTest, AcceptsDnsNames) {
  const std::string label63(63, 'a');
  // 4 labels of 63 and the dots: 255; three and a 61: 253.
  const std::string longest = absl::StrCat(label63, ".", label63, ".", label63, ".",
                                           std::string(61, 'b'));
  ASSERT_EQ(longest.size(), 253u);
  for (const std::string& name :
       {std::string("n2"), std::string("n2.example.com"), std::string("a-b.c-d"),
        std::string("1node"), std::string("10.0.0.x"), std::string("xn--bcher-kva.ch"),
        label63, longest}) {
    EXPECT_TRUE(IsValidHostName(name)) << name;
  }
}

TEST(IsValidHostNameTest, RefusesWhatIsNotADnsName) {
  const std::string label63(63, 'a');
  for (const std::string& name :
       {std::string(""), std::string("."), std::string("n2."), std::string(".n2"),
        std::string("a..b"), std::string("-n2"), std::string("n2-"), std::string("a.-b"),
        std::string("n_2"), std::string("n 2"), std::string("n2/x"), std::string("n2:80"),
        std::string("10.0.0.256"), std::string("1.2.3"), std::string("1214"),
        std::string(64, 'a'),
        absl::StrCat(label63, ".", label63, ".", label63, ".", std::string(62, 'b'))}) {
    EXPECT_FALSE(IsValidHostName(name)) << name;
  }
}

}  // namespace
}  // namespace omd::config

#include "config/quote.h"

#include <string>

#include "gtest/gtest.h"

namespace omd::config {
namespace {

TEST(QuoteTest, LeavesPlainTextAlone) {
  EXPECT_EQ(EscapeForMessage("node-1.example"), "node-1.example");
  EXPECT_EQ(QuoteForMessage("node-1.example"), "\"node-1.example\"");
  EXPECT_EQ(QuoteForMessage(""), "\"\"");
}

TEST(QuoteTest, EscapesWhatCouldForgeALogLine) {
  EXPECT_EQ(QuoteForMessage("a\nb\rc\td\"e\\f"), "\"a\\nb\\rc\\td\\\"e\\\\f\"");
  EXPECT_EQ(QuoteForMessage(std::string("a\0", 2)), "\"a\\x00\"");
  EXPECT_EQ(QuoteForMessage("\x1b[31m"), "\"\\x1b[31m\"");
}

TEST(QuoteTest, CutsLongTextShort) {
  EXPECT_EQ(EscapeForMessage(std::string(80, 'x')), std::string(80, 'x'));
  EXPECT_EQ(EscapeForMessage(std::string(81, 'x')),
            std::string(80, 'x') + "...");
  EXPECT_EQ(QuoteForMessage(std::string(100000, 'x')),
            "\"" + std::string(80, 'x') + "...\"");
}

}  // namespace
}  // namespace omd::config

// Python-compatible Unicode helpers.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "nmt/eval/unicode.h"

using namespace nmt::eval;

TEST(EvalUnicode, Utf8RoundTripAndValidation) {
  const std::string text = "aé€😀";
  EXPECT_EQ(utf8_decode(text), U"aé€😀");
  EXPECT_EQ(utf8_encode(utf8_decode(text)), text);
  EXPECT_EQ(find_invalid_utf8(text), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("ab\xff"), 2u);
  EXPECT_EQ(find_invalid_utf8("\xc0\xaf"), 0u);          // overlong '/'
  EXPECT_EQ(find_invalid_utf8("\xed\xa0\x80"), 0u);      // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("x\xf4\x90\x80\x80"), 1u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("\xe2\x82"), 0u);          // truncated
  EXPECT_THROW(utf8_decode("\x80"), std::invalid_argument);
}

TEST(EvalUnicode, PythonWhitespace) {
  EXPECT_TRUE(is_py_space(U'\u00a0'));
  EXPECT_TRUE(is_py_space(U'\u3000'));
  EXPECT_TRUE(is_py_space(U'\x1c'));
  EXPECT_FALSE(is_py_space(U'\u200b'));  // ZERO WIDTH SPACE is not whitespace in Python
  const std::u32string text = U" a\u2003b \u200bc ";
  const auto fields = py_split(text);
  ASSERT_EQ(fields.size(), 3u);
  EXPECT_EQ(fields[2], U"\u200bc");
  EXPECT_EQ(py_rstrip(U"ab \t\u00a0"), U"ab");
  EXPECT_EQ(py_strip(U"  ab "), U"ab");
  EXPECT_EQ(py_normalize_spaces(U"  a \n b  "), U"a b");
}

TEST(EvalUnicode, PythonLower) {
  EXPECT_EQ(py_lower(U"ÉCOLE"), U"école");
  EXPECT_EQ(py_lower(U"ΟΔΟΣ"), U"οδος");        // final sigma
  EXPECT_EQ(py_lower(U"\u0130"), U"i\u0307");     // İ lowercases to two code points
}

TEST(EvalUnicode, GeneralCategories) {
  EXPECT_TRUE(is_unicode_punctuation(U'«'));
  EXPECT_TRUE(is_unicode_punctuation(U'%'));
  EXPECT_TRUE(is_unicode_symbol(U'€'));
  EXPECT_TRUE(is_unicode_symbol(U'+'));
  EXPECT_TRUE(is_unicode_number(U'٣'));
  EXPECT_TRUE(is_unicode_number(U'½'));
  EXPECT_FALSE(is_unicode_punctuation(U'a'));
}

// The UTF-8 helpers BLEU's 13a path uses equal their code-point counterparts on random text of
// ASCII and Unicode whitespace and multi-byte letters.
TEST(EvalUnicode, Utf8WhitespaceHelpersEqualTheCodePointOnes) {
  const std::vector<std::string> pieces = {"a", "é", "€", "😀", " ", "\t", "\n", "\x1c", "\u00a0", "\u0085",
                                           "\u1680", "\u2000", "\u200a", "\u200b", "\u2028", "\u202f",
                                           "\u205f", "\u3000", "\u3001"};
  std::mt19937 rng(3);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string s;
    for (size_t k = rng() % 10; k > 0; --k) s += pieces[rng() % pieces.size()];
    const std::u32string u = utf8_decode(s);
    ASSERT_EQ(utf8_normalize_spaces(s), utf8_encode(py_normalize_spaces(u))) << s;
    ASSERT_EQ(std::string(utf8_rstrip(s)), utf8_encode(py_rstrip(u))) << s;
  }
  // Invalid UTF-8 is never whitespace: a stray lead byte, or one whose next byte would decode to
  // U+0085 or U+00A0 were it a continuation byte, stays for validation to find.
  EXPECT_EQ(utf8_rstrip("a \xc2"), "a \xc2");
  EXPECT_EQ(utf8_rstrip("a\xc2\x05"), "a\xc2\x05");
  EXPECT_EQ(utf8_rstrip("a\x80\x80\x80 "), "a\x80\x80\x80");
}

// Python-compatible Unicode helpers.
#include <gtest/gtest.h>

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

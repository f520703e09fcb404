// BLEU tokenisers: expected outputs worked out by hand from sacreBLEU 2.x's regular expressions
// (tokenizer_13a.py, tokenizer_re.py, tokenizer_intl.py, tokenizer_zh.py, tokenizer_char.py).
#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <utility>
#include <vector>

#include "nmt/eval/tokenize.h"
#include "nmt/eval/unicode.h"

using namespace nmt::eval;

namespace {
std::string tok(const std::string& line, Tokenizer t) { return tokenize(line, t); }
}  // namespace

TEST(EvalTokenize, V13aAsciiPunctuation) {
  EXPECT_EQ(tok("Hello, world!", Tokenizer::V13a), "Hello , world !");
  EXPECT_EQ(tok("It costs $3.50, ok?", Tokenizer::V13a), "It costs $ 3.50 , ok ?");
  EXPECT_EQ(tok("The 1990-2000 period", Tokenizer::V13a), "The 1990 - 2000 period");
  EXPECT_EQ(tok("don't stop", Tokenizer::V13a), "don't stop");  // the apostrophe stays
  EXPECT_EQ(tok("end.", Tokenizer::V13a), "end .");
  EXPECT_EQ(tok("in 2017.", Tokenizer::V13a), "in 2017 .");  // padding lets the final dot go
  EXPECT_EQ(tok("1,000.5", Tokenizer::V13a), "1,000.5");
  EXPECT_EQ(tok("a/b (c) [d] {e} x+y=z @home #1 a;b:c", Tokenizer::V13a),
            "a / b ( c ) [ d ] { e } x + y = z @ home # 1 a ; b : c");
  EXPECT_EQ(tok("well-known", Tokenizer::V13a), "well-known");  // dash only after a digit
}

TEST(EvalTokenize, V13aEntitiesAndMarkers) {
  EXPECT_EQ(tok("&quot;quoted&quot; &amp; &lt;tag&gt;", Tokenizer::V13a), "\" quoted \" & < tag >");
  EXPECT_EQ(tok("&amp;lt;", Tokenizer::V13a), "<");  // sequential replacement, as sacreBLEU
  EXPECT_EQ(tok("a <skipped> b", Tokenizer::V13a), "a b");
}

TEST(EvalTokenize, V13aLeavesNonAsciiPunctuation) {
  EXPECT_EQ(tok("Café «très» bien…", Tokenizer::V13a), "Café «très» bien…");
  EXPECT_EQ(tok("¿Qué?", Tokenizer::V13a), "¿Qué ?");
  // Python's str.split() whitespace includes NO-BREAK SPACE and IDEOGRAPHIC SPACE.
  EXPECT_EQ(tok("a\u00a0b\u3000c\td", Tokenizer::V13a), "a b c d");
}

TEST(EvalTokenize, IntlUnicodePunctuationAndSymbols) {
  EXPECT_EQ(tok("Hello, world!", Tokenizer::Intl), "Hello , world !");
  EXPECT_EQ(tok("Café «très» bien…", Tokenizer::Intl), "Café « très » bien …");
  EXPECT_EQ(tok("¿Qué?", Tokenizer::Intl), "¿ Qué ?");
  EXPECT_EQ(tok("Price: $5 or 5€", Tokenizer::Intl), "Price : $ 5 or 5 €");  // \p{S} always split
  EXPECT_EQ(tok("a+b=c", Tokenizer::Intl), "a + b = c");
  EXPECT_EQ(tok("don't", Tokenizer::Intl), "don ' t");
}

TEST(EvalTokenize, IntlKeepsPunctuationBetweenDigits) {
  EXPECT_EQ(tok("1,000.50 and 3.5", Tokenizer::Intl), "1,000.50 and 3.5");
  // mteval-v14's quirk kept by sacreBLEU: a final dot after a digit stays attached.
  EXPECT_EQ(tok("in 2017.", Tokenizer::Intl), "in 2017.");
  EXPECT_EQ(tok("up 5%", Tokenizer::Intl), "up 5%");  // '%' is punctuation (Po) after a digit
  EXPECT_EQ(tok("٣،٥", Tokenizer::Intl), "٣،٥");      // Arabic-Indic digits are \p{N}
}

TEST(EvalTokenize, CharSplitsEveryCharacter) {
  EXPECT_EQ(tok("ab c", Tokenizer::Char), "a b   c");  // BLEU's whitespace split drops the spaces
  EXPECT_EQ(tok("日本", Tokenizer::Char), "日 本");
}

TEST(EvalTokenize, ZhSeparatesChineseCharacters) {
  EXPECT_EQ(tok("我爱北京天安门。", Tokenizer::Zh), "我 爱 北 京 天 安 门 。");
  EXPECT_EQ(tok(" 我有3.5元, ok. ", Tokenizer::Zh), "我 有 3.5 元 , ok .");
  // sacreBLEU's range '\u20000'..'\u2a6d6' is really U+2001..U+2A6D: an em dash counts as Chinese.
  EXPECT_EQ(tok("a—b", Tokenizer::Zh), "a — b");
  EXPECT_EQ(tok("a\u2000b", Tokenizer::Zh), "a b");  // U+2000 is whitespace, not in the range
}

TEST(EvalTokenize, NoneKeepsTheLine) {
  EXPECT_EQ(tok("Hello,  world!", Tokenizer::None), "Hello,  world!");
}

TEST(EvalTokenize, NamesRoundTrip) {
  for (const char* name : {"none", "13a", "intl", "char", "zh"}) {
    EXPECT_EQ(tokenizer_name(parse_tokenizer(name)), name);
  }
  EXPECT_THROW(parse_tokenizer("ja-mecab"), std::invalid_argument);
  EXPECT_THROW(tokenize(std::string("\xff"), Tokenizer::V13a), std::invalid_argument);
}

namespace {

/// sacreBLEU's TokenizerV13a written as it is in Python, with std::wregex standing in for `re`
/// (wchar_t is a code point here; regex_replace, like re.sub, replaces non-overlapping matches
/// left to right) and Python's str.split() whitespace.
std::wstring oracle_13a(std::wstring line) {
  const auto replace = [&](const std::wstring& from, const std::wstring& to) {
    for (size_t pos = 0; (pos = line.find(from, pos)) != std::wstring::npos; pos += to.size())
      line.replace(pos, from.size(), to);
  };
  replace(L"<skipped>", L"");
  replace(L"-\n", L"");
  replace(L"\n", L" ");
  if (line.find(L'&') != std::wstring::npos) {
    replace(L"&quot;", L"\"");
    replace(L"&amp;", L"&");
    replace(L"&lt;", L"<");
    replace(L"&gt;", L">");
  }
  line = L" " + line + L" ";
  static const std::pair<std::wregex, std::wstring> kSteps[] = {
      {std::wregex(L"([\\{-\\~\\[-\\`\\ -\\&\\(-\\+\\:-\\@\\/])"), L" $1 "},
      {std::wregex(L"([^0-9])([\\.,])"), L"$1 $2 "},
      {std::wregex(L"([\\.,])([^0-9])"), L" $1 $2"},
      {std::wregex(L"([0-9])(-)"), L"$1 $2 "}};
  for (const auto& [re, replacement] : kSteps) line = std::regex_replace(line, re, replacement);
  std::wstring out, word;
  for (const wchar_t c : line + L" ") {
    if (is_py_space(static_cast<char32_t>(c))) {
      if (!word.empty()) out += (out.empty() ? L"" : L" ") + word;
      word.clear();
    } else {
      word += c;
    }
  }
  return out;
}

std::string to_utf8(const std::wstring& w) { return utf8_encode(std::u32string(w.begin(), w.end())); }

}  // namespace

// The 13a scanner (UTF-8 bytes, one pass per regular expression) against the regular expressions
// themselves, on random lines over characters that each expression treats specially: digits,
// periods, commas, dashes, 13a punctuation, entities, markers, newlines, multi-byte letters and
// Unicode whitespace.
TEST(EvalTokenize, V13aEqualsSacrebleusRegularExpressionsOnRandomLines) {
  const std::vector<std::wstring> pieces = {
      L"a", L"Z", L"0", L"7", L".", L",", L"-", L" ", L"  ", L"\t", L"'", L"&", L"(", L"]", L"~",
      L"/", L"$", L"@", L"\u00e4", L"\u20ac", L"\u00a0", L"\u3000", L"\u2009", L"\u0085", L"\u4e2d",
      L"&quot;", L"&amp;", L"&lt;", L"<skipped>", L"\n", L"-\n", L"...", L"1,5", L"3.", L"x-"};
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> piece(0, pieces.size() - 1), length(0, 14);
  for (int trial = 0; trial < 3000; ++trial) {
    std::wstring line;
    for (size_t k = length(rng); k > 0; --k) line += pieces[piece(rng)];
    ASSERT_EQ(tok(to_utf8(line), Tokenizer::V13a), to_utf8(oracle_13a(line))) << "line: " << to_utf8(line);
  }
}

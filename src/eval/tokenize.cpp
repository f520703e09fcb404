/// @file tokenize.cpp
/// The regular expressions of sacreBLEU's tokenisers are all "one character of class A followed
/// by one of class B" or "one character of class A"; re.sub() replaces their non-overlapping
/// matches left to right, which the scanners below reproduce exactly.
#include "nmt/eval/tokenize.h"

#include <stdexcept>

#include "nmt/eval/unicode.h"

namespace nmt::eval {
namespace {

using CharClass = bool (*)(char32_t);

/// re.sub(r'(A)', r' \1 ', text)
std::u32string pad_class(std::u32string_view text, CharClass a) {
  std::u32string out;
  out.reserve(text.size() + 16);
  for (const char32_t c : text) {
    if (a(c)) {
      out.push_back(U' ');
      out.push_back(c);
      out.push_back(U' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

/// re.sub(r'(A)(B)', r'\1 \2 ', text) when `space_before` is false,
/// re.sub(r'(A)(B)', r' \1 \2', text) when it is true.
std::u32string split_pair(std::u32string_view text, CharClass a, CharClass b, bool space_before) {
  std::u32string out;
  out.reserve(text.size() + 16);
  size_t i = 0;
  while (i < text.size()) {
    if (i + 1 < text.size() && a(text[i]) && b(text[i + 1])) {
      if (space_before) out.push_back(U' ');
      out.push_back(text[i]);
      out.push_back(U' ');
      out.push_back(text[i + 1]);
      if (!space_before) out.push_back(U' ');
      i += 2;
    } else {
      out.push_back(text[i]);
      i += 1;
    }
  }
  return out;
}

void replace_all(std::u32string& text, std::u32string_view from, std::u32string_view to) {
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::u32string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
}

// --- character classes of the 13a regular expressions (Python `re`, ASCII ranges) ---
bool in_range(char32_t c, char32_t lo, char32_t hi) { return c >= lo && c <= hi; }
/// [\{-\~\[-\` -\&\(-\+\:-\@\/]
bool is_13a_punct(char32_t c) {
  return in_range(c, U'{', U'~') || in_range(c, U'[', U'`') || in_range(c, U' ', U'&') ||
         in_range(c, U'(', U'+') || in_range(c, U':', U'@') || c == U'/';
}
bool is_ascii_digit(char32_t c) { return in_range(c, U'0', U'9'); }
bool is_not_ascii_digit(char32_t c) { return !is_ascii_digit(c); }
bool is_period_or_comma(char32_t c) { return c == U'.' || c == U','; }
bool is_dash(char32_t c) { return c == U'-'; }
bool is_not_number(char32_t c) { return !is_unicode_number(c); }

/// sacreBLEU's TokenizerRegexp: the language-dependent part of mteval-v13a, shared by 13a and zh.
std::u32string tokenize_regexp(std::u32string_view line) {
  std::u32string s = pad_class(line, is_13a_punct);
  s = split_pair(s, is_not_ascii_digit, is_period_or_comma, false);  // ([^0-9])([\.,])
  s = split_pair(s, is_period_or_comma, is_not_ascii_digit, true);   // ([\.,])([^0-9])
  s = split_pair(s, is_ascii_digit, is_dash, false);                 // ([0-9])(-)
  return py_normalize_spaces(s);
}

std::u32string tokenize_13a(std::u32string_view line) {
  std::u32string s(line);
  replace_all(s, U"<skipped>", U"");
  replace_all(s, U"-\n", U"");
  replace_all(s, U"\n", U" ");
  if (s.find(U'&') != std::u32string::npos) {
    replace_all(s, U"&quot;", U"\"");
    replace_all(s, U"&amp;", U"&");
    replace_all(s, U"&lt;", U"<");
    replace_all(s, U"&gt;", U">");
  }
  return tokenize_regexp(U" " + s + U" ");
}

std::u32string tokenize_intl(std::u32string_view line) {
  std::u32string s = split_pair(line, is_not_number, is_unicode_punctuation, false);
  s = split_pair(s, is_unicode_punctuation, is_not_number, true);
  s = pad_class(s, is_unicode_symbol);
  return py_normalize_spaces(s);
}

std::u32string tokenize_char(std::u32string_view line) {
  std::u32string out;
  out.reserve(2 * line.size());
  for (const char32_t c : line) {
    if (!out.empty()) out.push_back(U' ');
    out.push_back(c);
  }
  return out;
}

/// sacreBLEU's _UCODE_RANGES for zh, with the two Python-string ranges resolved (see header).
bool is_chinese_char(char32_t c) {
  static constexpr char32_t kRanges[][2] = {
      {0x3400, 0x4DB5}, {0x4E00, 0x9FA5}, {0x9FA6, 0x9FBB}, {0xF900, 0xFA2D}, {0xFA30, 0xFA6A},
      {0xFA70, 0xFAD9}, {0x2001, 0x2A6D}, {0x2F81, 0x2FA1}, {0xFF00, 0xFFEF}, {0x2E80, 0x2EFF},
      {0x3000, 0x303F}, {0x31C0, 0x31EF}, {0x2F00, 0x2FDF}, {0x2FF0, 0x2FFF}, {0x3100, 0x312F},
      {0x31A0, 0x31BF}, {0xFE10, 0xFE1F}, {0xFE30, 0xFE4F}, {0x2600, 0x26FF}, {0x2700, 0x27BF},
      {0x3200, 0x32FF}, {0x3300, 0x33FF}};
  for (const auto& range : kRanges) {
    if (c >= range[0] && c <= range[1]) return true;
  }
  return false;
}

std::u32string tokenize_zh(std::u32string_view line) {
  return tokenize_regexp(pad_class(py_strip(line), is_chinese_char));
}

}  // namespace

Tokenizer parse_tokenizer(std::string_view name) {
  if (name == "none") return Tokenizer::None;
  if (name == "13a") return Tokenizer::V13a;
  if (name == "intl") return Tokenizer::Intl;
  if (name == "char") return Tokenizer::Char;
  if (name == "zh") return Tokenizer::Zh;
  throw std::invalid_argument("unknown tokenizer '" + std::string(name) +
                              "' (choose from 13a, intl, char, zh, none)");
}

std::string tokenizer_name(Tokenizer tokenizer) {
  switch (tokenizer) {
    case Tokenizer::None: return "none";
    case Tokenizer::V13a: return "13a";
    case Tokenizer::Intl: return "intl";
    case Tokenizer::Char: return "char";
    case Tokenizer::Zh: return "zh";
  }
  return "?";
}

std::u32string tokenize(std::u32string_view line, Tokenizer tokenizer) {
  switch (tokenizer) {
    case Tokenizer::None: return std::u32string(line);
    case Tokenizer::V13a: return tokenize_13a(line);
    case Tokenizer::Intl: return tokenize_intl(line);
    case Tokenizer::Char: return tokenize_char(line);
    case Tokenizer::Zh: return tokenize_zh(line);
  }
  return std::u32string(line);
}

std::string tokenize(std::string_view line, Tokenizer tokenizer) {
  return utf8_encode(tokenize(utf8_decode(line), tokenizer));
}

}  // namespace nmt::eval

/// @file tokenize.cpp
/// The regular expressions of sacreBLEU's tokenisers are all "one character of class A followed
/// by one of class B" or "one character of class A"; re.sub() replaces their non-overlapping
/// matches left to right, which the scanners below reproduce exactly. 13a's classes are ASCII,
/// so it scans UTF-8 bytes; intl's are Unicode categories, so it scans code points.
#include "nmt/eval/tokenize.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

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

/// str.replace(from, to) on UTF-8 bytes (equal to replacing code points: UTF-8 is self-synchronising).
void replace_all(std::string& text, std::string_view from, std::string_view to) {
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
}

// --- the 13a regular expressions on UTF-8 bytes ---
// Every class below is ASCII or the complement of an ASCII class, so a scan of the bytes finds
// the matches a scan of the code points finds: a multi-byte character's bytes are all >= 0x80,
// so they are "not a digit" exactly when the character is, and they never equal '.', ',' or '-'.
enum ByteClass : unsigned char { kPunct13a = 1, kDigit = 2, kPeriodOrComma = 4, kDash = 8 };

/// The classes of every byte: [\{-\~\[-\` -\&\(-\+\:-\@\/] (kPunct13a), [0-9], [\.,] and '-'.
struct ByteClasses {
  unsigned char of[256] = {};
  constexpr ByteClasses() {
    for (int c = 0; c < 256; ++c) {
      if ((c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
          (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/') {
        of[c] |= kPunct13a;
      }
      if (c >= '0' && c <= '9') of[c] |= kDigit;
      if (c == '.' || c == ',') of[c] |= kPeriodOrComma;
      if (c == '-') of[c] |= kDash;
    }
  }
};
constexpr ByteClasses kClasses;
bool has(char c, ByteClass cls) { return (kClasses.of[static_cast<unsigned char>(c)] & cls) != 0; }

/// The first position >= i in in[0, n) of a byte of class `cls`, or n.
size_t find_class(const char* in, size_t i, size_t n, ByteClass cls) {
  while (i < n && !has(in[i], cls)) ++i;
  return i;
}

/// One "(A)(B)" substitution of TokenizerRegexp on in[0, n): every non-overlapping match, left
/// to right, is written as A ' ' B with a space before the pair (r' \1 \2') or after it
/// (r'\1 \2 '); A is of class `first` or, when `first_negated`, of none of it, and likewise B.
/// Every match holds a byte of class `anchor` (the rare '.', ',' or '-') as its A or, when
/// `anchor_is_second`, as its B: only the bytes around those are looked at, the runs between
/// them are copied. Writes at most 2n bytes to `out`; returns how many.
size_t split_pairs(const char* in, size_t n, char* out, ByteClass first, bool first_negated,
                   ByteClass second, bool second_negated, bool space_before, bool anchor_is_second) {
  const ByteClass anchor = anchor_is_second ? second : first;
  char* o = out;
  size_t i = 0;
  while (i < n) {
    // Where the next match could start: at an anchor, or just before one. Matches start at i or
    // later (the bytes before i have been written).
    const size_t k = find_class(in, anchor_is_second ? i + 1 : i, n, anchor);
    if (k >= n) break;
    const size_t start = anchor_is_second ? k - 1 : k;
    std::memcpy(o, in + i, start - i);
    o += start - i;
    i = start;
    if (i + 1 < n && has(in[i], first) != first_negated && has(in[i + 1], second) != second_negated) {
      if (space_before) *o++ = ' ';
      *o++ = in[i];
      *o++ = ' ';
      *o++ = in[i + 1];
      if (!space_before) *o++ = ' ';
      i += 2;
    } else {
      *o++ = in[i++];
    }
  }
  std::memcpy(o, in + i, n - i);
  return static_cast<size_t>(o - out) + (n - i);
}

/// sacreBLEU's TokenizerRegexp, the language-dependent part of mteval-v13a shared by 13a and zh,
/// on UTF-8: its four re.sub() calls in order (each replaces non-overlapping matches left to
/// right on the previous one's output), then ' '.join(line.split()). A substitution whose
/// anchor ('.' or ',', '-') does not occur in the line changes nothing and is skipped.
std::string tokenize_regexp(std::string_view line) {
  // Every pass only adds spaces: the first two per 13a punctuation mark, each later one two per
  // match, and every match holds one of the line's '.', ',' or '-' (which passes never add; the
  // first pass's marks are none of them, and a '.' or ',' can be in one match per pass). So no
  // output is longer than 5 times the line.
  const size_t capacity = 5 * line.size() + 1;
  const std::unique_ptr<char[]> a(new char[capacity]), b(new char[capacity]);
  size_t n = 0;
  for (size_t i = 0; i < line.size();) {  // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
    const size_t k = find_class(line.data(), i, line.size(), kPunct13a);
    std::memcpy(a.get() + n, line.data() + i, k - i);
    n += k - i;
    if (k == line.size()) break;
    a[n] = ' ';
    a[n + 1] = line[k];
    a[n + 2] = ' ';
    n += 3;
    i = k + 1;
  }
  char* text = a.get();
  char* spare = b.get();
  if (find_class(line.data(), 0, line.size(), kPeriodOrComma) < line.size()) {
    // ([^0-9])([\.,]) -> '\1 \2 '
    n = split_pairs(text, n, spare, kDigit, true, kPeriodOrComma, false, false, true);
    std::swap(text, spare);
    // ([\.,])([^0-9]) -> ' \1 \2'
    n = split_pairs(text, n, spare, kPeriodOrComma, false, kDigit, true, true, false);
    std::swap(text, spare);
  }
  if (find_class(line.data(), 0, line.size(), kDash) < line.size()) {
    // ([0-9])(-) -> '\1 \2 '
    n = split_pairs(text, n, spare, kDigit, false, kDash, false, false, true);
    std::swap(text, spare);
  }
  return utf8_normalize_spaces(std::string_view(text, n));
}

/// mteval-v13a on UTF-8 (sacreBLEU's TokenizerV13a); `line` must be valid UTF-8.
std::string tokenize_13a(std::string_view line) {
  std::string s;
  s.reserve(line.size() + 2);
  s += ' ';
  s += line;
  if (s.find('<') != std::string::npos) replace_all(s, "<skipped>", "");
  if (s.find('\n') != std::string::npos) {
    replace_all(s, "-\n", "");
    replace_all(s, "\n", " ");
  }
  if (s.find('&') != std::string::npos) {
    replace_all(s, "&quot;", "\"");
    replace_all(s, "&amp;", "&");
    replace_all(s, "&lt;", "<");
    replace_all(s, "&gt;", ">");
  }
  s += ' ';
  return tokenize_regexp(s);
}

bool is_not_number(char32_t c) { return !is_unicode_number(c); }

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

std::string tokenize_zh(std::u32string_view line) {
  return tokenize_regexp(utf8_encode(pad_class(py_strip(line), is_chinese_char)));
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
    case Tokenizer::V13a: return utf8_decode(tokenize_13a(utf8_encode(line)));
    case Tokenizer::Intl: return tokenize_intl(line);
    case Tokenizer::Char: return tokenize_char(line);
    case Tokenizer::Zh: return utf8_decode(tokenize_zh(line));
  }
  return std::u32string(line);
}

std::string tokenize(std::string_view line, Tokenizer tokenizer) {
  switch (tokenizer) {
    case Tokenizer::None:
    case Tokenizer::V13a:
      if (const size_t bad = find_invalid_utf8(line); bad != std::string_view::npos) {
        throw std::invalid_argument("invalid UTF-8 at byte " + std::to_string(bad));
      }
      return tokenizer == Tokenizer::None ? std::string(line) : tokenize_13a(line);
    case Tokenizer::Zh: return tokenize_zh(utf8_decode(line));
    default: return utf8_encode(tokenize(utf8_decode(line), tokenizer));
  }
}

}  // namespace nmt::eval

/// @file unicode.cpp
#include "nmt/eval/unicode.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

namespace nmt::eval {
namespace {

/// Length of the valid UTF-8 sequence starting at text[i], or 0 if it is invalid.
size_t valid_sequence_length(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

char32_t decode_sequence(std::string_view text, size_t i, size_t len) {
  const auto byte = [&](size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(text[k])); };
  switch (len) {
    case 1: return byte(i);
    case 2: return ((byte(i) & 0x1F) << 6) | (byte(i + 1) & 0x3F);
    case 3: return ((byte(i) & 0x0F) << 12) | ((byte(i + 1) & 0x3F) << 6) | (byte(i + 2) & 0x3F);
    default:
      return ((byte(i) & 0x07) << 18) | ((byte(i + 1) & 0x3F) << 12) | ((byte(i + 2) & 0x3F) << 6) |
             (byte(i + 3) & 0x3F);
  }
}

bool has_category(char32_t c, uint32_t mask) {
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & mask) != 0;
}

}  // namespace

size_t find_invalid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    uint64_t eight;  // ASCII runs eight bytes at a time
    if (i + 8 <= text.size() && (std::memcpy(&eight, text.data() + i, 8), (eight & 0x8080808080808080ull) == 0)) {
      i += 8;
      continue;
    }
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t len = valid_sequence_length(text, i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::u32string utf8_decode(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t len = valid_sequence_length(text, i);
    if (len == 0) throw std::invalid_argument("invalid UTF-8 at byte " + std::to_string(i));
    out.push_back(decode_sequence(text, i, len));
    i += len;
  }
  return out;
}

std::string utf8_encode(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char32_t c : text) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

bool is_py_space(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
  if (c < 0x85) return false;
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::vector<std::u32string_view> py_split(std::u32string_view text) {
  std::vector<std::u32string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_py_space(text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !is_py_space(text[i])) ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  return fields;
}

std::u32string py_normalize_spaces(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (const auto field : py_split(text)) {
    if (!out.empty()) out.push_back(U' ');
    out.append(field);
  }
  return out;
}

namespace {
/// Byte length of the Python whitespace character at text[i], or 0 if there is none (an invalid
/// UTF-8 sequence is none).
size_t utf8_space_length(std::string_view text, size_t i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  if (b0 < 0x80) return is_py_space(b0) ? 1 : 0;
  // Non-ASCII whitespace starts with 0xC2 (U+0085, U+00A0) or 0xE1..0xE3 (U+1680..U+3000).
  if (b0 != 0xC2 && (b0 < 0xE1 || b0 > 0xE3)) return 0;
  const size_t len = b0 == 0xC2 ? 2 : 3;
  if (valid_sequence_length(text, i) != len) return 0;  // invalid UTF-8 is never whitespace
  return is_py_space(decode_sequence(text, i, len)) ? len : 0;
}
}  // namespace

std::string utf8_normalize_spaces(std::string_view text) {
  // Per byte: 0 part of a word, 1 ASCII whitespace, 2 the first byte of a multi-byte character
  // that may be whitespace (utf8_space_length() decides).
  static const auto kKind = [] {
    std::array<unsigned char, 256> kind{};
    for (int b = 0; b < 0x80; ++b) kind[b] = is_py_space(static_cast<char32_t>(b)) ? 1 : 0;
    kind[0xC2] = kind[0xE1] = kind[0xE2] = kind[0xE3] = 2;
    return kind;
  }();
  const auto kind = [&](size_t i) { return kKind[static_cast<unsigned char>(text[i])]; };
  std::string out;
  out.reserve(text.size());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const size_t space = kind(i) == 0 ? 0 : kind(i) == 1 ? 1 : utf8_space_length(text, i);
    if (space) {
      i += space;
      continue;
    }
    size_t end = i + 1;  // a word: up to the next whitespace character
    while (end < n && (kind(end) == 0 || (kind(end) == 2 && utf8_space_length(text, end) == 0))) ++end;
    if (!out.empty()) out += ' ';
    out.append(text, i, end - i);
    i = end;
  }
  return out;
}

std::string_view utf8_rstrip(std::string_view text) {
  // Only valid whitespace characters are stripped: an invalid byte stays for the caller to find.
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;  // the last character starts after its continuation bytes
    while (start > 0 && end - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    if (utf8_space_length(text, start) != end - start) break;
    end = start;
  }
  return text.substr(0, end);
}

std::u32string_view py_rstrip(std::u32string_view text) {
  size_t end = text.size();
  while (end > 0 && is_py_space(text[end - 1])) --end;
  return text.substr(0, end);
}

std::u32string_view py_strip(std::u32string_view text) {
  text = py_rstrip(text);
  size_t start = 0;
  while (start < text.size() && is_py_space(text[start])) ++start;
  return text.substr(start);
}

std::u32string py_lower(std::u32string_view text) {
  icu::UnicodeString ustr = icu::UnicodeString::fromUTF32(
      reinterpret_cast<const UChar32*>(text.data()), static_cast<int32_t>(text.size()));
  ustr.toLower(icu::Locale::getRoot());
  std::u32string out(static_cast<size_t>(ustr.countChar32()), U'\0');
  UErrorCode status = U_ZERO_ERROR;
  ustr.toUTF32(reinterpret_cast<UChar32*>(out.data()), static_cast<int32_t>(out.size()), status);
  if (U_FAILURE(status)) throw std::runtime_error("ICU lowercasing failed");
  return out;
}

bool is_unicode_number(char32_t c) { return has_category(c, U_GC_N_MASK); }
bool is_unicode_punctuation(char32_t c) { return has_category(c, U_GC_P_MASK); }
bool is_unicode_symbol(char32_t c) { return has_category(c, U_GC_S_MASK); }

}  // namespace nmt::eval

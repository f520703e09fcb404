#pragma once
/// @file unicode.h
/// Unicode text helpers that reproduce Python 3's `str` semantics, because sacreBLEU is written
/// in Python and its numbers depend on them: code-point indexing, `str.split()` / `str.rstrip()`
/// whitespace, `str.lower()` and the Unicode general categories used by `regex`'s \p{..}.
/// Character properties and case mapping come from ICU (Debian package libicu-dev).
#include <string>
#include <string_view>
#include <vector>

namespace nmt::eval {

/// Decodes strict UTF-8 (as Python's "utf-8" codec: no overlong forms, no surrogates, nothing
/// above U+10FFFF) into code points. Throws std::invalid_argument naming the bad byte offset.
std::u32string utf8_decode(std::string_view text);

/// Byte offset of the first invalid UTF-8 sequence in `text`, or std::string_view::npos if valid.
size_t find_invalid_utf8(std::string_view text);

/// Encodes code points as UTF-8.
std::string utf8_encode(std::u32string_view text);

/// Python's `str.isspace()`: ASCII whitespace, U+001C..U+001F, U+0085, U+00A0, U+1680,
/// U+2000..U+200A, U+2028, U+2029, U+202F, U+205F and U+3000.
bool is_py_space(char32_t c);

/// Python's `str.split()` without arguments: runs of is_py_space() separate fields, and there
/// are no empty fields. The views point into `text`.
std::vector<std::u32string_view> py_split(std::u32string_view text);

/// Python's `' '.join(text.split())`: trims and collapses all whitespace to single spaces.
std::u32string py_normalize_spaces(std::u32string_view text);

/// Python's `' '.join(text.split())` on valid UTF-8 text (Unicode whitespace as is_py_space()).
std::string utf8_normalize_spaces(std::string_view text);

/// Python's `str.rstrip()` on UTF-8 text; the view points into `text`. Invalid UTF-8 is never
/// taken for whitespace, so it stays in the result.
std::string_view utf8_rstrip(std::string_view text);

/// Python's `str.rstrip()` / `str.strip()` without arguments.
std::u32string_view py_rstrip(std::u32string_view text);
std::u32string_view py_strip(std::u32string_view text);

/// Python's `str.lower()`: full Unicode lowercase mapping (one character may become two, e.g.
/// U+0130) with the Greek final-sigma rule, via ICU's root locale.
std::u32string py_lower(std::u32string_view text);

/// Unicode general categories as `regex` tests them: \p{N} (Nd, Nl, No), \p{P} (Pc, Pd, Ps, Pe,
/// Pi, Pf, Po) and \p{S} (Sm, Sc, Sk, So).
bool is_unicode_number(char32_t c);
bool is_unicode_punctuation(char32_t c);
bool is_unicode_symbol(char32_t c);

}  // namespace nmt::eval

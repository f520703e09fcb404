#pragma once
/// @file tokenize.h
/// BLEU's tokenisers, character-for-character as sacreBLEU 2.x applies them before counting
/// word n-grams:
///  - `13a`  mteval-v13a.pl (sacreBLEU's default): unescapes &quot; &amp; &lt; &gt;, splits off
///           ASCII punctuation, and periods/commas unless they sit next to a digit.
///  - `intl` mteval-v14.pl --international-tokenization: splits off Unicode punctuation (\p{P})
///           unless it is both preceded and followed by a digit (\p{N}), and every symbol (\p{S}).
///  - `char` every character is a token.
///  - `zh`   sacreBLEU's Chinese tokeniser: CJK characters become tokens, the rest goes through
///           13a's regular expressions. Its character table is reproduced with sacreBLEU's quirk:
///           the ranges written '\u20000'..'\u2a6d6' and '\u2f800'..'\u2fa1d' are two-character
///           Python strings, so they really cover U+2001..U+2A6D and U+2F81..U+2FA1.
///  - `none` the line as it is.
/// Every tokeniser returns tokens separated by single spaces (the caller splits on whitespace).
#include <string>
#include <string_view>

namespace nmt::eval {

enum class Tokenizer { None, V13a, Intl, Char, Zh };

/// Parses a sacreBLEU tokeniser name ("none", "13a", "intl", "char", "zh"); throws
/// std::invalid_argument for any other name.
Tokenizer parse_tokenizer(std::string_view name);

/// The name sacreBLEU writes into the signature (`tok:13a`).
std::string tokenizer_name(Tokenizer tokenizer);

/// Tokenises one line (code points). Lowercasing and rstrip() are the caller's job, as in
/// sacreBLEU's BLEU._preprocess_segment().
std::u32string tokenize(std::u32string_view line, Tokenizer tokenizer);

/// UTF-8 convenience overload; throws std::invalid_argument on invalid UTF-8.
std::string tokenize(std::string_view line, Tokenizer tokenizer);

}  // namespace nmt::eval

// libFuzzer target: the BLEU tokenisers (13a, intl, char, zh, none), BLEU and chrF/chrF++ on
// arbitrary bytes. Input: hypothesis line, '\n', reference line. The only accepted failure is
// std::invalid_argument (invalid UTF-8, an empty reference), as the headers document.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "nmt/eval/bleu.h"
#include "nmt/eval/chrf.h"
#include "nmt/eval/tokenize.h"

// A score lies in [0, 100], up to rounding: BLEU of identical lines is exp(log 100) =
// 100.00000000000004 here as in sacreBLEU (the first finding of this target, not a bug).
bool in_range(double score) { return score >= 0 && score <= 100 + 1e-9; }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string hyp = input.substr(0, newline);
  const std::string ref = newline == std::string::npos ? hyp : input.substr(newline + 1);
  using nmt::eval::Tokenizer;
  try {
    for (auto t : {Tokenizer::None, Tokenizer::V13a, Tokenizer::Intl, Tokenizer::Char, Tokenizer::Zh}) {
      nmt::eval::tokenize(std::string_view(hyp), t);
      nmt::eval::BleuOptions options;
      options.tokenizer = t;
      options.effective_order = true;
      nmt::eval::Bleu bleu(options, {{ref}});
      const double score = bleu.corpus_score({hyp}).score;
      if (!in_range(score)) __builtin_trap();
    }
    nmt::eval::ChrfOptions chrf_options;
    chrf_options.word_order = 2;
    nmt::eval::Chrf chrf(chrf_options, {{ref}});
    const double score = chrf.corpus_score({hyp}).score;
    if (!in_range(score)) __builtin_trap();
  } catch (const std::invalid_argument&) {
  }
  return 0;
}

/// @file chrf.cpp
#include "nmt/eval/chrf.h"

#include <algorithm>
#include <stdexcept>

#include "nmt/eval/unicode.h"

namespace nmt::eval {
namespace {

/// The n-grams of one order as a sorted list (repeats kept), viewing the owning ChrfNgrams' text.
/// Sorted lists are counted by merging, which is several times faster than hash maps here.
using SortedNgrams = std::vector<std::u32string_view>;

/// string.punctuation, the characters chrF++ splits off word edges.
bool is_ascii_punct(char32_t c) {
  return (c >= U'!' && c <= U'/') || (c >= U':' && c <= U'@') || (c >= U'[' && c <= U'`') ||
         (c >= U'{' && c <= U'~');
}

/// sacreBLEU's CHRF._remove_punctuation(): whitespace-split words with one ASCII punctuation
/// character split off the end, or else off the start, of every word longer than one character.
std::vector<std::u32string_view> chrf_words(std::u32string_view line) {
  std::vector<std::u32string_view> out;
  for (const auto w : py_split(line)) {
    if (w.size() == 1) {
      out.push_back(w);
    } else if (is_ascii_punct(w.back())) {
      out.push_back(w.substr(0, w.size() - 1));
      out.push_back(w.substr(w.size() - 1));
    } else if (is_ascii_punct(w.front())) {
      out.push_back(w.substr(0, 1));
      out.push_back(w.substr(1));
    } else {
      out.push_back(w);
    }
  }
  return out;
}

/// The n-grams of one side of one segment. Not copyable: the counts point into the strings.
struct ChrfNgrams {
  std::u32string chars;          ///< the characters n-grams are taken from
  std::u32string words;          ///< chrF++ words joined by single spaces
  std::vector<SortedNgrams> orders;  ///< char orders 1..nc, then word orders 1..nw

  ChrfNgrams() = default;
  ChrfNgrams(const ChrfNgrams&) = delete;
  ChrfNgrams& operator=(const ChrfNgrams&) = delete;
};

void count_char_ngrams(ChrfNgrams& out, int max_order) {
  const std::u32string_view text = out.chars;
  for (size_t n = 1; n <= static_cast<size_t>(max_order); ++n) {
    SortedNgrams ngrams;
    ngrams.reserve(text.size() >= n ? text.size() - n + 1 : 0);
    for (size_t i = 0; i + n <= text.size(); ++i) ngrams.push_back(text.substr(i, n));
    std::sort(ngrams.begin(), ngrams.end());
    out.orders.push_back(std::move(ngrams));
  }
}

void count_word_ngrams(ChrfNgrams& out, std::u32string_view line, int max_order) {
  const auto words = chrf_words(line);
  std::vector<size_t> starts;  // offsets of the words inside out.words, plus one past the end
  starts.reserve(words.size() + 1);
  out.words.reserve(line.size());
  for (const auto w : words) {
    if (!out.words.empty()) out.words.push_back(U' ');
    starts.push_back(out.words.size());
    out.words.append(w);
  }
  starts.push_back(out.words.size() + 1);
  const std::u32string_view text = out.words;
  for (size_t n = 1; n <= static_cast<size_t>(max_order); ++n) {
    SortedNgrams ngrams;
    ngrams.reserve(words.size() >= n ? words.size() - n + 1 : 0);
    for (size_t i = 0; i + n <= words.size(); ++i) {
      const size_t begin = starts[i], end = starts[i + n] - 1;
      ngrams.push_back(text.substr(begin, end - begin));
    }
    std::sort(ngrams.begin(), ngrams.end());
    out.orders.push_back(std::move(ngrams));
  }
}

std::unique_ptr<ChrfNgrams> extract_ngrams(std::string_view utf8_line, const ChrfOptions& options) {
  std::u32string line = utf8_decode(utf8_line);
  if (options.lowercase) line = py_lower(line);
  auto out = std::make_unique<ChrfNgrams>();
  out->orders.reserve(static_cast<size_t>(options.char_order + options.word_order));
  if (options.whitespace) {
    out->chars = line;
  } else {
    out->chars.reserve(line.size());
    for (const auto field : py_split(line)) out->chars.append(field);
  }
  count_char_ngrams(*out, options.char_order);
  if (options.word_order > 0) count_word_ngrams(*out, line, options.word_order);
  return out;
}

/// Clipped matches: the sum over n-grams of min(count in hyp, count in ref).
size_t count_matches(const SortedNgrams& hyp, const SortedNgrams& ref) {
  size_t i = 0, j = 0, matches = 0;
  while (i < hyp.size() && j < ref.size()) {
    const int order = hyp[i].compare(ref[j]);
    if (order < 0) {
      ++i;
    } else if (order > 0) {
      ++j;
    } else {
      const std::u32string_view ngram = hyp[i];
      size_t in_hyp = 0, in_ref = 0;
      for (; i < hyp.size() && hyp[i] == ngram; ++i) ++in_hyp;
      for (; j < ref.size() && ref[j] == ngram; ++j) ++in_ref;
      matches += std::min(in_hyp, in_ref);
    }
  }
  return matches;
}

/// [hyp, ref, match] for every order (sacreBLEU's _get_match_statistics()).
SegmentStats match_statistics(const ChrfNgrams& hyp, const ChrfNgrams& ref) {
  SegmentStats stats;
  stats.reserve(3 * hyp.orders.size());
  for (size_t k = 0; k < hyp.orders.size(); ++k) {
    const SortedNgrams& ref_ngrams = ref.orders[k];
    // A hypothesis n-gram count only counts when the reference has n-grams of that order.
    stats.push_back(ref_ngrams.empty() ? 0.0 : static_cast<double>(hyp.orders[k].size()));
    stats.push_back(static_cast<double>(ref_ngrams.size()));
    stats.push_back(static_cast<double>(count_matches(hyp.orders[k], ref_ngrams)));
  }
  return stats;
}

}  // namespace

double compute_chrf(const SegmentStats& stats, const ChrfOptions& options) {
  const auto order = static_cast<size_t>(options.char_order + options.word_order);
  if (stats.size() != 3 * order) {
    throw std::invalid_argument("chrF statistics need " + std::to_string(3 * order) +
                                " entries, got " + std::to_string(stats.size()));
  }
  const double eps = 1e-16;
  const double factor = static_cast<double>(options.beta) * options.beta;
  double score = 0.0, avg_prec = 0.0, avg_rec = 0.0;
  int effective_order = 0;
  for (size_t i = 0; i < order; ++i) {
    const double n_hyp = stats[3 * i], n_ref = stats[3 * i + 1], n_match = stats[3 * i + 2];
    const double prec = n_hyp > 0 ? n_match / n_hyp : eps;
    const double rec = n_ref > 0 ? n_match / n_ref : eps;
    const double denom = factor * prec + rec;
    score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
    if (n_hyp > 0 && n_ref > 0) {
      avg_prec += prec;
      avg_rec += rec;
      ++effective_order;
    }
  }
  if (options.eps_smoothing) return 100 * score / static_cast<double>(order);
  if (effective_order == 0) {
    avg_prec = avg_rec = 0.0;
  } else {
    avg_prec /= effective_order;
    avg_rec /= effective_order;
  }
  if (avg_prec + avg_rec == 0.0) return 0.0;
  score = (1 + factor) * avg_prec * avg_rec;
  score /= (factor * avg_prec) + avg_rec;
  return 100 * score;
}

std::string chrf_name(const ChrfOptions& options) {
  return "chrF" + std::to_string(options.beta) +
         std::string(static_cast<size_t>(std::max(0, options.word_order)), '+');
}

struct Chrf::Cache {
  /// segments[i] holds the n-grams of segment i's non-empty references.
  std::vector<std::vector<std::unique_ptr<ChrfNgrams>>> segments;
  std::string nrefs;
};

Chrf::Chrf(ChrfOptions options, const ReferenceSet& references)
    : options_(options), cache_(std::make_unique<Cache>()) {
  if (options_.char_order < 0 || options_.word_order < 0 ||
      options_.char_order + options_.word_order == 0) {
    throw std::invalid_argument("chrF: n-gram orders must be >= 0 and not both 0");
  }
  if (references.empty()) throw std::invalid_argument("chrF: no references given");
  const size_t num_segments = references.front().size();
  for (const auto& stream : references) {
    if (stream.size() != num_segments) {
      throw std::invalid_argument("chrF: reference streams differ in length (" +
                                  std::to_string(num_segments) + " vs " +
                                  std::to_string(stream.size()) + " lines)");
    }
  }
  size_t min_refs = references.size(), max_refs = 0;
  cache_->segments.resize(num_segments);
  for (size_t i = 0; i < num_segments; ++i) {
    auto& refs = cache_->segments[i];
    for (const auto& stream : references) {
      if (!stream[i].empty()) refs.push_back(extract_ngrams(stream[i], options_));
    }
    if (refs.empty()) {
      throw std::invalid_argument("chrF: segment " + std::to_string(i + 1) +
                                  " has no non-empty reference");
    }
    min_refs = std::min(min_refs, refs.size());
    max_refs = std::max(max_refs, refs.size());
  }
  cache_->nrefs = num_segments == 0 ? std::to_string(references.size())
                  : min_refs == max_refs ? std::to_string(max_refs) : "var";
}

Chrf::~Chrf() = default;

size_t Chrf::num_segments() const { return cache_->segments.size(); }

std::vector<SegmentStats> Chrf::segment_stats(const std::vector<std::string>& hyps) const {
  if (hyps.size() != num_segments()) {
    throw std::invalid_argument("chrF: " + std::to_string(hyps.size()) + " hypotheses but " +
                                std::to_string(num_segments()) + " reference segments");
  }
  std::vector<SegmentStats> rows;
  rows.reserve(hyps.size());
  for (size_t i = 0; i < hyps.size(); ++i) {
    const auto hyp = extract_ngrams(hyps[i], options_);
    SegmentStats best;
    double best_f = -1.0;
    for (const auto& ref : cache_->segments[i]) {
      SegmentStats stats = match_statistics(*hyp, *ref);
      const double f = compute_chrf(stats, options_);
      if (f > best_f) {
        best_f = f;
        best = std::move(stats);
      }
    }
    rows.push_back(std::move(best));
  }
  return rows;
}

Score Chrf::score(const SegmentStats& stats) const {
  return Score{chrf_name(options_), compute_chrf(stats, options_), "", std::nullopt};
}

double Chrf::score_value(const SegmentStats& stats) const { return compute_chrf(stats, options_); }

Signature Chrf::signature() const {
  Signature sig;
  sig.nrefs = cache_->nrefs;
  sig.metric_fields = {{"case", options_.lowercase ? "lc" : "mixed"},
                       {"eff", options_.eps_smoothing ? "no" : "yes"},
                       {"nc", std::to_string(options_.char_order)},
                       {"nw", std::to_string(options_.word_order)},
                       {"space", options_.whitespace ? "yes" : "no"}};
  return sig;
}

}  // namespace nmt::eval

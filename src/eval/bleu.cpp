/// @file bleu.cpp
#include "nmt/eval/bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "nmt/eval/unicode.h"

namespace nmt::eval {
namespace {

/// N-gram counts of one order: (n-gram, count) sorted by the n-gram's text, a view into a
/// single-spaced line. Sorted vectors, not hash maps: no hashing and one allocation per order,
/// and matching is a merge of two sorted lists.
using NgramCounts = std::vector<std::pair<std::u32string_view, int>>;

/// sacreBLEU's my_log(): log with log(0) floored to -9999999999.
double floored_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

/// Lowercase (optional), rstrip, tokenise, and collapse whitespace so that every n-gram is a
/// substring "w1 w2 ... wn" of the result.
std::u32string preprocess(std::string_view line, const BleuOptions& options) {
  std::u32string text = utf8_decode(line);
  if (options.lowercase) text = py_lower(text);
  return py_normalize_spaces(tokenize(py_rstrip(text), options.tokenizer));
}

/// Start offsets of the space-separated words of a single-spaced line, plus one past the end.
std::vector<size_t> word_starts(std::u32string_view text) {
  std::vector<size_t> starts;
  if (text.empty()) return starts;
  starts.push_back(0);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == U' ') starts.push_back(i + 1);
  }
  starts.push_back(text.size() + 1);
  return starts;
}

/// Counts of all n-grams, n = 1..max_order, of a single-spaced line; returns the word count too.
std::vector<NgramCounts> count_ngrams(std::u32string_view text, int max_order, long* num_words) {
  const std::vector<size_t> starts = word_starts(text);
  const size_t words = starts.empty() ? 0 : starts.size() - 1;
  *num_words = static_cast<long>(words);
  std::vector<NgramCounts> counts(static_cast<size_t>(max_order));
  std::vector<std::u32string_view> grams;
  grams.reserve(words);
  for (size_t n = 1; n <= counts.size() && n <= words; ++n) {
    grams.clear();
    for (size_t i = 0; i + n <= words; ++i) {
      const size_t begin = starts[i], end = starts[i + n] - 1;
      grams.push_back(text.substr(begin, end - begin));
    }
    std::sort(grams.begin(), grams.end());
    auto& out = counts[n - 1];
    out.reserve(grams.size());
    for (const auto& g : grams) {
      if (!out.empty() && out.back().first == g) ++out.back().second;
      else out.emplace_back(g, 1);
    }
  }
  return counts;
}

/// The n-grams of either list, each with the larger of its two counts (several references).
NgramCounts max_counts(const NgramCounts& a, const NgramCounts& b) {
  NgramCounts out;
  out.reserve(a.size() + b.size());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && a[i].first < b[j].first)) {
      out.push_back(a[i++]);
    } else if (i == a.size() || b[j].first < a[i].first) {
      out.push_back(b[j++]);
    } else {
      out.emplace_back(a[i].first, std::max(a[i].second, b[j].second));
      ++i;
      ++j;
    }
  }
  return out;
}

/// Σ over the hypothesis n-grams of min(count, reference count): the clipped matches.
long clipped_matches(const NgramCounts& hyp, const NgramCounts& ref) {
  long matches = 0;
  for (size_t i = 0, j = 0; i < hyp.size() && j < ref.size();) {
    if (hyp[i].first < ref[j].first) {
      ++i;
    } else if (ref[j].first < hyp[i].first) {
      ++j;
    } else {
      matches += std::min(hyp[i++].second, ref[j++].second);
    }
  }
  return matches;
}

/// sacreBLEU's _get_closest_ref_len(): closest length, the shorter one on ties.
long closest_ref_len(long hyp_len, const std::vector<long>& ref_lens) {
  long best_diff = -1, best_len = -1;
  for (const long len : ref_lens) {
    const long diff = std::labs(hyp_len - len);
    if (best_diff == -1 || diff < best_diff) {
      best_diff = diff;
      best_len = len;
    } else if (diff == best_diff && len < best_len) {
      best_len = len;
    }
  }
  return best_len;
}

}  // namespace

Smoothing parse_smoothing(std::string_view name) {
  if (name == "none") return Smoothing::None;
  if (name == "floor") return Smoothing::Floor;
  if (name == "add-k") return Smoothing::AddK;
  if (name == "exp") return Smoothing::Exp;
  throw std::invalid_argument("unknown smoothing method '" + std::string(name) +
                              "' (choose from exp, floor, add-k, none)");
}

std::string smoothing_name(Smoothing method) {
  switch (method) {
    case Smoothing::None: return "none";
    case Smoothing::Floor: return "floor";
    case Smoothing::AddK: return "add-k";
    case Smoothing::Exp: return "exp";
  }
  return "?";
}

double default_smooth_value(Smoothing method) {
  switch (method) {
    case Smoothing::Floor: return 0.1;
    case Smoothing::AddK: return 1.0;
    default: return 0.0;
  }
}

std::string BleuScore::verbose() const {
  std::string out;
  for (size_t i = 0; i < precisions.size(); ++i) {
    if (i) out += '/';
    out += format_fixed(precisions[i], 1);
  }
  out += " (BP = " + format_fixed(bp, 3) + " ratio = " + format_fixed(ratio(), 3) +
         " hyp_len = " + std::to_string(sys_len) + " ref_len = " + std::to_string(ref_len) + ")";
  return out;
}

BleuScore compute_bleu(const SegmentStats& stats, const BleuOptions& options) {
  const auto order = static_cast<size_t>(options.max_ngram_order);
  if (stats.size() != 2 + 2 * order) {
    throw std::invalid_argument("BLEU statistics need " + std::to_string(2 + 2 * order) +
                                " entries, got " + std::to_string(stats.size()));
  }
  BleuScore out;
  out.sys_len = static_cast<long>(stats[0]);
  out.ref_len = static_cast<long>(stats[1]);
  out.counts.assign(stats.begin() + 2, stats.begin() + 2 + static_cast<long>(order));
  out.totals.assign(stats.begin() + 2 + static_cast<long>(order), stats.end());
  out.precisions.assign(order, 0.0);
  const double smooth_value =
      options.smooth_value.value_or(default_smooth_value(options.smooth_method));

  if (out.sys_len < out.ref_len) {
    out.bp = out.sys_len > 0 ? std::exp(1.0 - static_cast<double>(out.ref_len) / out.sys_len) : 0.0;
  } else {
    out.bp = 1.0;
  }
  // No matching n-gram at all: BLEU is 0 whatever the smoothing (sacreBLEU #141).
  if (std::all_of(out.counts.begin(), out.counts.end(), [](double c) { return c == 0.0; })) {
    return out;
  }

  double smooth_mteval = 1.0;
  size_t eff_order = order;
  for (size_t n = 1; n <= order; ++n) {
    double& correct = out.counts[n - 1];
    double& total = out.totals[n - 1];
    if (options.smooth_method == Smoothing::AddK && n > 1) {
      correct += smooth_value;
      total += smooth_value;
    }
    if (total == 0.0) break;
    if (options.effective_order) eff_order = n;
    if (correct == 0.0) {
      if (options.smooth_method == Smoothing::Exp) {
        smooth_mteval *= 2;
        out.precisions[n - 1] = 100.0 / (smooth_mteval * total);
      } else if (options.smooth_method == Smoothing::Floor) {
        out.precisions[n - 1] = 100.0 * smooth_value / total;
      }
    } else {
      out.precisions[n - 1] = 100.0 * correct / total;
    }
  }
  double log_sum = 0.0;
  for (size_t i = 0; i < eff_order; ++i) log_sum += floored_log(out.precisions[i]);
  out.score = out.bp * std::exp(log_sum / static_cast<double>(eff_order));
  return out;
}

/// Reference n-grams of one segment: the maximum count over its references, and their lengths.
struct BleuSegmentRefs {
  std::vector<std::u32string> texts;  ///< owns the text the n-gram keys point into
  std::vector<NgramCounts> ngrams;
  std::vector<long> lengths;
};

struct Bleu::Cache {
  std::vector<BleuSegmentRefs> segments;
  std::string nrefs;
};

Bleu::Bleu(BleuOptions options, const ReferenceSet& references)
    : options_(std::move(options)), cache_(std::make_unique<Cache>()) {
  if (options_.max_ngram_order < 1) throw std::invalid_argument("BLEU: max n-gram order must be >= 1");
  if (references.empty()) throw std::invalid_argument("BLEU: no references given");
  const size_t num_segments = references.front().size();
  for (const auto& stream : references) {
    if (stream.size() != num_segments) {
      throw std::invalid_argument("BLEU: reference streams differ in length (" +
                                  std::to_string(num_segments) + " vs " +
                                  std::to_string(stream.size()) + " lines)");
    }
  }
  size_t min_refs = references.size(), max_refs = 0;
  cache_->segments.resize(num_segments);
  for (size_t i = 0; i < num_segments; ++i) {
    BleuSegmentRefs& seg = cache_->segments[i];
    seg.texts.reserve(references.size());  // no reallocation: the n-gram keys point into texts
    seg.ngrams.resize(static_cast<size_t>(options_.max_ngram_order));
    for (const auto& stream : references) {
      if (stream[i].empty()) continue;  // fewer references for this segment
      seg.texts.push_back(preprocess(stream[i], options_));
      long len = 0;
      auto counts = count_ngrams(seg.texts.back(), options_.max_ngram_order, &len);
      seg.lengths.push_back(len);
      for (size_t n = 0; n < counts.size(); ++n)
        seg.ngrams[n] = seg.ngrams[n].empty() ? std::move(counts[n]) : max_counts(seg.ngrams[n], counts[n]);
    }
    if (seg.texts.empty()) {
      throw std::invalid_argument("BLEU: segment " + std::to_string(i + 1) +
                                  " has no non-empty reference");
    }
    min_refs = std::min(min_refs, seg.texts.size());
    max_refs = std::max(max_refs, seg.texts.size());
  }
  cache_->nrefs = num_segments == 0 ? std::to_string(references.size())
                  : min_refs == max_refs ? std::to_string(max_refs) : "var";
}

Bleu::~Bleu() = default;

size_t Bleu::num_segments() const { return cache_->segments.size(); }

std::vector<SegmentStats> Bleu::segment_stats(const std::vector<std::string>& hyps) const {
  if (hyps.size() != num_segments()) {
    throw std::invalid_argument("BLEU: " + std::to_string(hyps.size()) + " hypotheses but " +
                                std::to_string(num_segments()) + " reference segments");
  }
  const auto order = static_cast<size_t>(options_.max_ngram_order);
  std::vector<SegmentStats> rows;
  rows.reserve(hyps.size());
  size_t tokenized_periods = 0;
  for (size_t i = 0; i < hyps.size(); ++i) {
    const std::string& hyp = hyps[i];
    if (hyp.size() >= 2 && hyp.compare(hyp.size() - 2, 2, " .") == 0) ++tokenized_periods;
    const std::u32string text = preprocess(hyp, options_);
    long hyp_len = 0;
    const auto counts = count_ngrams(text, options_.max_ngram_order, &hyp_len);
    const BleuSegmentRefs& refs = cache_->segments[i];

    SegmentStats row(2 + 2 * order, 0.0);
    row[0] = static_cast<double>(hyp_len);
    row[1] = static_cast<double>(closest_ref_len(hyp_len, refs.lengths));
    for (size_t n = 0; n < order; ++n) {
      for (const auto& gram : counts[n]) row[2 + order + n] += gram.second;
      row[2 + n] += static_cast<double>(clipped_matches(counts[n], refs.ngrams[n]));
    }
    rows.push_back(std::move(row));
  }
  if (!options_.force && tokenized_periods >= 100) {
    spdlog::warn("That's {} lines that end in a tokenized period ('.'): it looks like you forgot "
                 "to detokenize your test data, which may hurt your score (silence with --force)",
                 tokenized_periods);
  }
  return rows;
}

Score Bleu::score(const SegmentStats& stats) const {
  const BleuScore bleu = compute_bleu(stats, options_);
  return Score{"BLEU", bleu.score, bleu.verbose(), std::nullopt};
}

double Bleu::score_value(const SegmentStats& stats) const {
  return compute_bleu(stats, options_).score;
}

Signature Bleu::signature() const {
  std::string smooth = smoothing_name(options_.smooth_method);
  if (options_.smooth_method == Smoothing::Floor || options_.smooth_method == Smoothing::AddK) {
    smooth += "[" +
              format_fixed(options_.smooth_value.value_or(default_smooth_value(options_.smooth_method)), 2) +
              "]";
  }
  Signature sig;
  sig.nrefs = cache_->nrefs;
  sig.metric_fields = {{"case", options_.lowercase ? "lc" : "mixed"},
                       {"eff", options_.effective_order ? "yes" : "no"},
                       {"tok", tokenizer_name(options_.tokenizer)},
                       {"smooth", smooth}};
  return sig;
}

}  // namespace nmt::eval

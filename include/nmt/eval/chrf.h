#pragma once
/// @file chrf.h
/// chrF (Popović, 2015) and chrF++ (Popović, 2017) exactly as sacreBLEU 2.x computes them:
///  - character n-grams of orders 1..char_order over the code points of the line, with all
///    whitespace removed first (unless `whitespace`);
///  - chrF++ adds word n-grams of orders 1..word_order over whitespace-split words, where one
///    ASCII punctuation character is split off the end of a word, or else off its start
///    ("(hi)" gives "(hi" and ")");
///  - per order: [hypothesis n-grams, reference n-grams, clipped matches]; the hypothesis count
///    is 0 when the reference has no n-gram of that order;
///  - with several references, each segment keeps the statistics of the reference with the best
///    sentence-level F-score (the first one on ties);
///  - the corpus score sums the statistics over segments, averages precision and recall over the
///    orders both sides have ("effective order", sacreBLEU's default) and returns
///    100 * F_beta; with `eps_smoothing` it instead averages per-order F-scores with a 1e-16
///    floor (chrF++.py / Moses / NLTK style).
/// Statistics layout (one row per segment): [hyp_1, ref_1, match_1, hyp_2, ...] over the char
/// orders, then the word orders.
#include <memory>
#include <string>
#include <vector>

#include "nmt/eval/metric.h"

namespace nmt::eval {

struct ChrfOptions {
  int char_order = 6;
  int word_order = 0;  ///< 2 gives chrF++
  int beta = 2;
  bool lowercase = false;
  bool whitespace = false;  ///< keep whitespace inside character n-grams
  bool eps_smoothing = false;
};

/// The F-score (0..100) of summed statistics (sacreBLEU's CHRF._compute_f_score). Throws
/// std::invalid_argument if `stats` does not have 3 * (char_order + word_order) entries.
double compute_chrf(const SegmentStats& stats, const ChrfOptions& options);

/// The metric name: "chrF2", "chrF2+", "chrF2++" (one '+' per word order).
std::string chrf_name(const ChrfOptions& options);

class Chrf : public Metric {
 public:
  /// Extracts and caches the reference n-grams. Throws std::invalid_argument if the reference
  /// streams differ in length, a segment has no non-empty reference, or a line is not UTF-8.
  Chrf(ChrfOptions options, const ReferenceSet& references);
  ~Chrf() override;

  size_t num_segments() const override;
  size_t stats_width() const override {
    return 3 * static_cast<size_t>(options_.char_order + options_.word_order);
  }
  std::vector<SegmentStats> segment_stats(const std::vector<std::string>& hyps) const override;
  Score score(const SegmentStats& stats) const override;
  double score_value(const SegmentStats& stats) const override;
  /// nrefs, case (mixed|lc), eff (yes unless eps_smoothing), nc, nw, space (yes|no).
  Signature signature() const override;

 private:
  struct Cache;
  ChrfOptions options_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace nmt::eval

#pragma once
/// @file metric.h
/// The interface BLEU and chrF share (sacreBLEU's `Metric`): references are preprocessed once
/// at construction, hypotheses are turned into per-segment sufficient statistics, and any sum of
/// statistics (a corpus, a bootstrap resample, one sentence) is turned into a Score.
#include <string>
#include <vector>

#include "nmt/eval/score.h"

namespace nmt::eval {

/// References as sacreBLEU takes them: refs[r][i] is segment i of reference stream r. An empty
/// line means "no reference r for segment i" (the segment then has fewer references).
using ReferenceSet = std::vector<std::vector<std::string>>;

class Metric {
 public:
  virtual ~Metric() = default;

  /// Number of segments the references cover.
  virtual size_t num_segments() const = 0;

  /// Length of one row of statistics.
  virtual size_t stats_width() const = 0;

  /// One row of sufficient statistics per hypothesis. Throws std::invalid_argument when the
  /// number of hypotheses differs from num_segments(), or on invalid UTF-8.
  virtual std::vector<SegmentStats> segment_stats(const std::vector<std::string>& hyps) const = 0;

  /// The score of summed statistics (a corpus, a resample) or of one segment's row.
  virtual Score score(const SegmentStats& stats) const = 0;

  /// Only the number, for resampling loops (same value as score(stats).score).
  virtual double score_value(const SegmentStats& stats) const { return score(stats).score; }

  /// The reproducibility signature (without bs/seed; the caller adds those when it resamples).
  virtual Signature signature() const = 0;

  /// Corpus-level score of `hyps` (statistics summed over all segments, then scored once).
  Score corpus_score(const std::vector<std::string>& hyps) const {
    return score(sum_stats(segment_stats(hyps), stats_width()));
  }
};

}  // namespace nmt::eval

#pragma once
/// @file bootstrap.h
/// Bootstrap resampling over segments, as sacreBLEU 2.x does it (sacrebleu/significance.py):
///  - resample r (r = 0..n_samples-1) takes the segments
///    numpy.random.default_rng(seed).integers(0, N, size=(n_samples, N))[r], so a given seed
///    draws the same resamples as sacreBLEU (default seed 12345, sacreBLEU's SACREBLEU_SEED);
///  - a resample's score is the metric applied to the summed statistics of its segments;
///  - the 95% confidence estimate is the resample mean and half the distance between the sorted
///    resample scores at positions n/40 and n - n/40 - 1;
///  - the paired test (Koehn, 2004; Moses' bootstrap-hypothesis-difference-significance.pl)
///    resamples both systems with the same segments and returns
///    p = (1 + #{r : |d_r| - mean(|d|) > |d|}) / (n_samples + 1), where d_r is the resampled and
///    d the actual score difference.
/// One deliberate difference: when both systems have identical statistics on every segment,
/// the p-value is 1 (sacreBLEU would report 1 / (n_samples + 1), calling identical systems
/// significantly different).
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "nmt/eval/score.h"

namespace nmt::eval {

/// Draws resamples one at a time: resample r is row r of
/// numpy.random.default_rng(seed).integers(0, num_segments, size=(num_samples, num_segments)),
/// whatever num_samples is (numpy fills that matrix row by row from one stream).
class ResampleGenerator {
 public:
  /// Throws std::invalid_argument if num_segments is 0 or >= 2^32.
  ResampleGenerator(size_t num_segments, uint64_t seed);
  ~ResampleGenerator();

  /// The segment indices of the next resample.
  const std::vector<uint32_t>& next();

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::vector<uint32_t> indices_;
};

/// Turns summed statistics into a score (e.g. Metric::score_value).
using ScoreFunction = std::function<double(const SegmentStats&)>;

/// Mean (numpy's pairwise summation) and 95% half-width of resample scores (sacreBLEU's
/// estimate_ci). Throws std::invalid_argument if `scores` is empty.
ConfidenceEstimate estimate_ci(std::vector<double> scores);

/// Confidence estimate of one system's score from `num_samples` seeded resamples.
ConfidenceEstimate bootstrap_confidence(const std::vector<SegmentStats>& stats,
                                        const ScoreFunction& score, size_t num_samples,
                                        uint64_t seed);

/// Result of comparing a system with a baseline.
struct PairedBootstrapResult {
  double baseline_score = 0.0;
  double system_score = 0.0;
  ConfidenceEstimate baseline_confidence;
  ConfidenceEstimate system_confidence;
  double p_value = 1.0;  ///< probability of a difference this large arising by chance
};

/// Paired bootstrap resampling test of `system` against `baseline` (same references, same
/// segment order). Throws std::invalid_argument if the two have different numbers of rows.
PairedBootstrapResult paired_bootstrap(const std::vector<SegmentStats>& baseline,
                                       const std::vector<SegmentStats>& system,
                                       const ScoreFunction& score, size_t num_samples,
                                       uint64_t seed);

}  // namespace nmt::eval

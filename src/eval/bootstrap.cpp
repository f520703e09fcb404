/// @file bootstrap.cpp
#include "nmt/eval/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "nmt/eval/numpy_rng.h"

namespace nmt::eval {
namespace {

/// numpy's pairwise_sum for float64 (blocks of 8, split at multiples of 8 above 128 items).
double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double res = 0.0;
    for (size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (size_t j = 0; j < 8; ++j) r[j] = a[j];
    size_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (size_t j = 0; j < 8; ++j) r[j] += a[i + j];
    }
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/// numpy's ndarray.mean() of a 1-D float64 array: the reduction starts from the first element.
double numpy_mean(const std::vector<double>& values) {
  if (values.empty()) throw std::invalid_argument("mean of an empty list");
  return (values[0] + pairwise_sum(values.data() + 1, values.size() - 1)) /
         static_cast<double>(values.size());
}

/// sacreBLEU's _compute_p_value() applied to the paired bootstrap's centred differences.
double paired_p_value(const std::vector<double>& baseline_scores,
                      const std::vector<double>& system_scores, double real_difference) {
  std::vector<double> diffs(system_scores.size());
  for (size_t r = 0; r < diffs.size(); ++r) diffs[r] = std::fabs(system_scores[r] - baseline_scores[r]);
  const double mean = numpy_mean(diffs);
  size_t count = 0;
  for (const double d : diffs) {
    if (d - mean > real_difference) ++count;
  }
  return static_cast<double>(count + 1) / static_cast<double>(diffs.size() + 1);
}

/// Scores of `num_samples` seeded resamples, for each system (all resampled identically).
std::vector<std::vector<double>> resample_scores(
    const std::vector<const std::vector<SegmentStats>*>& systems, const ScoreFunction& score,
    size_t num_samples, uint64_t seed) {
  if (num_samples == 0) throw std::invalid_argument("bootstrap resampling needs >= 1 resample");
  const size_t num_segments = systems.front()->size();
  ResampleGenerator resamples(num_segments, seed);
  std::vector<std::vector<double>> scores(systems.size());
  for (size_t r = 0; r < num_samples; ++r) {
    const std::vector<uint32_t>& indices = resamples.next();
    for (size_t s = 0; s < systems.size(); ++s) {
      const std::vector<SegmentStats>& stats = *systems[s];
      SegmentStats sum(stats.front().size(), 0.0);
      for (const uint32_t j : indices) {
        for (size_t k = 0; k < sum.size(); ++k) sum[k] += stats[j][k];
      }
      scores[s].push_back(score(sum));
    }
  }
  return scores;
}

}  // namespace

struct ResampleGenerator::State {
  NumpyPcg64 rng;
};

ResampleGenerator::ResampleGenerator(size_t num_segments, uint64_t seed)
    : state_(std::make_unique<State>(State{NumpyPcg64(seed)})), indices_(num_segments) {
  if (num_segments == 0 || num_segments >= (1ULL << 32)) {
    throw std::invalid_argument("bootstrap resampling needs between 1 and 2^32-1 segments");
  }
}

ResampleGenerator::~ResampleGenerator() = default;

const std::vector<uint32_t>& ResampleGenerator::next() {
  for (auto& index : indices_) index = state_->rng.integers(indices_.size());
  return indices_;
}

ConfidenceEstimate estimate_ci(std::vector<double> scores) {
  if (scores.empty()) throw std::invalid_argument("confidence estimate of no scores");
  std::sort(scores.begin(), scores.end());
  const size_t n = scores.size();
  const size_t lower = n / 40;
  const size_t upper = n - lower - 1;
  return ConfidenceEstimate{numpy_mean(scores), 0.5 * (scores[upper] - scores[lower])};
}

ConfidenceEstimate bootstrap_confidence(const std::vector<SegmentStats>& stats,
                                        const ScoreFunction& score, size_t num_samples,
                                        uint64_t seed) {
  return estimate_ci(resample_scores({&stats}, score, num_samples, seed).front());
}

PairedBootstrapResult paired_bootstrap(const std::vector<SegmentStats>& baseline,
                                       const std::vector<SegmentStats>& system,
                                       const ScoreFunction& score, size_t num_samples,
                                       uint64_t seed) {
  if (baseline.size() != system.size()) {
    throw std::invalid_argument("paired bootstrap: baseline has " + std::to_string(baseline.size()) +
                                " segments, system has " + std::to_string(system.size()));
  }
  const size_t width = baseline.empty() ? 0 : baseline.front().size();
  PairedBootstrapResult result;
  result.baseline_score = score(sum_stats(baseline, width));
  result.system_score = score(sum_stats(system, width));

  const auto scores = resample_scores({&baseline, &system}, score, num_samples, seed);
  const std::vector<double>& baseline_scores = scores[0];
  const std::vector<double>& system_scores = scores[1];
  result.baseline_confidence = estimate_ci(baseline_scores);
  result.system_confidence = estimate_ci(system_scores);
  if (baseline == system) {
    result.p_value = 1.0;  // identical systems: no evidence of a difference (see header)
  } else {
    result.p_value = paired_p_value(baseline_scores, system_scores,
                                    std::fabs(result.baseline_score - result.system_score));
  }
  return result;
}

}  // namespace nmt::eval

// Bootstrap confidence intervals and the paired bootstrap test.
#include <gtest/gtest.h>

#include <cmath>

#include <numeric>

#include "nmt/eval/bleu.h"
#include "nmt/eval/bootstrap.h"
#include "nmt/eval/numpy_rng.h"

using namespace nmt::eval;

namespace {

/// A deterministic toy corpus: `n` references of 10 words, and systems that replace roughly
/// every `every`-th word of each reference by an unknown word (every = 0: perfect copy); the
/// positions and the rate vary with the sentence so that sentences differ in quality.
struct ToyCorpus {
  std::vector<std::string> refs;
  std::vector<std::string> system(int every) const {
    std::vector<std::string> out;
    for (size_t i = 0; i < refs.size(); ++i) {
      const std::string& ref = refs[i];
      const int period = every + static_cast<int>(i % 3);
      std::string line;
      int k = 0;
      size_t start = 0;
      while (start <= ref.size()) {
        size_t end = ref.find(' ', start);
        if (end == std::string::npos) end = ref.size();
        std::string word = ref.substr(start, end - start);
        if (every > 0 && (++k + static_cast<int>(i)) % period == 0) word = "zz" + word;
        line += (line.empty() ? "" : " ") + word;
        start = end + 1;
      }
      out.push_back(line);
    }
    return out;
  }
};

ToyCorpus make_corpus(int n) {
  ToyCorpus corpus;
  for (int i = 0; i < n; ++i) {
    std::string line;
    for (int j = 0; j < 10; ++j) line += (j ? " w" : "w") + std::to_string((i * 7 + j * 13) % 50);
    corpus.refs.push_back(line);
  }
  return corpus;
}

}  // namespace

TEST(EvalBootstrap, ResamplesAreNumpyChoice) {
  // numpy.random.default_rng(12345).integers(0, 10, size=(n, 10))[0][:3] == [6, 2, 7]
  ResampleGenerator resamples(10, 12345);
  const std::vector<uint32_t> first = resamples.next();
  EXPECT_EQ(first[0], 6u);
  EXPECT_EQ(first[1], 2u);
  EXPECT_EQ(first[2], 7u);
  // Row 1 continues the same stream.
  NumpyPcg64 rng(12345);
  for (int i = 0; i < 10; ++i) rng.integers(10);
  const std::vector<uint32_t> second = resamples.next();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(second[i], rng.integers(10));
  EXPECT_THROW(ResampleGenerator(0, 1), std::invalid_argument);
}

TEST(EvalBootstrap, EstimateCiUsesSacrebleuQuantiles) {
  std::vector<double> scores(1000);
  std::iota(scores.begin(), scores.end(), 0.0);
  std::reverse(scores.begin(), scores.end());
  const ConfidenceEstimate ci = estimate_ci(scores);
  EXPECT_DOUBLE_EQ(ci.mean, 499.5);
  EXPECT_DOUBLE_EQ(ci.half_width, 0.5 * (974 - 25));  // sorted[n/40], sorted[n - n/40 - 1]
}

TEST(EvalBootstrap, ConfidenceIsReproducibleAndSeedDependent) {
  const ToyCorpus corpus = make_corpus(300);
  Bleu bleu({}, {corpus.refs});
  const auto stats = bleu.segment_stats(corpus.system(4));
  const auto fn = [&](const SegmentStats& s) { return bleu.score_value(s); };
  const ConfidenceEstimate a = bootstrap_confidence(stats, fn, 200, 12345);
  const ConfidenceEstimate b = bootstrap_confidence(stats, fn, 200, 12345);
  const ConfidenceEstimate c = bootstrap_confidence(stats, fn, 200, 777);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.half_width, b.half_width);
  EXPECT_NE(a.mean, c.mean);
  const double actual = bleu.score(sum_stats(stats, bleu.stats_width())).score;
  EXPECT_GT(a.half_width, 0.0);
  EXPECT_LT(std::fabs(a.mean - actual), a.half_width);  // the actual score is inside the interval
}

TEST(EvalBootstrap, IdenticalSystemsAreNotSignificant) {
  const ToyCorpus corpus = make_corpus(200);
  Bleu bleu({}, {corpus.refs});
  const auto stats = bleu.segment_stats(corpus.system(3));
  const auto fn = [&](const SegmentStats& s) { return bleu.score_value(s); };
  const auto result = paired_bootstrap(stats, stats, fn, 1000, 12345);
  EXPECT_EQ(result.p_value, 1.0);
  EXPECT_EQ(result.baseline_score, result.system_score);
}

TEST(EvalBootstrap, NearlyIdenticalSystemsHaveHighPValue) {
  const ToyCorpus corpus = make_corpus(200);
  Bleu bleu({}, {corpus.refs});
  auto hyps = corpus.system(3);
  const auto baseline = bleu.segment_stats(hyps);
  hyps[17] = corpus.refs[17];  // one sentence better
  const auto fn = [&](const SegmentStats& s) { return bleu.score_value(s); };
  const auto result = paired_bootstrap(baseline, bleu.segment_stats(hyps), fn, 1000, 12345);
  EXPECT_GT(result.system_score, result.baseline_score);
  EXPECT_GT(result.p_value, 0.05);
}

TEST(EvalBootstrap, ClearlyBetterSystemIsSignificant) {
  const ToyCorpus corpus = make_corpus(200);
  Bleu bleu({}, {corpus.refs});
  const auto fn = [&](const SegmentStats& s) { return bleu.score_value(s); };
  const auto worse = bleu.segment_stats(corpus.system(2));
  const auto better = bleu.segment_stats(corpus.system(5));
  const auto result = paired_bootstrap(worse, better, fn, 1000, 12345);
  EXPECT_GT(result.system_score, result.baseline_score + 10);
  EXPECT_LT(result.p_value, 0.05);
  EXPECT_DOUBLE_EQ(result.p_value, 1.0 / 1001);  // no resample reaches the real difference
  // Same seed, same answer.
  const auto again = paired_bootstrap(worse, better, fn, 1000, 12345);
  EXPECT_EQ(again.p_value, result.p_value);
  EXPECT_EQ(again.system_confidence.mean, result.system_confidence.mean);
}

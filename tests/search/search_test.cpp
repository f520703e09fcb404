#include "nmt/search/search.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/data/batching.h"
#include "nmt/models/rnn.h"
#include "support/search_util.h"

namespace {

using nmt::data::kEos;
using nmt::search::BeamSearch;
using nmt::SearchConfig;

constexpr int64_t V = 6;  // PAD UNK BOS EOS a=4 b=5

/// One row of log-probs from a probability map {token: p}; other tokens get ~0 probability.
at::Tensor row(std::initializer_list<std::pair<int64_t, double>> probs) {
  auto r = torch::full({V}, -1e9, torch::kFloat);
  for (auto [tok, p] : probs) r[tok] = std::log(p);
  return r;
}

SearchConfig options(int beam, double alpha = 0.0) {
  SearchConfig o;
  o.beam_size = beam;
  o.length_penalty = alpha;
  return o;
}

TEST(BeamSearch, FindsTheBetterHypothesisThatGreedyMisses) {
  // Step 1: a (0.6) or b (0.4). Step 2: after a, EOS has 0.3; after b, EOS has 0.9.
  // Greedy ends with "a ..." ; beam 2 finds "b" with p = 0.36 > 0.18.
  BeamSearch beam(1, options(2), {10});
  auto adv = beam.advance(torch::stack({row({{4, 0.6}, {5, 0.4}}), row({{4, 0.6}, {5, 0.4}})}), {});
  ASSERT_EQ(adv.tokens.size(0), 2);
  EXPECT_EQ(adv.tokens[0].item<int64_t>(), 4);
  EXPECT_EQ(adv.tokens[1].item<int64_t>(), 5);
  adv = beam.advance(torch::stack({row({{kEos, 0.3}, {5, 0.7}}), row({{kEos, 0.9}, {4, 0.1}})}), {});
  // "b EOS" (0.36) finished; "a b" (0.42) continues and must still be beaten later.
  adv = beam.advance(torch::stack({row({{kEos, 0.5}, {4, 0.5}}), row({{kEos, 0.5}, {4, 0.5}})}), {});
  ASSERT_TRUE(beam.done());
  auto best = beam.best();
  ASSERT_EQ(best.size(), 1u);
  EXPECT_EQ(best[0].tokens, (std::vector<int64_t>{5}));
  EXPECT_NEAR(best[0].log_prob, std::log(0.36), 1e-5);
  ASSERT_EQ(beam.finished()[0].size(), 2u);
}

TEST(BeamSearch, KeepsTheKBestOfAllBeamsTimesVocabularyCandidates) {
  // Random log-probs, EOS impossible (no hypothesis ends): at every step the K continuing
  // candidates of a sentence must be the K best of all K × V (beam score + log-prob), best
  // first, whatever the beam and vocabulary sizes (also 2K > V).
  torch::manual_seed(11);
  for (int64_t vocab : {7, 40}) {
    for (int K : {1, 2, 4}) {
      const int64_t sentences = 3;
      BeamSearch beam(sentences, options(K), std::vector<int64_t>(sentences, 100));
      auto base = torch::full({sentences * K}, -std::numeric_limits<float>::infinity());
      for (int64_t i = 0; i < sentences; ++i) base[i * K] = 0.0f;
      for (int step = 0; step < 5; ++step) {
        auto lp = at::log_softmax(torch::randn({sentences * K, vocab}) * 3, -1);
        lp.select(1, kEos).fill_(-std::numeric_limits<float>::infinity());
        auto adv = beam.advance(lp, {});
        auto all = (lp + base.unsqueeze(1)).view({sentences, K * vocab}).topk(K, 1);
        auto expect_rows = torch::arange(sentences).unsqueeze(1) * K + std::get<1>(all).div(vocab, "floor");
        auto expect_tokens = std::get<1>(all).remainder(vocab);
        EXPECT_TRUE(torch::equal(adv.rows, expect_rows.flatten())) << "V " << vocab << " K " << K << " step " << step;
        EXPECT_TRUE(torch::equal(adv.tokens, expect_tokens.flatten())) << "V " << vocab << " K " << K << " step " << step;
        base = std::get<0>(all).flatten();
      }
    }
  }
}

TEST(BeamSearch, LengthPenaltyFavoursLongerHypotheses) {
  // "EOS" now (p 0.5) against "a EOS" (p 0.45): α = 0 keeps the short one, α = 2 the long one.
  for (double alpha : {0.0, 2.0}) {
    BeamSearch beam(1, options(2, alpha), {10});
    beam.advance(torch::stack({row({{kEos, 0.5}, {4, 0.45}, {5, 0.05}}), row({{kEos, 1.0}})}), {});
    if (!beam.done()) beam.advance(torch::stack({row({{kEos, 1.0}}), row({{kEos, 1.0}})}), {});
    if (!beam.done()) beam.advance(torch::stack({row({{kEos, 1.0}}), row({{kEos, 1.0}})}), {});
    auto best = beam.best()[0];
    if (alpha == 0.0) EXPECT_TRUE(best.tokens.empty()) << "alpha 0";
    else EXPECT_EQ(best.tokens, (std::vector<int64_t>{4})) << "alpha 2";
  }
}

TEST(BeamSearch, StopsAtMaximumLength) {
  BeamSearch beam(1, options(2), {3});
  int steps = 0;
  while (!beam.done()) {
    beam.advance(torch::stack({row({{4, 0.9}, {5, 0.1}}), row({{4, 0.9}, {5, 0.1}})}), {});
    ASSERT_LE(++steps, 3);
  }
  EXPECT_EQ(beam.best()[0].tokens.size(), 3u);
}

TEST(Search, LengthPenaltyIsGnmt) {
  EXPECT_DOUBLE_EQ(nmt::search::length_penalty(7, 1.0), 2.0);
  EXPECT_DOUBLE_EQ(nmt::search::length_penalty(7, 0.0), 1.0);
  EXPECT_NEAR(nmt::search::length_penalty(1, 0.6), 1.0, 1e-12);
}

class ModelSearch : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = nmt::testing::small_rnn(3);
    // Random sources of different lengths, padded.
    std::vector<std::vector<int64_t>> sents;
    for (int i = 0; i < 6; ++i) {
      std::vector<int64_t> s;
      for (int j = 0; j < 2 + i; ++j) s.push_back(4 + (i * 7 + j * 3) % 16);
      sents.push_back(s);
    }
    src_ = nmt::data::make_source_batch(sents, {0, 1, 2, 3, 4, 5}, torch::kCPU).src;
  }
  std::shared_ptr<nmt::models::RnnSeq2SeqImpl> model_;
  at::Tensor src_;
};

TEST_F(ModelSearch, BeamSizeOneEqualsGreedy) {
  for (double alpha : {0.0, 1.0}) {
    auto o = options(1, alpha);
    torch::NoGradGuard g;
    model_->eval();
    auto greedy = nmt::search::greedy_search(*model_, src_, o);
    auto beam = nmt::search::beam_search(*model_, src_, o);
    ASSERT_EQ(greedy.size(), beam.size());
    for (size_t i = 0; i < greedy.size(); ++i) {
      EXPECT_EQ(greedy[i].tokens, beam[i].tokens) << "sentence " << i;
      EXPECT_NEAR(greedy[i].log_prob, beam[i].log_prob, 1e-4) << "sentence " << i;
      EXPECT_NEAR(greedy[i].score, beam[i].score, 1e-4) << "sentence " << i;
    }
  }
}

TEST_F(ModelSearch, BatchedBeamEqualsOneSentenceAtATime) {
  auto o = options(4, 1.0);
  auto together = nmt::search::decode(*model_, src_, o);
  for (int64_t i = 0; i < src_.size(0); ++i) {
    auto row = src_.slice(0, i, i + 1);
    const int64_t len = row.ne(nmt::data::kPad).sum().item<int64_t>();
    auto alone = nmt::search::decode(*model_, row.slice(1, 0, len), o);
    EXPECT_EQ(alone[0].tokens, together[i].tokens) << "sentence " << i;
    EXPECT_NEAR(alone[0].score, together[i].score, 1e-4) << "sentence " << i;
  }
}

TEST_F(ModelSearch, HypothesesRespectMaxLengthAndReportTheirScore) {
  auto o = options(3, 0.0);
  o.max_len_a = 0.0;
  o.max_len_b = 4;
  auto hyps = nmt::search::decode(*model_, src_, o, /*keep_attention=*/true);
  for (const auto& h : hyps) {
    EXPECT_LE(h.tokens.size(), 4u);
    EXPECT_NEAR(h.score, h.log_prob, 1e-9);  // α = 0
    ASSERT_TRUE(h.attention.defined());
    EXPECT_EQ(h.attention.size(1), src_.size(1));
  }
}

TEST_F(ModelSearch, BeamScoreIsTheModelsLogProbability) {
  // Re-score each beam output with teacher forcing: the log-probs must agree.
  auto o = options(3, 0.0);
  auto hyps = nmt::search::decode(*model_, src_, o);
  torch::NoGradGuard g;
  model_->eval();
  for (int64_t i = 0; i < src_.size(0); ++i) {
    std::vector<int64_t> y = hyps[i].tokens;
    auto state = model_->start(src_.slice(0, i, i + 1));
    double lp = 0;
    int64_t prev = nmt::data::kBos;
    for (size_t t = 0; t <= y.size(); ++t) {
      auto out = model_->step(torch::tensor({prev}, torch::kLong), *state);
      const int64_t next = t < y.size() ? y[t] : kEos;
      lp += log_probs_of(out)[0][next].item<double>();
      prev = next;
    }
    if (y.size() < static_cast<size_t>(nmt::search::max_lengths(src_.slice(0, i, i + 1), o)[0])) {
      EXPECT_NEAR(lp, hyps[i].log_prob, 1e-3) << "sentence " << i;
    }
  }
}

}  // namespace

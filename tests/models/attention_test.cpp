// Local attention (Luong et al. 2015), coverage (Xu et al. 2015) and hard attention trained
// with REINFORCE (Xu et al. 2015): the properties each must have.
#include <gtest/gtest.h>

#include "support/model_util.h"
#include <torch/torch.h>

#include "nmt/data/batching.h"
#include "nmt/models/attention.h"
#include "nmt/models/coverage.h"
#include "nmt/models/hard_attention.h"
#include "nmt/models/local_attention.h"
#include "nmt/models/rnn.h"

namespace {

using namespace nmt::models;

/// Two rows of 9 source positions; the second has 4 real tokens and 5 padding positions.
torch::Tensor source_mask() {
  auto mask = torch::ones({2, 9}, torch::kBool);
  mask[1].slice(0, 4).fill_(false);
  return mask;
}

TEST(LocalAttention, PredictiveWeightsVanishOutsideTheWindowAndOnPadding) {
  torch::manual_seed(3);
  const int64_t D = 2;
  LocalAttention local(nmt::AttentionWindow::LocalP, D, 8);
  auto mask = source_mask();
  auto values = torch::randn({2, 9, 5});
  for (int trial = 0; trial < 20; ++trial) {
    auto query = torch::randn({2, 8}) * 3;  // spread p_t over the sentence
    auto out = local->forward(torch::randn({2, 9}), query, values, mask, 0);
    auto length = mask.sum(1).to(torch::kFloat);
    ASSERT_TRUE(out.position.ge(0).all().item<bool>());
    ASSERT_TRUE(out.position.le(length).all().item<bool>());
    auto s = torch::arange(9, torch::kFloat).unsqueeze(0);
    auto outside = (s - out.position.unsqueeze(1)).abs().gt(D).logical_or(mask.logical_not());
    EXPECT_EQ(out.weights.masked_select(outside).abs().max().item<float>(), 0.0f);
    EXPECT_TRUE(torch::allclose(out.weights.sum(1), torch::ones({2}), 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(out.context, torch::bmm(out.weights.unsqueeze(1), values).squeeze(1), 1e-5, 1e-6));
  }
}

TEST(LocalAttention, PredictiveWeightsAreGaussianWeightedScoresRenormalised) {
  torch::manual_seed(4);
  const int64_t D = 3;
  LocalAttention local(nmt::AttentionWindow::LocalP, D, 6);
  auto mask = torch::ones({1, 12}, torch::kBool);
  auto scores = torch::randn({1, 12});
  auto out = local->forward(scores, torch::randn({1, 6}), torch::randn({1, 12, 4}), mask, 0);
  const double p = out.position.item<double>(), sigma = D / 2.0;
  std::vector<double> expected(12, 0.0);
  double total = 0;
  for (int s = 0; s < 12; ++s) {
    if (std::abs(s - p) > D) continue;
    expected[s] = std::exp(scores[0][s].item<double>()) * std::exp(-(s - p) * (s - p) / (2 * sigma * sigma));
    total += expected[s];
  }
  for (int s = 0; s < 12; ++s) EXPECT_NEAR(out.weights[0][s].item<double>(), expected[s] / total, 1e-5) << s;
}

TEST(LocalAttention, PredictedPositionIsSourceLengthTimesSigmoid) {
  torch::manual_seed(5);
  LocalAttention local(nmt::AttentionWindow::LocalP, 2, 4);
  auto mask = source_mask();
  auto query = torch::randn({2, 4});
  auto p = local->position(query, mask, 0);
  auto params = local->named_parameters();
  auto expected = mask.sum(1).to(torch::kFloat) *
                  torch::sigmoid(torch::matmul(torch::tanh(torch::matmul(query, params["w_p.weight"].t())),
                                               params["v_p.weight"].t()).squeeze(1));
  EXPECT_TRUE(torch::allclose(p, expected, 1e-5, 1e-6));
  // Gradients reach the position predictor through the Gaussian.
  auto out = local->forward(torch::randn({2, 9}), query, torch::randn({2, 9, 3}), mask, 0);
  out.context.pow(2).sum().backward();
  for (auto& param : local->parameters()) {
    ASSERT_TRUE(param.grad().defined());
    EXPECT_GT(param.grad().abs().sum().item<float>(), 0.0f);
  }
}

TEST(LocalAttention, MonotonicWindowFollowsTheTargetStepAndStopsAtTheLastToken) {
  LocalAttention local(nmt::AttentionWindow::LocalM, 1, 4);
  auto mask = source_mask();
  for (int64_t t : {0, 2, 3, 7, 20}) {
    auto out = local->forward(torch::zeros({2, 9}), torch::zeros({2, 4}), torch::randn({2, 9, 3}), mask, t);
    EXPECT_EQ(out.position[0].item<float>(), std::min<int64_t>(t, 8));
    EXPECT_EQ(out.position[1].item<float>(), std::min<int64_t>(t, 3));
    // Equal scores: uniform over the real positions of [p−1, p+1].
    const int64_t p = std::min<int64_t>(t, 3);
    const int64_t n = std::min<int64_t>(p + 1, 3) - std::max<int64_t>(p - 1, 0) + 1;
    for (int64_t s = 0; s < 9; ++s)
      EXPECT_NEAR(out.weights[1][s].item<float>(), std::abs(s - p) <= 1 && s < 4 ? 1.0 / n : 0.0, 1e-6);
  }
  EXPECT_THROW(LocalAttention(nmt::AttentionWindow::Global, 1, 4), std::invalid_argument);
  EXPECT_THROW(LocalAttention(nmt::AttentionWindow::LocalM, 0, 4), std::invalid_argument);
}

TEST(Coverage, PenaltyCountsUncoveredRealSourcePositionsOnly) {
  // One sentence, 3 source positions (the last is padding), 3 target steps (the last is padding).
  auto att = torch::tensor({{{0.5f, 0.5f, 0.0f}, {0.5f, 0.5f, 0.0f}, {1.0f, 0.0f, 0.0f}}});
  auto src_mask = torch::tensor({{true, true, false}});
  auto tgt_mask = torch::tensor({{true, true, false}});
  EXPECT_NEAR(coverage_penalty(att, src_mask, tgt_mask).item<float>(), 0.0, 1e-7);
  auto skewed = torch::tensor({{{0.9f, 0.1f, 0.0f}, {0.9f, 0.1f, 0.0f}, {0.3f, 0.7f, 0.0f}}});
  // (1 − 1.8)² + (1 − 0.2)² = 1.28
  EXPECT_NEAR(coverage_penalty(skewed, src_mask, tgt_mask).item<float>(), 1.28, 1e-5);
}

/// The first two pairs of the shared model-test fixture.
nmt::data::Batch toy_batch() {
  auto ex = nmt::testing::examples();
  return nmt::testing::batch_of({ex[0], ex[1]});
}

nmt::ModelConfig tiny(nmt::AttentionMode mode) {
  nmt::ModelConfig c;
  c.embed_dim = 8;
  c.hidden_size = 12;
  c.encoder_layers = 1;
  c.dropout = 0.0;
  c.attention.mode = mode;
  return c;
}

TEST(Coverage, ModelAddsLambdaTimesPenaltyToTheLoss) {
  torch::manual_seed(6);
  auto config = tiny(nmt::AttentionMode::Soft);
  config.attention.coverage_penalty = 0.25;
  RnnSeq2SeqImpl model(config, 20, 20);
  auto batch = toy_batch();
  auto out = model.forward(batch);
  ASSERT_TRUE(out.aux_loss.defined());
  auto expected = 0.25 * coverage_penalty(out.attention, batch.src.ne(0), batch.tgt_in.ne(0));
  EXPECT_NEAR(out.aux_loss.item<float>(), expected.item<float>(), 1e-5);
  out.aux_loss.backward();  // the penalty trains the attention
  EXPECT_GT(model.named_parameters()["attention.v.weight"].grad().abs().sum().item<float>(), 0.0f);
}

TEST(HardAttention, SamplesFollowTheAlignmentAndNeverHitPadding) {
  torch::manual_seed(8);
  AttentionOutput att;
  att.log_weights = masked_log_softmax(torch::tensor({{0.0f, std::log(3.0f), 5.0f}}).expand({4000, 3}),
                                       torch::tensor({{true, true, false}}).expand({4000, 3}));
  att.weights = att.log_weights.exp();
  auto z = sample_alignment(att);
  EXPECT_EQ(z.index.eq(2).sum().item<int64_t>(), 0);
  EXPECT_NEAR(z.index.eq(1).to(torch::kFloat).mean().item<float>(), 0.75, 0.03);
  EXPECT_TRUE(torch::allclose(z.log_prob, att.log_weights.gather(1, z.index.unsqueeze(1)).squeeze(1)));
  auto values = torch::randn({4000, 3, 2});
  EXPECT_TRUE(torch::equal(gather_context(values, z.index)[7], values[7][z.index[7].item<int64_t>()]));
}

TEST(HardAttention, EntropyIsFiniteWithPadding) {
  auto scores = torch::zeros({1, 4}, torch::requires_grad());
  auto log_w = masked_log_softmax(scores, torch::tensor({{true, true, true, false}}));
  auto h = alignment_entropy(log_w.exp(), log_w);
  EXPECT_NEAR(h.item<float>(), std::log(3.0), 1e-6);
  h.sum().backward();
  EXPECT_TRUE(torch::isfinite(scores.grad()).all().item<bool>());
}

TEST(HardAttention, BaselineTracksTheReward) {
  ReinforceBaseline baseline(0.5);
  EXPECT_EQ(baseline->value(), 0.0);
  baseline->update(-4.0);
  EXPECT_EQ(baseline->value(), -4.0);  // the first reward initialises it
  for (int i = 0; i < 30; ++i) baseline->update(-1.0);
  EXPECT_NEAR(baseline->value(), -1.0, 1e-6);
  // It is a buffer: saved with the model.
  EXPECT_EQ(baseline->named_buffers().size(), 1u);
}

TEST(HardAttention, ReinforceGradientsAreFiniteAndBaselineFollowsTheModelReward) {
  torch::manual_seed(9);
  auto config = tiny(nmt::AttentionMode::Hard);
  config.attention.reinforce_entropy = 0.1;
  config.attention.reinforce_baseline_decay = 0.8;
  RnnSeq2SeqImpl model(config, 20, 20);
  model.train();
  auto batch = toy_batch();
  auto mask = batch.tgt_out.ne(0).to(torch::kFloat);
  auto mean_reward = [&](const nmt::models::ForwardOutput& out) {
    auto ll = out.log_probs.gather(2, batch.tgt_out.unsqueeze(2)).squeeze(2);
    return ((ll * mask).sum(1) / mask.sum(1)).mean().item<double>();
  };
  auto baseline = [&] {
    for (auto& b : model.named_buffers())
      if (b.key() == "reinforce_baseline.state") return b.value()[0].item<double>();
    ADD_FAILURE() << "no baseline buffer";
    return 0.0;
  };
  double expected = 0;
  for (int i = 0; i < 4; ++i) {
    model.zero_grad();
    auto out = model.forward(batch);
    const double r = mean_reward(out);
    expected = i == 0 ? r : 0.8 * expected + 0.2 * r;
    EXPECT_NEAR(baseline(), expected, 1e-6) << "update " << i;
    (-out.log_probs.gather(2, batch.tgt_out.unsqueeze(2)).sum() + out.aux_loss).backward();
    for (auto& p : model.named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
    }
  }
  // The alignment parameters get a gradient from the REINFORCE term and the entropy bonus.
  EXPECT_GT(model.named_parameters()["attention.v.weight"].grad().abs().sum().item<float>(), 0.0f);
  // In eval mode the expected context is used: no sampling, a deterministic output.
  model.eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model.forward(batch).log_probs, model.forward(batch).log_probs));
}

}  // namespace

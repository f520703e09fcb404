// The moving average of the weights (train/ema.h): its update rule, decay 0 = the raw weights,
// and that it follows the trained weights without being them.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/config.h"
#include "nmt/train/ema.h"
#include "support/model_util.h"

namespace {

nmt::models::Seq2Seq tiny_rnn(uint64_t seed) {
  torch::manual_seed(seed);
  return nmt::models::make_model(nmt::testing::tiny_model_config(), 20, 20);
}

/// Adds `delta` to every parameter, as an optimizer step would change them.
void step(nmt::models::Seq2SeqImpl& model, double delta) {
  torch::NoGradGuard no_grad;
  for (auto& p : model.parameters()) p.add_(delta);
}

TEST(Ema, DecayZeroIsTheRawWeights) {
  auto model = tiny_rnn(1), ema = tiny_rnn(2);
  step(*model, 0.25);
  nmt::train::update_ema(*ema, *model, 0.0, 100);
  auto a = ema->named_parameters(), b = model->named_parameters();
  for (auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
}

TEST(Ema, FollowsTheRuleWithTheWarmUpDecay) {
  EXPECT_DOUBLE_EQ(nmt::train::ema_decay_at(0.999, 1), 2.0 / 11.0);
  EXPECT_DOUBLE_EQ(nmt::train::ema_decay_at(0.999, 100000), 0.999);
  auto model = tiny_rnn(1), ema = tiny_rnn(1);
  const auto before = ema->named_parameters().front().value().clone();
  step(*model, 1.0);
  nmt::train::update_ema(*ema, *model, 0.999, 100000);
  const auto after = ema->named_parameters().front().value();
  const auto raw = model->named_parameters().front().value();
  // ema = d·ema + (1 − d)·θ with θ = ema + 1: moved by 1 − d towards the raw weights.
  EXPECT_TRUE(torch::allclose(after, before + 0.001, 1e-6, 1e-6));
  EXPECT_FALSE(torch::equal(after, raw));
}

TEST(Ema, CopyWeightsMakesThemEqualAndOtherArchitecturesAreRefused) {
  auto a = tiny_rnn(1), b = tiny_rnn(2);
  nmt::train::copy_weights(*a, *b);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  auto other = nmt::testing::tiny_model_config();
  other.hidden_size = 32;
  auto c = nmt::models::make_model(other, 20, 20);
  EXPECT_THROW(nmt::train::update_ema(*a, *c, 0.9, 1), std::invalid_argument);
}

}  // namespace

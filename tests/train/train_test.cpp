#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/data/vocab.h"
#include "nmt/train/loss.h"
#include "nmt/train/schedule.h"
#include "nmt/train/update.h"
#include "support/model_util.h"
#include "support/test_util.h"
#include "support/train_util.h"

namespace {

using nmt::data::kPad;
constexpr int P = static_cast<int>(kPad);  // as an int literal, for torch::tensor
using nmt::testing::TempDir;

TEST(Loss, WithoutSmoothingIsTheNegativeLogLikelihoodOverRealTokens) {
  auto log_probs = torch::log_softmax(torch::randn({2, 3, 7}), -1);
  auto targets = torch::tensor({{4, 5, 3}, {6, 3, P}}, torch::kLong);
  auto out = nmt::train::sequence_loss(log_probs, targets, 0.0);
  double expected = 0;
  for (int b = 0; b < 2; ++b)
    for (int t = 0; t < 3; ++t)
      if (targets[b][t].item<int64_t>() != kPad)
        expected -= log_probs[b][t][targets[b][t].item<int64_t>()].item<double>();
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-4);
  EXPECT_NEAR(out.nll.item<double>(), expected, 1e-4);
}

TEST(Loss, PaddingPositionsDoNotMatter) {
  auto a = torch::log_softmax(torch::randn({1, 3, 5}), -1);
  auto b = a.clone();
  b[0][2] = torch::log_softmax(torch::randn({5}), -1);  // change only the padded position
  auto targets = torch::tensor({{4, 3, P}}, torch::kLong);
  EXPECT_DOUBLE_EQ(nmt::train::sequence_loss(a, targets, 0.1).loss.item<double>(),
                   nmt::train::sequence_loss(b, targets, 0.1).loss.item<double>());
}

TEST(Loss, LabelSmoothingMixesInTheUniformDistribution) {
  auto log_probs = torch::log(torch::tensor({{{0.1, 0.2, 0.3, 0.4}}}));
  auto targets = torch::tensor({{3}}, torch::kLong);
  const double eps = 0.2;
  double uniform = 0;
  for (double p : {0.1, 0.2, 0.3, 0.4}) uniform -= std::log(p) / 4;
  const double expected = (1 - eps) * -std::log(0.4) + eps * uniform;
  auto out = nmt::train::sequence_loss(log_probs, targets, eps);
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-6);
  EXPECT_NEAR(out.nll.item<double>(), -std::log(0.4), 1e-6);
}

TEST(Schedule, NoamPeaksAtTheConfiguredRateAfterWarmup) {
  nmt::TrainConfig c;
  c.lr_schedule = nmt::LrSchedule::Noam;
  c.lr = 5e-4;
  c.warmup_steps = 100;
  nmt::train::LrSchedule s(c);
  EXPECT_NEAR(s.rate(50), 2.5e-4, 1e-12);
  EXPECT_NEAR(s.rate(100), 5e-4, 1e-12);
  EXPECT_NEAR(s.rate(400), 2.5e-4, 1e-12);
  EXPECT_LT(s.rate(10), s.rate(20));
}

TEST(Schedule, PlateauDecaysAfterPatienceAndStopsAtMinimum) {
  nmt::TrainConfig c;
  c.lr_schedule = nmt::LrSchedule::Plateau;
  c.lr = 1e-3;
  c.lr_decay = 0.5;
  c.lr_patience = 1;
  c.min_lr = 4e-4;
  nmt::train::LrSchedule s(c);
  EXPECT_FALSE(s.on_validation(false));  // first bad validation: within patience
  EXPECT_TRUE(s.on_validation(false));
  EXPECT_DOUBLE_EQ(s.rate(1), 5e-4);
  EXPECT_FALSE(s.on_validation(true));
  s.on_validation(false);
  EXPECT_TRUE(s.on_validation(false));
  EXPECT_DOUBLE_EQ(s.rate(1), 4e-4);  // floored at min_lr
  s.on_validation(false);
  EXPECT_FALSE(s.on_validation(false));
}

// Two copies of one batch average to that batch's own gradient, so an update that accumulates
// the batch twice must move the weights exactly as one update on it does.
TEST(Update, AccumulatingABatchTwiceEqualsOneUpdateOnIt) {
  nmt::Config config = nmt::default_config();
  config.model.embed_dim = 8;
  config.model.hidden_size = 12;
  config.model.dropout = 0.0;
  config.train.label_smoothing = 0.1;
  auto batch = nmt::testing::batch_of(nmt::testing::examples());
  auto make = [&] {
    torch::manual_seed(3);
    return nmt::models::make_model(config.model, 20, 20);
  };
  auto initial = make(), once = make(), twice = make();
  auto opt_once = nmt::train::make_optimizer(*once, config.train);
  auto opt_twice = nmt::train::make_optimizer(*twice, config.train);
  auto s1 = nmt::train::train_update(*once, *opt_once, {batch}, config.train, 1e-2);
  auto s2 = nmt::train::train_update(*twice, *opt_twice, {batch, batch}, config.train, 1e-2);
  EXPECT_EQ(s1.tgt_tokens, batch.num_tgt_tokens);
  EXPECT_EQ(s2.tgt_tokens, 2 * s1.tgt_tokens);
  EXPECT_NEAR(s2.nll, 2 * s1.nll, 1e-4);
  EXPECT_NEAR(s2.loss, 2 * s1.loss, 1e-4);

  auto start = initial->named_parameters(), a = once->named_parameters(), b = twice->named_parameters();
  bool moved = false;
  for (auto& p : a) {
    EXPECT_TRUE(torch::allclose(p.value(), b[p.key()], 1e-5, 1e-7)) << p.key();
    moved = moved || !torch::equal(p.value(), start[p.key()]);
  }
  EXPECT_TRUE(moved);
}

}  // namespace

// train::sequence_loss_from_logits (train/loss.h): the fused cross-entropy equals the unfused
// sequence_loss(log_softmax(logits)) in value and gradient, for every label smoothing, with
// padding, for chunk boundaries that do not divide the rows, and for bf16 logits; and the
// models give logits in training only when asked to.
#include "nmt/train/loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/config.h"
#include "nmt/data/batch.h"
#include "nmt/models/seq2seq.h"
#include "support/model_util.h"

namespace {

at::Tensor targets_with_padding(int64_t B, int64_t T, int64_t V) {
  auto targets = torch::randint(3, V, {B, T}, torch::kLong);
  targets.index_put_({0, torch::indexing::Slice(T - 2)}, nmt::data::kPad);  // a padded tail
  targets.index_put_({B - 1, 0}, nmt::data::kPad);
  return targets;
}

TEST(LossFromLogits, EqualsTheLossOfTheLogSoftmaxInValueAndGradient) {
  torch::manual_seed(1);
  // V = 8,000 gives chunks of 32 rows: 7·11 = 77 rows end in a partial chunk; V = 5 one chunk.
  for (int64_t V : {5, 8000}) {
    for (double eps : {0.0, 0.1, 0.3}) {
      const int64_t B = 7, T = 11;
      auto base = torch::randn({B, T, V}) * 3;
      auto targets = targets_with_padding(B, T, V);
      auto a = base.clone().requires_grad_(true);
      auto b = base.clone().requires_grad_(true);
      auto fused = nmt::train::sequence_loss_from_logits(a, targets, eps);
      auto naive = nmt::train::sequence_loss(torch::log_softmax(b, -1), targets, eps);
      EXPECT_NEAR(fused.loss.item<double>(), naive.loss.item<double>(), 1e-5 * std::abs(naive.loss.item<double>()))
          << "V " << V << " eps " << eps;
      EXPECT_NEAR(fused.nll.item<double>(), naive.nll.item<double>(), 1e-5 * std::abs(naive.nll.item<double>()));
      EXPECT_FALSE(fused.nll.requires_grad());
      (fused.loss * 0.7).backward();
      (naive.loss * 0.7).backward();
      // Against the unfused loss in fp64: the fused fp32 gradient is within 1e-5 of the largest
      // gradient element, and no further from it than the unfused fp32 gradient is, twice over.
      auto c = base.to(torch::kDouble).requires_grad_(true);
      (nmt::train::sequence_loss(torch::log_softmax(c, -1), targets, eps).loss * 0.7).backward();
      const double scale = c.grad().abs().max().item<double>();
      const double fused_error = (a.grad().to(torch::kDouble) - c.grad()).abs().max().item<double>();
      const double naive_error = (b.grad().to(torch::kDouble) - c.grad()).abs().max().item<double>();
      EXPECT_LE(fused_error, 1e-5 * scale) << "V " << V << " eps " << eps;
      EXPECT_LE(fused_error, 2 * naive_error + 1e-7 * scale) << "V " << V << " eps " << eps;
      // Padded positions get no gradient at all.
      EXPECT_EQ(a.grad()[0][T - 1].abs().max().item<float>(), 0.0f);
    }
  }
}

TEST(LossFromLogits, Bf16LogitsGiveTheLossOfTheirFp32ValuesAndABf16Gradient) {
  torch::manual_seed(2);
  const int64_t B = 3, T = 9, V = 300;
  auto logits = (torch::randn({B, T, V}) * 2).to(torch::kBFloat16).requires_grad_(true);
  auto targets = targets_with_padding(B, T, V);
  auto fused = nmt::train::sequence_loss_from_logits(logits, targets, 0.1);
  auto up = logits.detach().to(torch::kFloat).requires_grad_(true);
  auto naive = nmt::train::sequence_loss(torch::log_softmax(up, -1), targets, 0.1);
  EXPECT_EQ(fused.loss.scalar_type(), torch::kFloat);
  EXPECT_NEAR(fused.loss.item<double>(), naive.loss.item<double>(), 1e-5 * naive.loss.item<double>());
  fused.loss.backward();
  naive.loss.backward();
  ASSERT_EQ(logits.grad().scalar_type(), torch::kBFloat16);
  // The gradient is the fp32 one rounded to bf16 (8 bits of mantissa).
  EXPECT_TRUE(torch::allclose(logits.grad().to(torch::kFloat), up.grad(), 1e-2, 1e-4));
}

TEST(LossFromLogits, TheRowLoopsAgreeWithTheAtenChunksAndCheckTheTargets) {
  torch::manual_seed(3);
  const int64_t B = 4, T = 7, V = 1003;  // V not a multiple of the 16 lanes
  const auto base = torch::randn({B, T, V}, torch::kDouble) * 3;
  const auto targets = targets_with_padding(B, T, V);
  // fp32 CPU logits take the vectorised row loops, fp64 ones the chunked ATen expressions.
  auto x32 = base.to(torch::kFloat).requires_grad_(true);
  auto x64 = base.clone().requires_grad_(true);
  auto a = nmt::train::sequence_loss_from_logits(x32, targets, 0.1);
  auto b = nmt::train::sequence_loss_from_logits(x64, targets, 0.1);
  EXPECT_NEAR(a.loss.item<double>(), b.loss.item<double>(), 1e-5 * b.loss.item<double>());
  EXPECT_NEAR(a.nll.item<double>(), b.nll.item<double>(), 1e-5 * b.nll.item<double>());
  a.loss.backward();
  b.loss.backward();
  EXPECT_TRUE(torch::allclose(x32.grad().to(torch::kDouble), x64.grad(), 1e-5, 1e-7));
  auto bad = targets.clone();
  bad[1][2] = V;
  EXPECT_THROW(nmt::train::sequence_loss_from_logits(x32, bad, 0.1), c10::Error);
}

TEST(LossFromLogits, ModelsGiveLogitsInTrainingOnlyWhenAsked) {
  torch::manual_seed(3);
  for (auto type : {nmt::ModelType::Rnn, nmt::ModelType::Transformer, nmt::ModelType::ConvS2S}) {
    auto c = nmt::testing::tiny_model_config(type);
    c.activation_dropout = 0;
    auto model = nmt::models::make_model(c, 20, 20);
    auto batch = nmt::testing::batch_of(nmt::testing::examples());
    model->train();
    auto plain = model->forward(batch);
    ASSERT_TRUE(plain.log_probs.defined());
    EXPECT_FALSE(plain.logits.defined());
    model->set_logits_for_loss(true);
    auto fused = model->forward(batch);
    ASSERT_TRUE(fused.logits.defined()) << static_cast<int>(type);
    EXPECT_FALSE(fused.log_probs.defined());
    // Same weights, no dropout: the logits are those whose log-softmax the plain pass gave, and
    // the two losses agree.
    EXPECT_TRUE(torch::allclose(torch::log_softmax(fused.logits, -1), plain.log_probs, 1e-5, 1e-6));
    EXPECT_NEAR(nmt::train::token_loss(fused, batch.tgt_out, 0.1).loss.item<double>(),
                nmt::train::token_loss(plain, batch.tgt_out, 0.1).loss.item<double>(), 1e-4);
    {
      torch::NoGradGuard no_grad;  // nothing to back-propagate: log_probs as usual
      EXPECT_TRUE(model->forward(batch).log_probs.defined());
    }
    model->eval();
    EXPECT_TRUE(model->forward(batch).log_probs.defined());
  }
}

}  // namespace

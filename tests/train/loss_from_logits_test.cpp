// train::sequence_loss_from_logits (train/loss.h): the fused cross-entropy equals the unfused
// sequence_loss(log_softmax(logits)) in value and gradient, for every label smoothing, with
// padding, for chunk boundaries that do not divide the rows, and for bf16 logits; the loss of an
// output layer (train::sequence_loss_from_output_layer) equals that of its logits; and the
// models give their output layer in training only when asked to.
#include "nmt/train/loss.h"

#include <string>

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

TEST(LossFromOutputLayer, ModelsGiveTheirOutputLayerInTrainingOnlyWhenAsked) {
  torch::manual_seed(3);
  for (auto type : {nmt::ModelType::Rnn, nmt::ModelType::Transformer, nmt::ModelType::ConvS2S}) {
    for (bool tie : {true, false}) {
      auto c = nmt::testing::tiny_model_config(type);
      c.activation_dropout = 0;
      c.tie_embeddings = tie;
      auto model = nmt::models::make_model(c, 20, 20);
      auto batch = nmt::testing::batch_of(nmt::testing::examples());
      model->train();
      auto plain = model->forward(batch);
      ASSERT_TRUE(plain.log_probs.defined());
      EXPECT_FALSE(plain.output_layer.defined());
      model->set_output_layer_for_loss(true);
      auto fused = model->forward(batch);
      ASSERT_TRUE(fused.output_layer.defined()) << static_cast<int>(type) << " tie " << tie;
      EXPECT_FALSE(fused.log_probs.defined());
      // Same weights, no dropout: the layer's logits are those whose log-softmax the plain pass
      // gave, and the two losses agree.
      const auto& layer = fused.output_layer;
      auto logits = torch::linear(layer.hidden, layer.weight, layer.bias);
      EXPECT_TRUE(torch::allclose(torch::log_softmax(logits, -1), plain.log_probs, 1e-5, 1e-6));
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
}

/// Leaves for an output layer of E inputs and V outputs over [B, T] positions, of `type`.
struct Layer {
  at::Tensor hidden, weight, bias;
  Layer(int64_t B, int64_t T, int64_t E, int64_t V, bool with_bias, torch::Dtype type = torch::kFloat) {
    hidden = torch::randn({B, T, E}).to(type).requires_grad_(true);
    weight = (torch::randn({V, E}) / std::sqrt(static_cast<double>(E)) * 3).to(type).requires_grad_(true);
    if (with_bias) bias = torch::randn({V}).requires_grad_(true);
  }
  nmt::models::OutputLayerInput input() const { return {hidden, weight, bias}; }
  /// The same values as fp64 leaves, for the reference.
  Layer as_double() const {
    Layer d = *this;
    d.hidden = hidden.detach().to(torch::kDouble).requires_grad_(true);
    d.weight = weight.detach().to(torch::kDouble).requires_grad_(true);
    if (bias.defined()) d.bias = bias.detach().to(torch::kDouble).requires_grad_(true);
    return d;
  }
};

/// max |a − b| over the largest |b|.
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(torch::kDouble) - b).abs().max().item<double>() / b.abs().max().item<double>();
}

TEST(LossFromOutputLayer, EqualsTheLossOfTheLogSoftmaxOfItsLogitsInValueAndGradient) {
  torch::manual_seed(4);
  // V = 1,003 is not a multiple of the 16 lanes; the 16·11 = 176 positions less the padding
  // make blocks of 32 rows with a partial last one.
  for (int64_t V : {5, 1003, 8000}) {
    for (bool with_bias : {true, false}) {
      for (double eps : {0.0, 0.1}) {
        const int64_t B = 16, T = 11, E = 24;
        Layer layer(B, T, E, V, with_bias);
        const auto targets = targets_with_padding(B, T, V);
        auto fused = nmt::train::sequence_loss_from_output_layer(layer.input(), targets, eps);
        // The unfused loss in fp64 as the reference.
        Layer ref = layer.as_double();
        auto logits = torch::linear(ref.hidden, ref.weight, ref.bias);
        auto naive = nmt::train::sequence_loss(torch::log_softmax(logits, -1), targets, eps);
        const std::string where = "V " + std::to_string(V) + " bias " + std::to_string(with_bias) + " eps " + std::to_string(eps);
        EXPECT_NEAR(fused.loss.item<double>(), naive.loss.item<double>(), 1e-5 * naive.loss.item<double>()) << where;
        EXPECT_NEAR(fused.nll.item<double>(), naive.nll.item<double>(), 1e-5 * naive.nll.item<double>()) << where;
        EXPECT_FALSE(fused.nll.requires_grad());
        (fused.loss * 0.7).backward();
        (naive.loss * 0.7).backward();
        EXPECT_LE(relative_error(layer.hidden.grad(), ref.hidden.grad()), 1e-5) << where;
        EXPECT_LE(relative_error(layer.weight.grad(), ref.weight.grad()), 1e-5) << where;
        if (with_bias) {
          EXPECT_LE(relative_error(layer.bias.grad(), ref.bias.grad()), 1e-5) << where;
        }
        // Padded positions get no gradient at all; real ones do.
        EXPECT_EQ(layer.hidden.grad()[0][T - 1].abs().max().item<float>(), 0.0f) << where;
        EXPECT_GT(layer.hidden.grad()[0][0].abs().max().item<float>(), 0.0f) << where;
      }
    }
  }
}

TEST(LossFromOutputLayer, TheBiasGradientDoesNotDependOnTheThreads) {
  torch::manual_seed(5);
  const int64_t B = 13, T = 17, E = 16, V = 517;
  const auto targets = targets_with_padding(B, T, V);
  Layer layer(B, T, E, V, true);
  std::vector<at::Tensor> bias_grads;
  const int threads = at::get_num_threads();
  for (int n : {1, 2, 3}) {
    at::set_num_threads(n);
    layer.bias.mutable_grad() = at::Tensor();
    nmt::train::sequence_loss_from_output_layer(layer.input(), targets, 0.1).loss.backward();
    bias_grads.push_back(layer.bias.grad().clone());
  }
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(bias_grads[0], bias_grads[1]));
  EXPECT_TRUE(torch::equal(bias_grads[0], bias_grads[2]));
}

TEST(LossFromOutputLayer, Bf16ProductsGiveTheLossOfTheirRoundedOperandsAndBf16Gradients) {
  torch::manual_seed(6);
  const int64_t B = 5, T = 7, E = 32, V = 300;
  Layer layer(B, T, E, V, true, torch::kBFloat16);
  const auto targets = targets_with_padding(B, T, V);
  auto fused = nmt::train::sequence_loss_from_output_layer(layer.input(), targets, 0.1);
  Layer ref = layer.as_double();
  auto naive = nmt::train::sequence_loss(torch::log_softmax(torch::linear(ref.hidden, ref.weight, ref.bias), -1), targets, 0.1);
  EXPECT_EQ(fused.loss.scalar_type(), torch::kFloat);
  // The logits are rounded to bf16 (8 bits of mantissa) before the fp32 loss.
  EXPECT_NEAR(fused.loss.item<double>(), naive.loss.item<double>(), 1e-2 * naive.loss.item<double>());
  fused.loss.backward();
  naive.loss.backward();
  ASSERT_EQ(layer.hidden.grad().scalar_type(), torch::kBFloat16);
  ASSERT_EQ(layer.weight.grad().scalar_type(), torch::kBFloat16);
  ASSERT_EQ(layer.bias.grad().scalar_type(), torch::kFloat);
  EXPECT_LE(relative_error(layer.hidden.grad(), ref.hidden.grad()), 3e-2);
  EXPECT_LE(relative_error(layer.weight.grad(), ref.weight.grad()), 3e-2);
  EXPECT_LE(relative_error(layer.bias.grad(), ref.bias.grad()), 3e-2);
}

TEST(LossFromOutputLayer, OtherDtypesTakeTheLogitsOfEveryPositionAndTargetsAreChecked) {
  torch::manual_seed(7);
  const int64_t B = 4, T = 6, E = 8, V = 40;
  Layer layer(B, T, E, V, true);
  const auto targets = targets_with_padding(B, T, V);
  Layer wide = layer.as_double();  // fp64: not the fused path
  auto a = nmt::train::sequence_loss_from_output_layer(layer.input(), targets, 0.1);
  auto b = nmt::train::sequence_loss_from_output_layer(wide.input(), targets, 0.1);
  EXPECT_NEAR(a.loss.item<double>(), b.loss.item<double>(), 1e-5 * b.loss.item<double>());
  a.loss.backward();
  b.loss.backward();
  EXPECT_LE(relative_error(layer.weight.grad(), wide.weight.grad()), 1e-5);
  EXPECT_LE(relative_error(layer.bias.grad(), wide.bias.grad()), 1e-5);
  auto bad = targets.clone();
  bad[1][2] = V;
  EXPECT_THROW(nmt::train::sequence_loss_from_output_layer(layer.input(), bad, 0.1), c10::Error);
  try {
    nmt::train::sequence_loss_from_output_layer(layer.input(), bad, 0.1);
  } catch (const c10::Error& e) {  // the error names the function that was called
    EXPECT_NE(std::string(e.what()).find("sequence_loss_from_output_layer: a target id"), std::string::npos) << e.what();
  }
  nmt::models::OutputLayerInput mismatched{layer.hidden, layer.weight, torch::zeros({V + 1})};
  EXPECT_THROW(nmt::train::sequence_loss_from_output_layer(mismatched, targets, 0.1), c10::Error);
}

}  // namespace

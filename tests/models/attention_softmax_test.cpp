// attention_softmax against softmax(scale·scores + bias) in fp64, values and gradients.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "nmt/models/attention_softmax.h"

using nmt::models::attention_softmax;

namespace {

/// Checks value and gradient for scores of `dtype` against the fp64 expression.
void expect_matches_reference(const torch::Tensor& scores64, const torch::Tensor& bias, double scale,
                              torch::ScalarType dtype, double tol) {
  auto x = scores64.to(dtype).detach().requires_grad_(true);
  auto out = attention_softmax(x, scale, bias);
  EXPECT_EQ(out.scalar_type(), dtype);
  auto x64 = x.detach().to(torch::kDouble).requires_grad_(true);
  auto z = x64 * scale;
  auto expected = torch::softmax(bias.defined() ? z + bias.to(torch::kDouble) : z, -1);
  EXPECT_TRUE(torch::allclose(out.to(torch::kDouble), expected, tol, tol)) << (out.to(torch::kDouble) - expected).abs().max();
  const auto g = torch::randn(out.sizes(), torch::kDouble);
  out.backward(g.to(dtype));
  expected.backward(g.to(dtype).to(torch::kDouble));
  EXPECT_TRUE(torch::allclose(x.grad().to(torch::kDouble), x64.grad(), tol, tol))
      << (x.grad().to(torch::kDouble) - x64.grad()).abs().max();
}

}  // namespace

TEST(AttentionSoftmax, EqualsTheSoftmaxOfScaledScoresPlusBiasInValueAndGradient) {
  torch::manual_seed(5);
  for (int64_t S : {1, 5, 16, 23, 40}) {
    const auto scores = 3 * torch::randn({3, 2, 4, S}, torch::kDouble);
    // Padding bias [N, 1, 1, S]: the last key of sentence 1 masked (when there are two).
    auto padding = torch::zeros({3, 1, 1, S});
    if (S > 1) padding[1][0][0][S - 1] = -INFINITY;
    // Causal bias [Q, S]: query q sees keys up to S − Q + q.
    auto causal = torch::zeros({4, S}).masked_fill_(torch::ones({4, S}, torch::kBool).triu(S - 4 + 1), -INFINITY);
    for (const auto& bias : {torch::Tensor(), padding, S >= 4 ? causal : padding}) {
      expect_matches_reference(scores, bias, 0.125, torch::kFloat, 1e-5);
      expect_matches_reference(scores, bias, 0.125, torch::kBFloat16, 2e-2);
    }
  }
}

TEST(AttentionSoftmax, MaskedKeysGetZeroAndFullyMaskedRowsGiveZeros) {
  auto scores = torch::randn({1, 1, 2, 20});
  auto bias = torch::zeros({1, 1, 2, 20});
  bias.slice(3, 10).fill_(-INFINITY);
  bias[0][0][1].fill_(-INFINITY);
  const auto p = attention_softmax(scores, 1.0, bias);
  EXPECT_EQ(p[0][0][0].slice(0, 10).abs().max().item<float>(), 0.0f);
  EXPECT_NEAR(p[0][0][0].sum().item<float>(), 1.0, 1e-6);
  EXPECT_EQ(p[0][0][1].abs().max().item<float>(), 0.0f);
}

TEST(AttentionSoftmax, NonContiguousScoresOtherDtypesAndBadBiases) {
  torch::manual_seed(6);
  const auto base = torch::randn({2, 3, 7, 9});
  const auto strided = base.transpose(2, 3);  // [2, 3, 9, 7], not contiguous
  EXPECT_TRUE(torch::allclose(attention_softmax(strided, 0.5, {}), torch::softmax(strided * 0.5, -1), 1e-6, 1e-6));
  const auto d = torch::randn({2, 5}, torch::kDouble);  // the ATen expression
  EXPECT_TRUE(torch::allclose(attention_softmax(d, 2.0, {}), torch::softmax(d * 2.0, -1)));
  EXPECT_THROW(attention_softmax(base, 1.0, torch::zeros({4, 9})), c10::Error);
  EXPECT_THROW(attention_softmax(base, 1.0, torch::zeros({9}).requires_grad_(true)), c10::Error);
}

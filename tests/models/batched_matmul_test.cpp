// models::batched_matmul (models/batched_matmul.h): equal to at::matmul, in value and gradient,
// on the views attention multiplies (heads split off a projection, transposed keys, size-1
// rows, expanded batches), and at::matmul itself where its BLAS path does not apply.
#include "nmt/models/batched_matmul.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/precision.h"

namespace {

using nmt::models::batched_matmul;

void expect_equal_to_matmul(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  const auto expected = at::matmul(a, b);
  const auto got = batched_matmul(a, b);
  ASSERT_EQ(got.sizes(), expected.sizes()) << what;
  EXPECT_EQ(got.scalar_type(), expected.scalar_type()) << what;
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-5)) << what << ": max difference "
                                                          << (got - expected).abs().max().item<double>();
}

TEST(BatchedMatmul, EqualsMatmulOnTheViewsAttentionMultiplies) {
  torch::manual_seed(11);
  const int64_t B = 3, H = 4, T = 5, S = 7, dk = 8, d = H * dk;
  // Heads split off a fused q/k/v projection: [B, L, 3·d] → [3, B, H, L, d_k] views (row stride 3·d).
  auto split = [&](const at::Tensor& x, int64_t n) {
    return x.view({B, x.size(1), n, H, dk}).permute({2, 0, 3, 1, 4}).unbind(0);
  };
  const auto qkv = split(torch::randn({B, T, 3 * d}), 3);
  const auto kv = split(torch::randn({B, S, 2 * d}), 2);
  expect_equal_to_matmul(qkv[0], qkv[1].transpose(-2, -1), "self-attention scores");
  expect_equal_to_matmul(qkv[0], kv[0].transpose(-2, -1), "cross-attention scores");
  const auto probs = torch::softmax(torch::randn({B, H, T, S}), -1);
  expect_equal_to_matmul(probs, kv[1], "context");
  expect_equal_to_matmul(probs.transpose(-2, -1), qkv[2], "a transposed left operand");
  // The RNN attention's matrix-vector products: [B, 1, S]·[B, S, H] and [B, S, H]·[B, H, 1].
  const auto keys = torch::randn({B, S, d});
  expect_equal_to_matmul(torch::softmax(torch::randn({B, S}), -1).unsqueeze(1), keys, "one query row");
  expect_equal_to_matmul(keys, torch::randn({B, d}).unsqueeze(2), "one key column");
  // A batch dimension of stride 0 (one memory for all beams), a narrowed view, a 3-D batch.
  expect_equal_to_matmul(torch::randn({1, T, dk}).expand({4, T, dk}), torch::randn({4, dk, S}), "expanded batch");
  expect_equal_to_matmul(torch::randn({B, T, 2 * dk}).narrow(2, 3, dk), torch::randn({B, dk, S}), "narrowed");
  // Neither the rows nor the columns contiguous: copied first.
  expect_equal_to_matmul(torch::randn({B, 2 * T, 2 * dk}).slice(1, 0, 2 * T, 2).slice(2, 0, 2 * dk, 2),
                         torch::randn({B, dk, S}), "strided both ways");
  // Large products (BLAS's own threads) and a 1×1 case.
  expect_equal_to_matmul(torch::randn({2, 96, 80}), torch::randn({2, 80, 72}), "large");
  expect_equal_to_matmul(torch::randn({6, 1, 1}), torch::randn({6, 1, 1}), "1×1");
}

TEST(BatchedMatmul, GradientsEqualMatmulsGradients) {
  torch::manual_seed(12);
  auto x = torch::randn({2, 6, 3 * 16}).requires_grad_(true);
  auto m = torch::randn({2, 4, 2 * 16}).requires_grad_(true);
  auto grads = [&](bool ours) {
    x.mutable_grad() = at::Tensor();
    m.mutable_grad() = at::Tensor();
    const auto q = x.view({2, 6, 3, 2, 8}).permute({2, 0, 3, 1, 4}).unbind(0)[0];  // [2, 2, 6, 8]
    const auto kv = m.view({2, 4, 2, 2, 8}).permute({2, 0, 3, 1, 4}).unbind(0);    // [2, 2, 4, 8]
    auto mul = [&](const at::Tensor& a, const at::Tensor& b) { return ours ? batched_matmul(a, b) : at::matmul(a, b); };
    auto scores = mul(q, kv[0].transpose(-2, -1)).mul_(0.3);  // in place on the output, as attention does
    auto context = mul(torch::softmax(scores, -1), kv[1]);
    (context * torch::arange(context.numel()).view(context.sizes()).sin()).sum().backward();
    return std::make_pair(x.grad().clone(), m.grad().clone());
  };
  const auto [xe, me] = grads(false);
  const auto [xg, mg] = grads(true);
  EXPECT_TRUE(torch::allclose(xg, xe, 1e-5, 1e-6)) << (xg - xe).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(mg, me, 1e-5, 1e-6)) << (mg - me).abs().max().item<double>();
  // Only one operand needing a gradient.
  auto w = torch::randn({3, 4, 5}).requires_grad_(true);
  const auto fixed = torch::randn({3, 5, 2});
  batched_matmul(w, fixed).sum().backward();
  EXPECT_TRUE(torch::allclose(w.grad(), fixed.sum(-1).unsqueeze(1).expand({3, 4, 5}), 1e-5, 1e-6));
}

TEST(BatchedMatmul, IsMatmulWhereItsBlasPathDoesNotApply) {
  torch::manual_seed(13);
  // Other dtypes, a broadcast batch dimension, empty operands, 2-D operands.
  expect_equal_to_matmul(torch::randn({2, 3, 4}, torch::kDouble), torch::randn({2, 4, 5}, torch::kDouble), "fp64");
  expect_equal_to_matmul(torch::randn({2, 3, 4}).to(torch::kBFloat16), torch::randn({2, 4, 5}).to(torch::kBFloat16),
                         "bf16");
  expect_equal_to_matmul(torch::randn({2, 3, 4}), torch::randn({1, 4, 5}), "broadcast");
  expect_equal_to_matmul(torch::randn({2, 0, 4}), torch::randn({2, 4, 5}), "empty rows");
  expect_equal_to_matmul(torch::randn({2, 3, 0}), torch::randn({2, 0, 5}), "empty inner dimension");
  expect_equal_to_matmul(torch::randn({3, 4}), torch::randn({4, 5}), "2-D");
  // Under bf16 autocast the product is autocast's: bf16, as at::matmul gives there.
  {
    nmt::AutocastGuard guard(nmt::Precision::kBf16, torch::kCPU);
    expect_equal_to_matmul(torch::randn({2, 3, 4}), torch::randn({2, 4, 5}), "autocast");
    EXPECT_EQ(batched_matmul(torch::randn({2, 3, 4}), torch::randn({2, 4, 5})).scalar_type(), torch::kBFloat16);
  }
  // Shapes that do not multiply are at::matmul's error.
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 4}), torch::randn({2, 5, 6})), c10::Error);
}

}  // namespace

// models::split_heads (models/attention_heads.h): the heads of a fused projection as views, as
// copies, and as copies with the projection's bias added, against the permuted view of
// (x + bias); the backward pass against autograd through those ATen operations.
#include "nmt/models/attention_heads.h"

#include <algorithm>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace {

using nmt::models::split_heads;

/// The reference: x + bias (fp32 sum, rounded to x's dtype) as n heads [B, H, L, d_k].
std::vector<at::Tensor> reference(const at::Tensor& x, int64_t n, int64_t heads, const at::Tensor& bias) {
  const int64_t B = x.size(0), L = x.size(1), dk = x.size(2) / (n * heads);
  auto y = bias.defined() ? (x.to(torch::kFloat) + bias).to(x.scalar_type()) : x;
  return y.reshape({B, L, n, heads, dk}).permute({2, 0, 3, 1, 4}).unbind(0);
}

/// A loss that weighs every element of the heads differently (heads[skip] left out).
at::Tensor weighted_sum(const std::vector<at::Tensor>& heads, const std::vector<at::Tensor>& weights, size_t skip) {
  auto total = torch::zeros({}, torch::kFloat);
  for (size_t i = 0; i < heads.size(); ++i)
    if (i != skip) total = total + (heads[i].to(torch::kFloat) * weights[i]).sum();
  return total;
}

TEST(SplitHeads, ViewsCopiesAndBiasedCopiesHoldTheHeadsOfEachProjection) {
  torch::manual_seed(1);
  // d_k = 20: 16-lane and 8-lane chunks both end inside a head.
  const int64_t B = 3, L = 5, n = 3, H = 2, dk = 20;
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    auto x = torch::randn({B, L, n * H * dk}).to(dtype);
    auto bias = torch::randn({n * H * dk});
    const auto plain = reference(x, n, H, at::Tensor());
    const auto biased = reference(x, n, H, bias);
    const auto views = split_heads(x, n, H, false);
    const auto copies = split_heads(x, n, H, true);
    const auto with_bias = split_heads(x, n, H, false, bias);  // copies: `copy` is ignored with a bias
    ASSERT_EQ(with_bias.size(), static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(views[i].sizes(), (at::IntArrayRef{B, H, L, dk}));
      EXPECT_TRUE(torch::equal(views[i], plain[i])) << i;
      EXPECT_TRUE(copies[i].is_contiguous() && torch::equal(copies[i], plain[i])) << i;
      EXPECT_TRUE(with_bias[i].is_contiguous()) << i;
      EXPECT_EQ(with_bias[i].scalar_type(), dtype);
      EXPECT_TRUE(torch::equal(with_bias[i], biased[i])) << "dtype " << dtype << ", head tensor " << i;
    }
    // The views share x's storage; the copies do not.
    EXPECT_EQ(views[0].storage().data(), x.storage().data());
    EXPECT_NE(copies[0].storage().data(), x.storage().data());
  }
}

TEST(SplitHeads, BackwardWritesTheProjectionsGradientAndSumsTheBiasGradient) {
  torch::manual_seed(2);
  const int64_t B = 4, L = 7, H = 2, dk = 24;
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (int64_t n : {1, 2, 3}) {
      for (size_t skip : {size_t{99}, size_t{0}}) {  // every head used; the first left out (undefined gradient)
        if (skip == 0 && n == 1) continue;
        auto x0 = torch::randn({B, L, n * H * dk}).to(dtype);
        auto b0 = torch::randn({n * H * dk});
        std::vector<at::Tensor> weights;
        for (int64_t i = 0; i < n; ++i) weights.push_back(torch::randn({B, H, L, dk}));
        auto x = x0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
        weighted_sum(split_heads(x, n, H, true, b), weights, skip).backward();
        auto rx = x0.clone().requires_grad_(true), rb = b0.clone().requires_grad_(true);
        weighted_sum(reference(rx, n, H, rb), weights, skip).backward();
        ASSERT_TRUE(x.grad().defined() && b.grad().defined());
        EXPECT_EQ(x.grad().scalar_type(), dtype);
        // x's gradient is the heads' gradients rearranged (in x's dtype): exactly ATen's.
        EXPECT_TRUE(torch::equal(x.grad(), rx.grad())) << "dtype " << dtype << ", n " << n << ", skip " << skip;
        // The bias gradient: the same sums in another order.
        EXPECT_TRUE(torch::allclose(b.grad(), rb.grad(), 1e-5, 1e-5)) << "dtype " << dtype << ", n " << n;
        if (skip == 0) EXPECT_EQ(b.grad().narrow(0, 0, H * dk).abs().max().item<float>(), 0.0f);
      }
    }
  }
}

TEST(SplitHeads, TheBiasGradientIsTheSameForAnyThreadCount) {
  torch::manual_seed(3);
  const int64_t B = 9, L = 31, n = 3, H = 4, dk = 16;  // 279 rows: blocks of 32 split over threads
  auto x0 = torch::randn({B, L, n * H * dk}).to(torch::kBFloat16);
  auto b0 = torch::randn({n * H * dk});
  std::vector<at::Tensor> weights;
  for (int64_t i = 0; i < n; ++i) weights.push_back(torch::randn({B, H, L, dk}));
  auto bias_gradient = [&](int threads) {
    at::set_num_threads(threads);
    auto b = b0.clone().requires_grad_(true);
    weighted_sum(split_heads(x0.clone().requires_grad_(true), n, H, true, b), weights, 99).backward();
    return b.grad();
  };
  const int threads = at::get_num_threads();
  const auto one = bias_gradient(1);
  const auto several = bias_gradient(std::max(2, threads));
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, several));
}

TEST(SplitHeads, ANonContiguousProjectionGivesTheSameHeads) {
  // A projection that is not contiguous takes the separate ATen operations: same values, same
  // gradients.
  torch::manual_seed(4);
  const int64_t B = 2, L = 6, n = 2, H = 2, dk = 8;
  auto x = torch::randn({B, L, n * H * dk});
  auto bias = torch::randn({n * H * dk});
  auto strided = torch::randn({B, L, 2 * n * H * dk}).narrow(2, 0, n * H * dk);  // rows with gaps
  strided.copy_(x);
  ASSERT_FALSE(strided.is_contiguous());
  const auto a = split_heads(x, n, H, true, bias);
  const auto b = split_heads(strided, n, H, true, bias);
  for (int64_t i = 0; i < n; ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

TEST(SplitHeads, ShapesThatDoNotSplitAreClearErrors) {
  auto x = torch::randn({2, 3, 24});
  EXPECT_THROW(split_heads(x, 3, 3, true), c10::Error);                     // 24 is not 3·3·d_k
  EXPECT_THROW(split_heads(x, 3, 2, true, torch::randn({23})), c10::Error);  // bias not [24]
  EXPECT_THROW(split_heads(torch::randn({6, 24}), 3, 2, true), c10::Error);  // not [B, L, F]
}

}  // namespace

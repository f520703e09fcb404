// The layer norm that writes the dtype of the product it feeds (nmt/models/layer_norm.h),
// against ATen's layer_norm in fp32: forward, backward, bf16 output, thread counts, and where the
// Transformer takes it.
#include "nmt/models/layer_norm.h"

#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "nmt/precision.h"

namespace {

using nmt::models::layer_norm_cast;

struct Inputs {
  at::Tensor x, weight, bias;
};

/// x [7, 13, D] (91 rows: not a multiple of the 32-row blocks) with an offset and scale per row.
Inputs inputs(int64_t D) {
  torch::manual_seed(5);
  auto x = torch::randn({7, 13, D}) * (torch::rand({7, 13, 1}) * 3 + 0.1) + torch::randn({7, 13, 1}) * 4;
  return {x.requires_grad_(), (torch::rand({D}) + 0.5).requires_grad_(), torch::randn({D}).requires_grad_()};
}

Inputs clone(const Inputs& in) {
  return {in.x.detach().clone().requires_grad_(), in.weight.detach().clone().requires_grad_(),
          in.bias.detach().clone().requires_grad_()};
}

TEST(LayerNormCast, Fp32EqualsATensLayerNormForwardAndBackward) {
  for (int64_t D : {256, 40, 7}) {  // whole vectors, a partial last vector, less than one vector
    auto a = inputs(D);
    auto b = clone(a);
    auto y = layer_norm_cast(a.x, a.weight, a.bias, 1e-5, torch::kFloat);
    auto ref = at::layer_norm(b.x, {D}, b.weight, b.bias, 1e-5);
    ASSERT_EQ(y.scalar_type(), torch::kFloat);
    ASSERT_EQ(y.sizes(), a.x.sizes());
    EXPECT_TRUE(torch::allclose(y, ref, 1e-5, 1e-5)) << D << ": " << (y - ref).abs().max().item<double>();
    auto g = torch::randn(y.sizes());
    y.backward(g);
    ref.backward(g);
    EXPECT_TRUE(torch::allclose(a.x.grad(), b.x.grad(), 1e-4, 1e-5)) << D << ": " << (a.x.grad() - b.x.grad()).abs().max().item<double>();
    EXPECT_TRUE(torch::allclose(a.weight.grad(), b.weight.grad(), 1e-4, 1e-4)) << D;
    EXPECT_TRUE(torch::allclose(a.bias.grad(), b.bias.grad(), 1e-4, 1e-4)) << D;
  }
}

TEST(LayerNormCast, Bf16OutputIsTheFp32ResultRoundedAndItsGradientIsReadInPlace) {
  const int64_t D = 256;
  auto a = inputs(D);
  auto b = clone(a);
  auto y = layer_norm_cast(a.x, a.weight, a.bias, 1e-5, torch::kBFloat16);
  ASSERT_EQ(y.scalar_type(), torch::kBFloat16);
  auto ref = at::layer_norm(b.x, {D}, b.weight, b.bias, 1e-5);
  // Rounded once: within half a bf16 step (2^-9 relative) of the fp32 result, up to the fp32
  // result's own rounding differences.
  EXPECT_TRUE(torch::allclose(y.to(torch::kFloat), ref, 1.0 / 256, 1e-5));
  // Mostly the very bf16 value of ATen's result: they differ only where the two fp32 results
  // straddle a rounding boundary.
  EXPECT_LT(y.ne(ref.to(torch::kBFloat16)).sum().item<int64_t>(), y.numel() / 100);
  // A bf16 gradient: the same gradients as ATen's for the same values in fp32.
  auto g = torch::randn(y.sizes()).to(torch::kBFloat16);
  y.backward(g);
  ref.backward(g.to(torch::kFloat));
  EXPECT_EQ(a.x.grad().scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(a.x.grad(), b.x.grad(), 1e-4, 1e-5)) << (a.x.grad() - b.x.grad()).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(a.weight.grad(), b.weight.grad(), 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(a.bias.grad(), b.bias.grad(), 1e-4, 1e-4));
}

TEST(LayerNormCast, TheResultAndGradientsDoNotDependOnTheNumberOfThreads) {
  const int threads = at::get_num_threads();
  const int64_t D = 256;
  std::vector<at::Tensor> results;
  for (int t : {1, 2}) {
    at::set_num_threads(t);
    auto a = inputs(D);
    auto x = torch::cat({a.x.detach(), a.x.detach()}, 0).requires_grad_();  // more rows: several tasks
    auto y = layer_norm_cast(x, a.weight, a.bias, 1e-5, torch::kBFloat16);
    y.backward(torch::ones_like(y));
    results.insert(results.end(), {y, x.grad(), a.weight.grad(), a.bias.grad()});
  }
  at::set_num_threads(threads);
  for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(torch::equal(results[i], results[4 + i])) << i;
}

TEST(LayerNormCast, RejectsWhatItDoesNotCompute) {
  auto a = inputs(8);
  EXPECT_THROW(layer_norm_cast(a.x.to(torch::kDouble), a.weight, a.bias, 1e-5, torch::kFloat), c10::Error);
  EXPECT_THROW(layer_norm_cast(a.x, a.weight.narrow(0, 0, 4), a.bias, 1e-5, torch::kFloat), c10::Error);
  EXPECT_THROW(layer_norm_cast(a.x, a.weight, a.bias, 1e-5, torch::kHalf), c10::Error);
}

TEST(LayerNormCastResidual, GivesTheNormAndXAndAddsTheResidualsGradientAsAutogradWould) {
  // x feeds the norm and a residual sum: the fused backward pass gives x the gradient that
  // autograd gives the two separate uses (the same fp32 sum of the same two gradients), also when
  // only one of the two outputs is used.
  const int64_t D = 40;
  for (auto dtype : {torch::kBFloat16, torch::kFloat}) {
    for (int uses : {3, 1, 2}) {  // bit 1: the norm's output used, bit 2: the residual's
      auto a = inputs(D);
      auto b = clone(a);
      auto [y, skip] = nmt::models::layer_norm_cast_residual(a.x, a.weight, a.bias, 1e-5, dtype);
      auto ref = layer_norm_cast(b.x, b.weight, b.bias, 1e-5, dtype);
      EXPECT_TRUE(torch::equal(y, ref));
      EXPECT_TRUE(torch::equal(skip, a.x));
      EXPECT_EQ(skip.data_ptr(), a.x.data_ptr());  // an alias, not a copy
      auto gy = torch::randn(y.sizes()).to(dtype), gs = torch::randn(skip.sizes());
      auto loss = torch::zeros({});
      auto ref_loss = torch::zeros({});
      if (uses & 1) {
        loss = loss + (y.to(torch::kFloat) * gy.to(torch::kFloat)).sum();
        ref_loss = ref_loss + (ref.to(torch::kFloat) * gy.to(torch::kFloat)).sum();
      }
      if (uses & 2) {
        loss = loss + (skip * gs).sum();
        ref_loss = ref_loss + (b.x * gs).sum();
      }
      loss.backward();
      ref_loss.backward();
      EXPECT_TRUE(torch::equal(a.x.grad(), b.x.grad())) << "uses " << uses << ", dtype " << dtype;
      if (uses & 1) {
        EXPECT_TRUE(torch::equal(a.weight.grad(), b.weight.grad())) << uses;
        EXPECT_TRUE(torch::equal(a.bias.grad(), b.bias.grad())) << uses;
      }
    }
  }
}

TEST(LayerNormForProduct, Bf16UnderAutocastOnlyAndTheModulesResultOtherwise) {
  torch::nn::LayerNorm norm(torch::nn::LayerNormOptions({16}));
  auto x = torch::randn({3, 5, 16});
  EXPECT_TRUE(torch::equal(nmt::models::layer_norm_for_product(norm, x), norm(x)));  // no autocast
  {
    nmt::AutocastGuard autocast(nmt::Precision::kBf16, torch::kCPU);
    auto y = nmt::models::layer_norm_for_product(norm, x);
    EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::allclose(y.to(torch::kFloat), norm(x).to(torch::kFloat), 1.0 / 128, 1e-5));
    // A norm without weight and bias is the module's (autocast keeps layer_norm in fp32).
    torch::nn::LayerNorm plain(torch::nn::LayerNormOptions({16}).elementwise_affine(false));
    EXPECT_EQ(nmt::models::layer_norm_for_product(plain, x).scalar_type(), torch::kFloat);
  }
}

}  // namespace

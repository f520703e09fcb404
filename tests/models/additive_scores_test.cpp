// Additive (Bahdanau) attention scores in one pass (nmt/models/attention.h: additive_scores)
// against ATen: values, gradients of keys, query and v, bf16 inputs, masked positions, and
// thread counts. (simd::tanh under it: tests/simd_test.cpp.)
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "nmt/models/attention.h"

namespace {

using nmt::models::additive_scores;

struct Inputs {
  torch::Tensor keys, query, v;
};

/// keys [3, 7, A], query [3, A], v [1, A] (A = 40: two whole vectors of 16 and a partial one).
Inputs inputs(int64_t A = 40) {
  torch::manual_seed(8);
  return {(torch::randn({3, 7, A}) * 1.5).requires_grad_(), torch::randn({3, A}).requires_grad_(),
          (torch::randn({1, A}) * 0.3).requires_grad_()};
}

Inputs clone(const Inputs& in, torch::Dtype dtype = torch::kFloat) {
  return {in.keys.detach().to(dtype).requires_grad_(), in.query.detach().to(dtype).requires_grad_(),
          in.v.detach().clone().requires_grad_()};
}

/// ATen's composite in fp32: vᵀ tanh(k + q).
torch::Tensor reference(const Inputs& in) {
  return torch::matmul(torch::tanh(in.keys.to(torch::kFloat) + in.query.to(torch::kFloat).unsqueeze(1)), in.v.t())
      .squeeze(-1);
}

TEST(AdditiveScores, EqualATensTanhAndProductWithGradients) {
  for (int64_t A : {40, 16, 5}) {
    auto a = inputs(A);
    auto b = clone(a);
    auto e = additive_scores(a.keys, a.query, a.v);
    auto ref = reference(b);
    ASSERT_EQ(e.sizes(), ref.sizes());
    EXPECT_TRUE(torch::allclose(e, ref, 1e-5, 1e-5)) << (e - ref).abs().max();
    // Gradients through a masked log-softmax, as the attention uses them: zero on masked positions.
    auto mask = torch::ones({3, 7}, torch::kBool);
    mask[1].slice(0, 3).fill_(false);
    auto w = torch::randn({3, 7});
    auto loss = [&](const torch::Tensor& scores) {
      return (torch::log_softmax(scores.masked_fill(mask.logical_not(), -INFINITY), 1).masked_fill(mask.logical_not(), 0) * w).sum();
    };
    loss(e).backward();
    loss(ref).backward();
    EXPECT_TRUE(torch::allclose(a.keys.grad(), b.keys.grad(), 1e-5, 1e-6)) << (a.keys.grad() - b.keys.grad()).abs().max();
    EXPECT_TRUE(torch::allclose(a.query.grad(), b.query.grad(), 1e-5, 1e-6)) << (a.query.grad() - b.query.grad()).abs().max();
    EXPECT_TRUE(torch::allclose(a.v.grad(), b.v.grad(), 1e-5, 1e-6)) << (a.v.grad() - b.v.grad()).abs().max();
    EXPECT_EQ(a.keys.grad()[1].slice(0, 3).abs().max().item<float>(), 0.0f);  // masked keys get no gradient
  }
}

TEST(AdditiveScores, Bf16KeysAndQueryAreComputedInFp32) {
  auto a = clone(inputs(), torch::kBFloat16);
  auto b = clone(inputs(), torch::kBFloat16);
  auto e = additive_scores(a.keys, a.query, a.v);
  auto ref = reference(b);  // the same bf16 values, in fp32
  EXPECT_EQ(e.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(e, ref, 1e-5, 1e-5)) << (e - ref).abs().max();
  auto w = torch::randn(e.sizes());
  (e * w).sum().backward();
  (ref * w).sum().backward();
  EXPECT_EQ(a.keys.grad().scalar_type(), torch::kBFloat16);
  EXPECT_EQ(a.query.grad().scalar_type(), torch::kBFloat16);
  // The keys' gradient is rounded once to bf16 (8 bits of mantissa).
  EXPECT_TRUE(torch::allclose(a.keys.grad().to(torch::kFloat), b.keys.grad().to(torch::kFloat), 1e-2, 1e-4));
  EXPECT_TRUE(torch::allclose(a.v.grad(), b.v.grad(), 1e-4, 1e-5)) << (a.v.grad() - b.v.grad()).abs().max();
}

TEST(AdditiveScores, GradientsDoNotDependOnTheThreadCount) {
  const int threads = at::get_num_threads();
  std::vector<torch::Tensor> dv, dk;
  for (int n : {1, 2, 3}) {
    at::set_num_threads(n);
    auto a = inputs(300);  // a task per sentence: 7·300 keys each
    additive_scores(a.keys, a.query, a.v).sum().backward();
    dv.push_back(a.v.grad());
    dk.push_back(a.keys.grad());
  }
  at::set_num_threads(threads);
  for (size_t i = 1; i < dv.size(); ++i) {
    EXPECT_TRUE(torch::equal(dv[0], dv[i]));
    EXPECT_TRUE(torch::equal(dk[0], dk[i]));
  }
}

TEST(AdditiveScores, ShapesThatDoNotFitAreAnError) {
  auto a = inputs();
  EXPECT_THROW(additive_scores(a.keys, a.query.narrow(1, 0, 20), a.v), c10::Error);
  EXPECT_THROW(additive_scores(a.keys[0], a.query, a.v), c10::Error);
}

}  // namespace

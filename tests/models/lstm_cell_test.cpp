// The LSTM cell's element-wise part in one pass (nmt/models/lstm_cell.h) against LibTorch's
// LSTMCell arithmetic: values and gradients, fp32 and bf16 gates, fp32 and bf16 states, and a
// state whose gradient is not needed. (simd::sigmoid under it: tests/simd_test.cpp.)
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include <torch/torch.h>

#include "nmt/models/lstm_cell.h"

namespace {

using nmt::models::lstm_cell_pointwise;

/// LibTorch 1.13's LSTMCell after its gate products.
std::pair<torch::Tensor, torch::Tensor> reference(const torch::Tensor& gates, const torch::Tensor& c) {
  auto chunked = gates.chunk(4, 1);
  auto c_new = chunked[1].sigmoid() * c + chunked[0].sigmoid() * chunked[2].tanh();
  return {chunked[3].sigmoid() * c_new.tanh(), c_new};
}

struct Inputs {
  torch::Tensor gates, c;
};

/// gates [5, 4·H] spread over the sigmoid's and tanh's curved range, c [5, H].
Inputs inputs(int64_t H, torch::Dtype gates_type = torch::kFloat, torch::Dtype c_type = torch::kFloat) {
  torch::manual_seed(4);
  return {(torch::randn({5, 4 * H}) * 2).to(gates_type).requires_grad_(), torch::randn({5, H}).to(c_type).requires_grad_()};
}

Inputs clone(const Inputs& in) {
  return {in.gates.detach().clone().requires_grad_(), in.c.detach().clone().requires_grad_()};
}

TEST(LstmCellPointwise, Fp32EqualsLibTorchsCellWithGradients) {
  for (int64_t H : {37, 16, 3}) {  // partial vectors, one vector, less than one
    auto a = inputs(H);
    auto b = clone(a);
    auto [h, c] = lstm_cell_pointwise(a.gates, a.c);
    auto [h_ref, c_ref] = reference(b.gates, b.c);
    EXPECT_TRUE(torch::allclose(h, h_ref, 1e-6, 1e-6)) << (h - h_ref).abs().max();
    EXPECT_TRUE(torch::allclose(c, c_ref, 1e-6, 1e-6)) << (c - c_ref).abs().max();
    auto wh = torch::randn(h.sizes()), wc = torch::randn(c.sizes());
    ((h * wh).sum() + (c * wc).sum()).backward();
    ((h_ref * wh).sum() + (c_ref * wc).sum()).backward();
    EXPECT_TRUE(torch::allclose(a.gates.grad(), b.gates.grad(), 1e-5, 1e-6)) << (a.gates.grad() - b.gates.grad()).abs().max();
    EXPECT_TRUE(torch::allclose(a.c.grad(), b.c.grad(), 1e-5, 1e-6)) << (a.c.grad() - b.c.grad()).abs().max();
  }
}

TEST(LstmCellPointwise, OnlyTheHiddenStateUsedGivesTheSameGradients) {
  // The last step of a sequence: c' feeds nothing, so its gradient is undefined.
  auto a = inputs(20);
  auto b = clone(a);
  lstm_cell_pointwise(a.gates, a.c).first.sum().backward();
  reference(b.gates, b.c).first.sum().backward();
  EXPECT_TRUE(torch::allclose(a.gates.grad(), b.gates.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(a.c.grad(), b.c.grad(), 1e-5, 1e-6));
}

TEST(LstmCellPointwise, Bf16GatesKeepTheStatesTypeAndAgreeWithinBf16Rounding) {
  for (auto c_type : {torch::kFloat, torch::kBFloat16}) {
    auto a = inputs(24, torch::kBFloat16, c_type);
    auto [h, c] = lstm_cell_pointwise(a.gates, a.c);
    EXPECT_EQ(h.scalar_type(), c_type);  // ATen's promotion of (bf16 gates, state)
    EXPECT_EQ(c.scalar_type(), c_type);
    auto [h_ref, c_ref] = reference(a.gates.detach().to(torch::kFloat), a.c.detach().to(torch::kFloat));
    EXPECT_TRUE(torch::allclose(h.to(torch::kFloat), h_ref, 1e-2, 1e-2)) << (h.to(torch::kFloat) - h_ref).abs().max();
    EXPECT_TRUE(torch::allclose(c.to(torch::kFloat), c_ref, 1e-2, 1e-2));
    h.to(torch::kFloat).sum().backward();
    EXPECT_EQ(a.gates.grad().scalar_type(), torch::kBFloat16);
    EXPECT_EQ(a.c.grad().scalar_type(), c_type);
  }
}

TEST(LstmCellPointwise, ShapesThatDoNotFitAreAnError) {
  auto a = inputs(8);
  EXPECT_THROW(lstm_cell_pointwise(a.gates.narrow(1, 0, 30), a.c), c10::Error);
  EXPECT_THROW(lstm_cell_pointwise(a.gates, a.c.narrow(0, 0, 4)), c10::Error);
}

}  // namespace

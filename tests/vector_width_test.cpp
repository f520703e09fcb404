// The hand-written kernels run at 16 lanes on a CPU with AVX-512 and at 8 lanes elsewhere
// (nmt/simd.h, vector_lanes()). Both widths run on any CPU, so one machine checks that they
// agree: the dropout kernels (compiled without multiply-add contraction) bit for bit, the
// others (the LSTM cell, where GCC may contract different pairs at either width; the softmax,
// the loss, the additive scores and top-k, which sum across lanes) up to fp32 rounding, with
// the same dropout masks and the same top-k positions. Sizes are odd so that every loop has full
// vectors and a tail at either width.
#include <functional>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/models/attention.h"
#include "nmt/models/dropout.h"
#include "nmt/models/lstm_cell.h"
#include "nmt/models/seq2seq.h"
#include "nmt/search/top_k.h"
#include "nmt/simd.h"
#include "nmt/train/loss.h"

namespace {

namespace simd = nmt::simd;

/// f() at `lanes`, the kernels' width restored afterwards.
std::vector<at::Tensor> at_lanes(int lanes, const std::function<std::vector<at::Tensor>()>& f) {
  const int before = simd::vector_lanes();
  simd::set_vector_lanes(lanes);
  std::vector<at::Tensor> out;
  try {
    out = f();
  } catch (...) {
    simd::set_vector_lanes(before);
    throw;
  }
  simd::set_vector_lanes(before);
  return out;
}

/// The inputs' gradients after out.sum().backward(), then the inputs' gradients cleared.
std::vector<at::Tensor> gradients(const at::Tensor& out, std::vector<at::Tensor> inputs) {
  out.to(torch::kFloat).sum().backward();
  std::vector<at::Tensor> g;
  for (auto& t : inputs) {
    g.push_back(t.grad().clone());
    t.mutable_grad() = at::Tensor();
  }
  return g;
}

void expect_equal(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "output " << i;
}

void expect_close(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b, double rtol, double atol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i].to(torch::kFloat), b[i].to(torch::kFloat), rtol, atol))
        << "output " << i << ": largest difference "
        << (a[i].to(torch::kFloat) - b[i].to(torch::kFloat)).abs().max().item<float>();
}

class VectorWidth : public ::testing::TestWithParam<at::ScalarType> {};

TEST(VectorWidthSetting, TakesEightOrSixteenLanes) {
  const int before = simd::vector_lanes();
  simd::set_vector_lanes(8);
  EXPECT_EQ(simd::vector_lanes(), 8);
  simd::set_vector_lanes(16);
  EXPECT_EQ(simd::vector_lanes(), 16);
  simd::set_vector_lanes(before);
}

TEST_P(VectorWidth, DropoutKernelsAgreeBitForBit) {
  const auto type = GetParam();
  torch::manual_seed(1);
  const auto x = torch::randn({3, 7, 37});
  auto y = torch::randn({3, 7, 37}).to(type).requires_grad_();
  auto bias = torch::randn({37}, torch::requires_grad());
  auto run = [&] {
    std::vector<at::Tensor> out;
    torch::manual_seed(7);
    out.push_back(nmt::models::dropout(y.detach(), 0.3, true));
    torch::manual_seed(7);
    auto added = nmt::models::dropout_add(x, y, 0.3, true);
    out.push_back(added.detach());
    for (auto& g : gradients(added, {y})) out.push_back(g);
    torch::manual_seed(7);
    auto biased = nmt::models::dropout_add(x, y, 0.3, true, bias);
    out.push_back(biased.detach());
    for (auto& g : gradients(biased, {y, bias})) out.push_back(g);
    torch::manual_seed(7);
    auto relu = nmt::models::bias_relu_dropout(y, bias, 0.3, true);
    out.push_back(relu.detach());
    for (auto& g : gradients(relu, {y, bias})) out.push_back(g);
    return out;
  };
  const auto wide = at_lanes(16, run), narrow = at_lanes(8, run);
  EXPECT_GT((wide[0] == 0).sum().item<int64_t>(), 0);  // something was dropped
  expect_equal(wide, narrow);
}

TEST_P(VectorWidth, AttentionSoftmaxAgreesAndDropsTheSameElements) {
  const auto type = GetParam();
  torch::manual_seed(2);
  auto scores = torch::randn({2, 3, 5, 23}).to(type).requires_grad_();
  auto mask = torch::zeros({2, 1, 1, 23});
  mask.index_put_({1, 0, 0, torch::indexing::Slice(19, torch::indexing::None)}, -INFINITY);
  auto run = [&] {
    torch::manual_seed(9);
    auto p = nmt::models::attention_softmax_dropout(scores, 0.125, mask, 0.2, true);
    std::vector<at::Tensor> out{p.probs.detach(), p.dropped.detach()};
    for (auto& g : gradients(p.dropped * torch::linspace(-1, 1, 23).to(type), {scores})) out.push_back(g);
    return out;
  };
  const auto wide = at_lanes(16, run), narrow = at_lanes(8, run);
  EXPECT_TRUE(torch::equal(wide[1] == 0, narrow[1] == 0));
  const double tol = type == torch::kFloat ? 1e-5 : 1e-2;
  expect_close(wide, narrow, tol, 1e-6);
}

TEST_P(VectorWidth, FusedLossAgrees) {
  const auto type = GetParam();
  torch::manual_seed(3);
  auto hidden = torch::randn({3, 5, 16}, torch::requires_grad());
  auto weight = torch::randn({53, 16}).to(type).requires_grad_();
  auto bias = torch::randn({53}, torch::requires_grad());
  const auto targets = torch::randint(4, 53, {3, 5}, torch::kLong);
  auto run = [&] {
    auto loss = nmt::train::sequence_loss_from_output_layer({hidden, weight, bias}, targets, 0.1);
    std::vector<at::Tensor> out{loss.loss.detach(), loss.nll};
    for (auto& g : gradients(loss.loss, {hidden, weight, bias})) out.push_back(g);
    return out;
  };
  const auto wide = at_lanes(16, run), narrow = at_lanes(8, run);
  const double tol = type == torch::kFloat ? 1e-5 : 1e-2;
  expect_close(wide, narrow, tol, 1e-5);
}

TEST_P(VectorWidth, TopKOfTheLogSoftmaxAgrees) {
  const auto type = GetParam();
  torch::manual_seed(4);
  const auto logits = (torch::randn({6, 203}) * 3).to(type);
  auto run = [&] {
    auto top = nmt::search::top_k_log_softmax(logits, 10);
    return std::vector<at::Tensor>{top.values, top.indices};
  };
  const auto wide = at_lanes(16, run), narrow = at_lanes(8, run);
  EXPECT_TRUE(torch::equal(wide[1], narrow[1]));
  expect_close({wide[0]}, {narrow[0]}, 1e-6, 1e-5);
}

TEST_P(VectorWidth, LstmCellAgrees) {
  const auto type = GetParam();
  torch::manual_seed(5);
  auto gates = (torch::randn({4, 4 * 37}) * 2).to(type).requires_grad_();
  auto c = torch::randn({4, 37}, torch::requires_grad());
  auto run = [&] {
    auto [h, c_new] = nmt::models::lstm_cell_pointwise(gates, c);
    std::vector<at::Tensor> out{h.detach(), c_new.detach()};
    for (auto& g : gradients(h * 0.5 + c_new, {gates, c})) out.push_back(g);
    return out;
  };
  const double tol = type == torch::kFloat ? 1e-5 : 1e-2;
  expect_close(at_lanes(16, run), at_lanes(8, run), tol, 1e-6);
}

TEST_P(VectorWidth, AdditiveScoresAgree) {
  const auto type = GetParam();
  torch::manual_seed(6);
  auto keys = torch::randn({3, 11, 37}).to(type).requires_grad_();
  auto query = torch::randn({3, 37}).to(type).requires_grad_();
  auto v = torch::randn({37}, torch::requires_grad());
  auto run = [&] {
    auto e = nmt::models::additive_scores(keys, query, v);
    std::vector<at::Tensor> out{e.detach()};
    for (auto& g : gradients(e * torch::linspace(-1, 1, 11), {keys, query, v})) out.push_back(g);
    return out;
  };
  const auto wide = at_lanes(16, run), narrow = at_lanes(8, run);
  const double tol = type == torch::kFloat ? 1e-5 : 1e-2;
  expect_close(wide, narrow, tol, 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, VectorWidth, ::testing::Values(torch::kFloat, torch::kBFloat16),
                         [](const auto& info) { return info.param == torch::kFloat ? "fp32" : "bf16"; });

}  // namespace

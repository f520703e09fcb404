// models::dropout (models/dropout.h): the keep rate, the scale that keeps the expectation, the
// gradient, independence of neighbouring elements, and reproducibility from the generator state.
#include "nmt/models/dropout.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace {

TEST(Dropout, KeepsOneMinusPScaledSoTheExpectationIsUnchanged) {
  torch::manual_seed(3);
  const int64_t n = 1 << 20;
  for (double p : {0.1, 0.3, 0.5}) {
    auto x = torch::rand({n / 256, 16, 16}) + 0.5;
    auto y = nmt::models::dropout(x, p, true);
    ASSERT_EQ(y.sizes(), x.sizes());
    auto kept = y.ne(0);
    const double dropped = 1.0 - kept.to(torch::kDouble).mean().item<double>();
    // p′ = p rounded to 2^-16; the binomial standard deviation is ~0.0005 here: 6σ.
    EXPECT_NEAR(dropped, p, 6 * std::sqrt(p * (1 - p) / n) + 1.0 / 131072) << "p " << p;
    // Every kept element is x / (1 − p′) exactly, with p′ = round(p·2^16)/2^16.
    const double p_rounded = std::round(p * 65536) / 65536;
    auto ratio = y.masked_select(kept) / x.masked_select(kept);
    EXPECT_TRUE(torch::allclose(ratio, torch::full_like(ratio, 1 / (1 - p_rounded)), 1e-6, 0)) << "p " << p;
    // The mean of y / x estimates E[mask · scale] = 1.
    EXPECT_NEAR((y / x).mean().item<double>(), 1.0, 6 * std::sqrt(p / (1 - p) / n)) << "p " << p;
  }
}

TEST(Dropout, NeighbouringElementsAreIndependent) {
  // Four elements share one 64-bit draw: each pair of positions within a draw, and across two
  // draws, is dropped together with probability p².
  torch::manual_seed(5);
  const double p = 0.3;
  const int64_t draws = 1 << 18;
  auto kept = nmt::models::dropout(torch::ones({draws, 8}), p, true).ne(0).to(torch::kDouble);
  const double sd = 6 * std::sqrt(p * p * (1 - p * p) / draws);
  for (int i = 0; i < 8; ++i)
    for (int j = i + 1; j < 8; ++j) {
      const double both = ((1 - kept.select(1, i)) * (1 - kept.select(1, j))).mean().item<double>();
      EXPECT_NEAR(both, p * p, sd) << "lanes " << i << ", " << j;
    }
}

TEST(Dropout, GradientIsTheMaskTimesTheScale) {
  torch::manual_seed(7);
  auto x = torch::randn({6, 5, 7}).requires_grad_(true);
  auto y = nmt::models::dropout(x, 0.4, true);
  (y * 3).sum().backward();
  const auto expected = (y / x).detach() * 3;
  EXPECT_TRUE(torch::allclose(x.grad(), expected, 1e-5, 1e-6));
  EXPECT_GT(y.eq(0).sum().item<int64_t>(), 0);
  EXPECT_GT(y.ne(0).sum().item<int64_t>(), 0);
}

TEST(Dropout, IsTheIdentityOutsideTrainingOrAtZero) {
  auto x = torch::randn({4, 9});
  EXPECT_TRUE(nmt::models::dropout(x, 0.3, false).is_same(x));
  EXPECT_TRUE(nmt::models::dropout(x, 0.0, true).is_same(x));
  EXPECT_TRUE(nmt::models::dropout(x, 1e-6, true).is_same(x));  // rounds to p′ = 0
  EXPECT_THROW(nmt::models::dropout(x, 1.0, true), c10::Error);
  EXPECT_THROW(nmt::models::dropout(x, -0.1, true), c10::Error);
  EXPECT_EQ(nmt::models::dropout(torch::ones({0, 3}), 0.5, true).numel(), 0);
}

TEST(Dropout, TheGeneratorStateReproducesTheMask) {
  auto x = torch::randn({33, 17});  // an element count that is not a multiple of four
  torch::manual_seed(11);
  auto first = nmt::models::dropout(x, 0.25, true);
  at::Generator generator = at::detail::getDefaultCPUGenerator();  // a handle: shares the default
  auto state = generator.get_state();
  auto second = nmt::models::dropout(x, 0.25, true);
  EXPECT_FALSE(torch::equal(first, second));
  torch::manual_seed(11);
  EXPECT_TRUE(torch::equal(nmt::models::dropout(x, 0.25, true), first));
  generator.set_state(state);
  EXPECT_TRUE(torch::equal(nmt::models::dropout(x, 0.25, true), second));
}

}  // namespace

// models::dropout (models/dropout.h): the keep rate, the scale that keeps the expectation, the
// gradient, independence of neighbouring elements, and reproducibility from the generator state;
// the fused residual, feed-forward and attention-softmax passes against the separate operations.
#include "nmt/models/dropout.h"

#include <cmath>
#include <string>
#include <vector>

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
  // Each element's bits are a hash of its position under the call's key: any two positions
  // within a row of 8, neighbours among them, are dropped together with probability p².
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

TEST(Dropout, SuccessiveMasksAreIndependent) {
  // Two calls draw two keys: their masks agree position by position, or shifted by a few
  // positions, only as often as independent masks would (dropped together with probability p²).
  torch::manual_seed(6);
  const double p = 0.3;
  const int64_t n = 1 << 20;
  auto a = nmt::models::dropout(torch::ones({n}), p, true).eq(0).to(torch::kDouble);
  auto b = nmt::models::dropout(torch::ones({n}), p, true).eq(0).to(torch::kDouble);
  const double sd = 6 * std::sqrt(p * p * (1 - p * p) / (n - 8));
  for (int64_t shift : {0, 1, 4, 7}) {
    const double both = (a.narrow(0, shift, n - 8) * b.narrow(0, 0, n - 8)).mean().item<double>();
    EXPECT_NEAR(both, p * p, sd) << "shift " << shift;
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

TEST(Dropout, Bf16AndStridedInputsGetTheMaskOfTheirElementsInOrder) {
  // The mask depends on the element's position in the (contiguous) tensor and the generator
  // state only: bf16 and fp32 copies of x, and a transposed view made contiguous, are dropped
  // alike, and kept bf16 elements are x·scale rounded to bf16.
  auto x = torch::rand({40, 70}) + 0.5;
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  torch::manual_seed(13);
  auto state = generator.get_state();
  auto y32 = nmt::models::dropout(x, 0.3, true);
  generator.set_state(state);
  auto y16 = nmt::models::dropout(x.to(torch::kBFloat16), 0.3, true);
  ASSERT_EQ(y16.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(y16.ne(0), y32.ne(0)));
  EXPECT_TRUE(torch::equal(y16, (x.to(torch::kBFloat16).to(torch::kFloat) * (y32 / x)).to(torch::kBFloat16)));
  // fp64 and fp16 take the element-by-element loop, fp32 and bf16 the vector loop: one mask.
  for (auto dtype : {torch::kDouble, torch::kHalf}) {
    generator.set_state(state);
    EXPECT_TRUE(torch::equal(nmt::models::dropout(x.to(dtype), 0.3, true).ne(0), y32.ne(0))) << dtype;
  }
  auto t = x.t();  // not contiguous
  generator.set_state(state);
  auto yt = nmt::models::dropout(t, 0.3, true);
  generator.set_state(state);
  EXPECT_TRUE(torch::equal(yt, nmt::models::dropout(t.contiguous(), 0.3, true)));
}

TEST(Dropout, TheMaskDoesNotDependOnTheNumberOfThreads) {
  // Large enough for several tasks; an odd element count, so a task can start at an odd element
  // (the second half of a pair hash).
  auto x = torch::rand({301, 257}) + 0.5;
  const int threads = at::get_num_threads();
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  torch::manual_seed(17);
  auto state = generator.get_state();
  at::set_num_threads(1);
  auto one = nmt::models::dropout(x, 0.2, true);
  at::set_num_threads(std::max(2, threads));
  generator.set_state(state);
  auto many = nmt::models::dropout(x, 0.2, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, many));
}

TEST(DropoutAdd, EqualsTheResidualPlusDropoutBitwiseForwardAndBackward) {
  // An odd element count on two threads (a task starts in the middle of a pair hash); fp32 and
  // bf16 sublayer outputs.
  const int threads = at::get_num_threads();
  at::set_num_threads(std::max(2, threads));
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    torch::manual_seed(21);
    auto x = torch::randn({301, 257});
    auto y = torch::randn({301, 257}).to(dtype);
    auto state = generator.get_state();
    auto xa = x.clone().requires_grad_(), ya = y.clone().requires_grad_();
    auto fused = nmt::models::dropout_add(xa, ya, 0.3, true);
    const auto after = generator.get_state();
    generator.set_state(state);
    auto xb = x.clone().requires_grad_(), yb = y.clone().requires_grad_();
    auto reference = xb + nmt::models::dropout(yb, 0.3, true);
    EXPECT_TRUE(torch::equal(generator.get_state(), after)) << "the same draws from the generator";
    ASSERT_EQ(fused.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::equal(fused, reference)) << dtype;
    auto g = torch::randn({301, 257});
    fused.backward(g);
    reference.backward(g);
    EXPECT_TRUE(torch::equal(xa.grad(), g));
    ASSERT_EQ(ya.grad().scalar_type(), dtype);
    // y's gradient: g times the mask's factor in fp32, rounded once to y's dtype.
    generator.set_state(state);
    auto factor = nmt::models::dropout(torch::ones({301, 257}), 0.3, true);
    EXPECT_TRUE(torch::equal(ya.grad(), (g * factor).to(dtype))) << dtype;
    EXPECT_TRUE(torch::allclose(ya.grad().to(torch::kFloat), yb.grad().to(torch::kFloat), 1.0 / 128, 0)) << dtype;
  }
  at::set_num_threads(threads);
}

TEST(DropoutAdd, WithABiasEqualsTheSeparateOperationsBitwise) {
  // The branch is a product without its bias: x + dropout(round(y + bias)). Rows of 256 (the
  // model width) and of 37 (16-lane chunks cross the ends of rows), fp32 and bf16 y, two threads.
  const int threads = at::get_num_threads();
  at::set_num_threads(std::max(2, threads));
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  for (int64_t F : {256, 37})
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      SCOPED_TRACE(::testing::Message() << "F " << F << ", " << dtype);
      torch::manual_seed(23);
      auto x = torch::randn({77, F}), y = torch::randn({77, F}).to(dtype), bias = torch::randn({F});
      auto xa = x.clone().requires_grad_(), ya = y.clone().requires_grad_(), ba = bias.clone().requires_grad_();
      auto state = generator.get_state();
      auto fused = nmt::models::dropout_add(xa, ya, 0.3, true, ba);
      const auto after = generator.get_state();
      generator.set_state(state);
      auto xb = x.clone().requires_grad_(), yb = y.clone().requires_grad_(), bb = bias.clone().requires_grad_();
      auto reference = xb + nmt::models::dropout((yb.to(torch::kFloat) + bb).to(dtype), 0.3, true);
      EXPECT_TRUE(torch::equal(generator.get_state(), after)) << "the same draws from the generator";
      EXPECT_TRUE(torch::equal(fused, reference));
      auto g = torch::randn({77, F});
      fused.backward(g);
      reference.backward(g);
      EXPECT_TRUE(torch::equal(xa.grad(), g));
      // y's gradient: g times the mask's factor in fp32, rounded once to y's dtype; the bias's:
      // its column sums, in fp32.
      generator.set_state(state);
      auto factor = nmt::models::dropout(torch::ones({77, F}), 0.3, true);
      const auto dy = (g * factor).to(dtype);
      ASSERT_EQ(ya.grad().scalar_type(), dtype);
      EXPECT_TRUE(torch::equal(ya.grad(), dy));
      ASSERT_EQ(ba.grad().scalar_type(), torch::kFloat);
      EXPECT_TRUE(torch::allclose(ba.grad(), dy.to(torch::kFloat).sum(0), 1e-5, 1e-5));
      // The separate operations round y's gradient twice in bf16 (g, then g·factor): each term
      // within 2^-7 of its value.
      EXPECT_TRUE((ba.grad() - bb.grad()).abs().le(dy.to(torch::kFloat).abs().sum(0) / 128 + 1e-6).all().item<bool>());
    }
  at::set_num_threads(threads);
}

TEST(DropoutAdd, TheBiasGradientDoesNotDependOnTheNumberOfThreads) {
  const int threads = at::get_num_threads();
  auto bias_gradient = [](int n) {
    at::set_num_threads(n);
    torch::manual_seed(24);
    auto x = torch::randn({1000, 64}), y = torch::randn({1000, 64}), bias = torch::randn({64}).requires_grad_();
    nmt::models::dropout_add(x, y, 0.2, true, bias).backward(torch::randn({1000, 64}));
    return bias.grad();
  };
  const auto one = bias_gradient(1);
  EXPECT_TRUE(torch::equal(one, bias_gradient(std::max(2, threads))));
  at::set_num_threads(threads);
}

TEST(DropoutAdd, OtherCasesAreTheTwoOperations) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  torch::manual_seed(22);
  auto x = torch::randn({6, 10}), y = torch::randn({10, 6});
  EXPECT_TRUE(torch::equal(nmt::models::dropout_add(x, y.t(), 0.3, false), x + y.t()));  // not training
  auto state = generator.get_state();
  auto strided = nmt::models::dropout_add(x, y.t(), 0.3, true);  // not contiguous
  generator.set_state(state);
  EXPECT_TRUE(torch::equal(strided, x + nmt::models::dropout(y.t(), 0.3, true)));
  auto broadcast = nmt::models::dropout_add(x, torch::ones({10}), 0.0, true);  // p = 0, broadcast
  EXPECT_TRUE(torch::equal(broadcast, x + 1));
  auto bias = torch::randn({10});
  EXPECT_TRUE(torch::equal(nmt::models::dropout_add(x, y.t(), 0.3, false, bias), x + (y.t() + bias)));
  state = generator.get_state();
  auto strided_bias = nmt::models::dropout_add(x, y.t(), 0.3, true, bias);
  generator.set_state(state);
  EXPECT_TRUE(torch::equal(strided_bias, x + nmt::models::dropout(y.t() + bias, 0.3, true)));
  EXPECT_THROW(nmt::models::dropout_add(x, x, 1.0, true), c10::Error);
  EXPECT_THROW(nmt::models::dropout_add(x, x, 0.3, true, torch::zeros({6})), c10::Error);  // bias [6] for rows of 10
}

/// dropout(relu(y + bias)) by the separate operations, in fp32, rounded once to y's dtype.
at::Tensor bias_relu_dropout_reference(const at::Tensor& y, const at::Tensor& bias, double p) {
  return nmt::models::dropout(at::relu(y.to(torch::kFloat) + bias), p, true).to(y.scalar_type());
}

TEST(BiasReluDropout, EqualsTheSeparateOperationsBitwiseForwardAndBackward) {
  // Rows of 1,024 (the feed-forward width) and of 37 (a 16-lane chunk crosses the end of a row,
  // a task starts in the middle of a pair hash), fp32 and bf16, p = 0.1 and p = 0 (no mask).
  const int threads = at::get_num_threads();
  at::set_num_threads(std::max(2, threads));
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  for (int64_t F : {1024, 37})
    for (auto dtype : {torch::kFloat, torch::kBFloat16})
      for (double p : {0.1, 0.0}) {
        SCOPED_TRACE(::testing::Message() << "F " << F << ", " << dtype << ", p " << p);
        torch::manual_seed(31);
        auto y = torch::randn({77, F}).to(dtype), bias = torch::randn({F});
        auto ya = y.clone().requires_grad_(), ba = bias.clone().requires_grad_();
        auto yb = y.clone().requires_grad_(), bb = bias.clone().requires_grad_();
        auto state = generator.get_state();
        auto fused = nmt::models::bias_relu_dropout(ya, ba, p, true);
        const auto after = generator.get_state();
        generator.set_state(state);
        auto reference = bias_relu_dropout_reference(yb, bb, p);
        EXPECT_TRUE(torch::equal(generator.get_state(), after)) << "the same draws from the generator";
        ASSERT_EQ(fused.scalar_type(), dtype);
        EXPECT_TRUE(torch::equal(fused, reference));
        const double zeros = fused.eq(0).to(torch::kFloat).mean().item<double>();
        EXPECT_GT(zeros, 0.25);  // ReLU (and the mask) zero some, not all
        EXPECT_LT(zeros, 0.75);
        auto g = torch::randn({77, F}).to(dtype);
        fused.backward(g);
        reference.backward(g);
        ASSERT_EQ(ya.grad().scalar_type(), dtype);
        EXPECT_TRUE(torch::equal(ya.grad(), yb.grad()));
        ASSERT_EQ(ba.grad().scalar_type(), torch::kFloat);
        EXPECT_TRUE(torch::allclose(ba.grad(), bb.grad(), 1e-5, 1e-5));
      }
  at::set_num_threads(threads);
}

TEST(BiasReluDropout, NaNStaysNaNAsInReluAndGetsNoGradient) {
  auto y = torch::randn({4, 32});
  y[1][3] = std::nanf("");
  y[2][30] = std::nanf("");
  auto yg = y.clone().requires_grad_();
  auto out = nmt::models::bias_relu_dropout(yg, torch::zeros({32}), 0.1, true);
  EXPECT_TRUE(torch::equal(out.isnan(), y.isnan()));  // dropped or kept, NaN·factor is NaN
  out.backward(torch::ones({4, 32}));
  EXPECT_EQ(yg.grad()[1][3].item<float>(), 0.0f);
  EXPECT_EQ(yg.grad()[2][30].item<float>(), 0.0f);
}

TEST(BiasReluDropout, TheBiasGradientDoesNotDependOnTheNumberOfThreads) {
  const int threads = at::get_num_threads();
  auto bias_gradient = [](int n) {
    at::set_num_threads(n);
    torch::manual_seed(32);
    auto y = torch::randn({1000, 64}).requires_grad_(), bias = torch::randn({64}).requires_grad_();
    nmt::models::bias_relu_dropout(y, bias, 0.2, true).backward(torch::randn({1000, 64}));
    return bias.grad();
  };
  const auto one = bias_gradient(1);
  EXPECT_TRUE(torch::equal(one, bias_gradient(std::max(2, threads))));
  at::set_num_threads(threads);
}

TEST(BiasReluDropout, OtherCasesAreTheSeparateOperations) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  torch::manual_seed(33);
  auto y = torch::randn({10, 6}), bias = torch::randn({10});
  EXPECT_TRUE(torch::equal(nmt::models::bias_relu_dropout(y.t(), bias, 0.3, false), at::relu(y.t() + bias)));
  auto state = generator.get_state();
  auto strided = nmt::models::bias_relu_dropout(y.t(), bias, 0.3, true);  // not contiguous
  generator.set_state(state);
  EXPECT_TRUE(torch::equal(strided, bias_relu_dropout_reference(y.t(), bias, 0.3)));
  EXPECT_THROW(nmt::models::bias_relu_dropout(y, bias, 0.3, true), c10::Error);  // bias [10] for rows of 6
  EXPECT_THROW(nmt::models::bias_relu_dropout(y.t(), bias, 1.0, true), c10::Error);
}

/// Scores [N, H, T, S] of `dtype` and the biases attention adds: none, key padding [N, 1, 1, S]
/// (the last keys of some rows masked), causal [T, S] (T = S).
struct AttentionCase {
  at::Tensor scores, bias;
  std::string name;
};

std::vector<AttentionCase> attention_cases(int64_t S, torch::Dtype dtype) {
  const int64_t N = 7, H = 4;
  auto scores = (torch::randn({N, H, S, S}) * 4).to(dtype);
  auto padding = torch::zeros({N, 1, 1, S});
  padding.index_put_({torch::indexing::Slice(0, 3), 0, 0, torch::indexing::Slice(S / 2)}, -INFINITY);
  auto causal = torch::zeros({S, S}).masked_fill_(torch::ones({S, S}, torch::kBool).triu(1), -INFINITY);
  return {{scores, at::Tensor(), "no bias"}, {scores, padding, "padding"}, {scores, causal, "causal"}};
}

/// max |a − b| over the largest |b|.
double relative_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>() /
         b.to(torch::kDouble).abs().max().item<double>();
}

TEST(AttentionSoftmaxDropout, EqualsTheSeparateOperationsForwardAndBackward) {
  // Rows of 10 (one partial 16-lane chunk) and of 37 (two full chunks and a tail); fp32 and
  // bf16; p = 0.1 and p = 0; the gradient of the dropped probabilities alone, and with one of
  // the probabilities themselves (the attention weights a model returns).
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  const double scale = 0.125;
  for (int64_t S : {10, 37})
    for (auto dtype : {torch::kFloat, torch::kBFloat16})
      for (double p : {0.1, 0.0})
        for (const auto& c : attention_cases(S, dtype))
          for (bool probs_used : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "S " << S << ", " << dtype << ", p " << p << ", " << c.name
                                              << (probs_used ? ", probs used" : ""));
            const double tolerance = dtype == torch::kFloat ? 1e-5 : 1e-2;
            auto fused_scores = c.scores.clone().requires_grad_();
            auto state = generator.get_state();
            auto fused = nmt::models::attention_softmax_dropout(fused_scores, scale, c.bias, p, true);
            const auto after = generator.get_state();
            ASSERT_EQ(fused.probs.scalar_type(), dtype);
            ASSERT_EQ(fused.dropped.scalar_type(), dtype);
            // The reference: fp32 softmax, then dropout() from the same generator state.
            generator.set_state(state);
            auto ref_scores = c.scores.to(torch::kFloat, false, /*copy=*/true).requires_grad_();
            auto z = ref_scores * scale;
            auto ref_probs = torch::softmax(c.bias.defined() ? z + c.bias : z, -1);
            auto ref_dropped = nmt::models::dropout(ref_probs, p, true);
            EXPECT_TRUE(torch::equal(generator.get_state(), after)) << "the same draws from the generator";
            EXPECT_LE(relative_difference(fused.probs, ref_probs), tolerance);
            EXPECT_LE(relative_difference(fused.dropped, ref_dropped), tolerance);
            // The same elements dropped: those zero in one and not in the other are masked keys.
            EXPECT_TRUE(torch::equal(fused.dropped.eq(0) & ref_probs.gt(0), ref_dropped.eq(0) & ref_probs.gt(0)));
            if (p > 0) {
              const double dropped = (ref_dropped.eq(0) & ref_probs.gt(0)).sum().item<double>() /
                                     ref_probs.gt(0).sum().item<double>();
              EXPECT_GT(dropped, 0.05);
              EXPECT_LT(dropped, 0.15);
            }
            // The same dropout of the rounded probabilities, bit for bit.
            generator.set_state(state);
            EXPECT_TRUE(torch::equal(fused.dropped, nmt::models::dropout(fused.probs.detach(), p, true)));
            auto g1 = torch::randn(c.scores.sizes()), g2 = torch::randn(c.scores.sizes());
            auto fused_loss = (fused.dropped.to(torch::kFloat) * g1).sum();
            auto ref_loss = (ref_dropped * g1).sum();
            if (probs_used) {
              fused_loss = fused_loss + (fused.probs.to(torch::kFloat) * g2).sum();
              ref_loss = ref_loss + (ref_probs * g2).sum();
            }
            fused_loss.backward();
            ref_loss.backward();
            ASSERT_EQ(fused_scores.grad().scalar_type(), dtype);
            EXPECT_LE(relative_difference(fused_scores.grad(), ref_scores.grad()), 3 * tolerance);
          }
}

TEST(AttentionSoftmaxDropout, TheResultDoesNotDependOnTheNumberOfThreads) {
  const int threads = at::get_num_threads();
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  torch::manual_seed(34);
  // 2·4·200 rows of 33: several tasks and blocks, a task starting in the middle of a pair hash.
  const auto scores = torch::randn({2, 4, 200, 33});
  const auto g = torch::randn({2, 4, 200, 33});
  const auto state = generator.get_state();
  auto run = [&](int n) {
    at::set_num_threads(n);
    generator.set_state(state);
    auto x = scores.clone().requires_grad_();
    auto out = nmt::models::attention_softmax_dropout(x, 0.3, at::Tensor(), 0.2, true);
    (out.dropped * g).sum().backward();
    return std::vector<at::Tensor>{out.probs.detach(), out.dropped.detach(), x.grad()};
  };
  const auto one = run(1), two = run(std::max(2, threads));
  at::set_num_threads(threads);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(torch::equal(one[i], two[i])) << i;
}

TEST(AttentionSoftmaxDropout, OtherCasesAreTheSeparateOperations) {
  torch::manual_seed(35);
  auto scores = torch::randn({2, 3, 5, 6}), bias = torch::zeros({2, 1, 1, 6});
  bias[1][0][0][5] = -INFINITY;
  auto expected = torch::softmax(scores * 0.5 + bias, -1);
  auto eval = nmt::models::attention_softmax_dropout(scores, 0.5, bias, 0.1, false);  // not training
  EXPECT_TRUE(torch::equal(eval.probs, expected));
  EXPECT_TRUE(torch::equal(eval.dropped, expected));
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  auto strided = scores.transpose(2, 3).contiguous().transpose(2, 3);  // not contiguous
  auto state = generator.get_state();
  auto out = nmt::models::attention_softmax_dropout(strided, 0.5, bias, 0.1, true);
  generator.set_state(state);
  EXPECT_TRUE(torch::equal(out.probs, expected));
  EXPECT_TRUE(torch::equal(out.dropped, nmt::models::dropout(expected, 0.1, true)));
  EXPECT_TRUE(torch::equal(scores, strided));  // the input is left as it was
  EXPECT_THROW(nmt::models::attention_softmax_dropout(scores, 0.5, torch::zeros({3, 1, 1, 6}), 0.1, true), c10::Error);
  EXPECT_THROW(nmt::models::attention_softmax_dropout(scores, 0.5, bias, 1.0, true), c10::Error);
  EXPECT_THROW(nmt::models::attention_softmax_dropout(scores[0], 0.5, at::Tensor(), 0.1, true), c10::Error);
}

}  // namespace

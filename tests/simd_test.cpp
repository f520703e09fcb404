// The vectorised functions of nmt/simd.h that the fused loops use (tanh for Bahdanau scores and
// the LSTM cell, the logistic function for the LSTM cell) against the C library in double.
#include "nmt/simd.h"

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

namespace {

namespace simd = nmt::simd;

/// x from lo to hi in steps of `step`, then ± each of `extra`.
std::vector<float> sweep(float lo, float hi, float step, std::initializer_list<float> extra) {
  std::vector<float> xs;
  for (float x = lo; x <= hi; x += step) xs.push_back(x);
  for (float x : extra) {
    xs.push_back(x);
    xs.push_back(-x);
  }
  return xs;
}

/// f on xs 16 lanes at a time (the last vector partial) against `want`, within
/// max(4 ulp of the value, `floor`).
void expect_lanes_near(const std::function<simd::f32x16(simd::f32x16)>& f, double (*want)(double),
                       const std::vector<float>& xs, double floor, const char* name) {
  for (size_t i = 0; i < xs.size(); i += simd::kLanes) {
    const int64_t n = std::min<int64_t>(simd::kLanes, static_cast<int64_t>(xs.size() - i));
    const auto y = f(simd::load(xs.data() + i, n, 0.0f));
    for (int64_t l = 0; l < n; ++l) {
      const double w = want(static_cast<double>(xs[i + l]));
      EXPECT_NEAR(y[l], w, std::max(4 * std::numeric_limits<float>::epsilon() * std::abs(w), floor))
          << name << "(" << xs[i + l] << ")";
    }
  }
}

double logistic(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double tanh_double(double x) { return std::tanh(x); }

simd::f32x16 specials() {
  const float v[] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                     std::numeric_limits<float>::quiet_NaN(), 0.0f, -0.0f};
  return simd::load(v, 5, 0.0f);
}

TEST(SimdTanh, AgreesWithTanhToAFewUlp) {
  // Across 0.625, where the odd polynomial hands over to (1 − e)/(1 + e).
  const auto xs = sweep(-12.0f, 12.0f, 0.001953125f, {1e-30f, 1e-8f, 1e-4f, 0.6249999f, 0.625f, 0.6250001f, 20.0f, 88.0f, 1e30f});
  expect_lanes_near([](simd::f32x16 x) { return simd::tanh(x); }, tanh_double, xs, 1e-45, "tanh");
  for (float x : xs) EXPECT_EQ(std::signbit(simd::tanh(simd::splat(x))[0]), std::signbit(x)) << x;
  const auto t = simd::tanh(specials());
  EXPECT_EQ(t[0], 1.0f);
  EXPECT_EQ(t[1], -1.0f);
  EXPECT_TRUE(std::isnan(t[2]));
  EXPECT_EQ(t[3], 0.0f);
  EXPECT_TRUE(std::signbit(t[4]));
}

TEST(SimdSigmoid, AgreesWithTheLogisticFunctionToAFewUlp) {
  const auto xs = sweep(-100.0f, 100.0f, 0.0078125f, {1e-30f, 1e-6f, 30.0f, 88.0f, 1e30f});
  // Relative down to e^-87.3, where exp_nonpositive gives 0 (absolute below).
  expect_lanes_near([](simd::f32x16 x) { return simd::sigmoid(x); }, logistic, xs, 2e-38, "sigmoid");
  const auto y = simd::sigmoid(specials());
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_TRUE(std::isnan(y[2]));
  EXPECT_EQ(y[3], 0.5f);
}

}  // namespace

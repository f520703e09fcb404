#pragma once
// Comparisons shared by the training tests.
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace nmt::testing {

/// Expects two modules' parameters to be bitwise equal, name by name.
inline void expect_same_parameters(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
}

/// Expects two Adam optimizers' states (step, first and second moments) to be bitwise equal,
/// parameter by parameter.
inline void expect_same_adam_state(torch::optim::Adam& a, torch::optim::Adam& b) {
  auto state_of = [](torch::optim::Adam& opt, const at::Tensor& p) -> torch::optim::AdamParamState& {
    auto key = c10::guts::to_string(p.unsafeGetTensorImpl());
    return static_cast<torch::optim::AdamParamState&>(*opt.state().at(key));
  };
  const auto& p1 = a.param_groups()[0].params();
  const auto& p2 = b.param_groups()[0].params();
  ASSERT_EQ(p1.size(), p2.size());
  for (size_t i = 0; i < p1.size(); ++i) {
    auto& s1 = state_of(a, p1[i]);
    auto& s2 = state_of(b, p2[i]);
    EXPECT_EQ(s1.step(), s2.step()) << "parameter " << i;
    EXPECT_TRUE(torch::equal(s1.exp_avg(), s2.exp_avg())) << "parameter " << i;
    EXPECT_TRUE(torch::equal(s1.exp_avg_sq(), s2.exp_avg_sq())) << "parameter " << i;
  }
}

}  // namespace nmt::testing

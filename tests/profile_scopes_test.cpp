// The hand-written kernels name themselves to LibTorch's profiler (RECORD_USER_SCOPE), forward
// and backward, so that `nmt bench`'s per-operator profiles account for their time: before, a
// fused loop was not an ATen operator and its time belonged to no line of the profile.
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include "nmt/models/batched_matmul.h"
#include "nmt/models/dropout.h"
#include "nmt/models/layer_norm.h"
#include "nmt/models/seq2seq.h"
#include "nmt/train/adam.h"
#include "nmt/train/loss.h"

namespace {

/// The names of the ranges recorded while `run` runs.
template <class Run>
std::set<std::string> recorded(Run run) {
  namespace prof = torch::autograd::profiler;
  prof::enableProfilerLegacy(prof::ProfilerConfig(prof::ProfilerState::CPU));
  run();
  std::set<std::string> names;
  for (auto& events : prof::disableProfilerLegacy())
    for (auto& e : events)
      if (e.kind() == prof::EventKind::PushRange) names.insert(e.name());
  return names;
}

}  // namespace

TEST(ProfileScopes, TheHandWrittenKernelsAppearInTheProfileForwardAndBackward) {
  torch::manual_seed(0);
  auto x = torch::randn({4, 5, 16});
  auto y = torch::randn({4, 5, 16}, torch::requires_grad());
  auto bias = torch::zeros({16}, torch::requires_grad());
  auto ffn = torch::randn({4, 5, 32}, torch::requires_grad());
  auto ffn_bias = torch::zeros({32}, torch::requires_grad());
  auto scores = torch::randn({4, 2, 5, 5}, torch::requires_grad());
  auto norm_weight = torch::ones({16}, torch::requires_grad()), norm_bias = torch::zeros({16}, torch::requires_grad());
  auto a = torch::randn({4, 2, 5, 8}, torch::requires_grad()), b = torch::randn({4, 2, 8, 5}, torch::requires_grad());
  auto hidden = torch::randn({4, 5, 16}, torch::requires_grad());
  auto weight = torch::randn({20, 16}, torch::requires_grad()), out_bias = torch::zeros({20}, torch::requires_grad());
  auto targets = torch::randint(4, 20, {4, 5}, torch::kLong);
  nmt::train::FusedAdam adam({weight, out_bias}, torch::optim::AdamOptions(1e-3));

  const auto names = recorded([&] {
    nmt::models::dropout_add(x, y, 0.1, true, bias).sum().backward();
    nmt::models::bias_relu_dropout(ffn, ffn_bias, 0.1, true).sum().backward();
    nmt::models::attention_softmax_dropout(scores, 0.5, at::Tensor(), 0.1, true).dropped.sum().backward();
    nmt::models::layer_norm_cast(x.requires_grad_(), norm_weight, norm_bias, 1e-5, torch::kBFloat16)
        .to(torch::kFloat).sum().backward();
    nmt::models::batched_matmul(a, b).sum().backward();
    nmt::train::sequence_loss_from_output_layer({hidden, weight, out_bias}, targets, 0.1).loss.backward();
    nmt::train::gradient_norm({weight, out_bias});
    adam.step();
  });
  std::vector<std::string> expected{"nmt::dropout_add", "nmt::bias_relu_dropout", "nmt::attention_softmax_dropout",
                                    "nmt::layer_norm_cast", "nmt::output_layer_loss"};
  for (size_t i = 0, n = expected.size(); i < n; ++i) expected.push_back(expected[i] + "_backward");
  expected.insert(expected.end(), {"nmt::adam_step", "nmt::gradient_norm"});
  if (nmt::models::has_blas_batched_matmul()) expected.push_back("nmt::batched_matmul");
  for (const auto& name : expected) EXPECT_EQ(names.count(name), 1u) << "'" << name << "' is not in the profile";
}

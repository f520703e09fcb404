// The helpers every model shares (models/seq2seq.h).
#include "nmt/models/seq2seq.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace {

TEST(LogSoftmaxOfLogits, OverwritesTheLogitsWhenNothingIsRecordedWithLogSoftmaxsValues) {
  torch::manual_seed(3);
  auto logits = torch::randn({7, 3, 50}) * 4;
  const auto expected = at::log_softmax(logits, -1);
  torch::NoGradGuard no_grad;
  const void* storage = logits.data_ptr();
  auto out = nmt::models::log_softmax_of_logits(logits);
  EXPECT_TRUE(torch::equal(out, expected));
  EXPECT_EQ(out.data_ptr(), storage) << "a second [..., V] tensor was allocated";
}

TEST(LogSoftmaxOfLogits, KeepsTheLogitsAndTheGradientWhenAutogradRecords) {
  torch::manual_seed(4);
  auto x = torch::randn({5, 20}, torch::requires_grad());
  const auto before = x.detach().clone();
  auto logits = x * 2;
  auto out = nmt::models::log_softmax_of_logits(logits);
  EXPECT_TRUE(torch::equal(logits.detach(), before * 2)) << "the logits autograd needs were overwritten";
  auto weights = torch::randn({5, 20});
  auto grad = torch::autograd::grad({(out * weights).sum()}, {x})[0];
  auto y = before.clone().requires_grad_();
  auto reference = torch::autograd::grad({(at::log_softmax(y * 2, -1) * weights).sum()}, {y})[0];
  EXPECT_TRUE(torch::allclose(grad, reference, 1e-6, 1e-6));
}

TEST(LogSoftmaxOfLogits, RaisesBf16LogitsToFp32) {
  auto logits = torch::randn({4, 30}).to(torch::kBFloat16);
  torch::NoGradGuard no_grad;
  auto out = nmt::models::log_softmax_of_logits(logits);
  EXPECT_EQ(out.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(out, at::log_softmax(logits.to(torch::kFloat), -1)));
}

}  // namespace

// top_k_log_softmax against ATen's log_softmax followed by topk.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "nmt/search/top_k.h"

using nmt::search::top_k_log_softmax;

namespace {

/// Every returned index's log-prob equals the returned value, the values equal ATen's top k, and
/// they are sorted: robust to the order of equal entries, which topk leaves open.
void expect_matches_aten(const torch::Tensor& logits, int64_t k, double tol) {
  const auto reference = torch::log_softmax(logits.to(torch::kFloat), 1);
  const auto [ref_values, ref_ids] = reference.topk(std::min<int64_t>(k, logits.size(1)), 1);
  const auto got = top_k_log_softmax(logits, k);
  ASSERT_EQ(got.values.sizes(), ref_values.sizes());
  EXPECT_EQ(got.values.scalar_type(), torch::kFloat);
  EXPECT_EQ(got.indices.scalar_type(), torch::kLong);
  EXPECT_TRUE(torch::allclose(got.values, ref_values, 0, tol)) << (got.values - ref_values).abs().max();
  EXPECT_TRUE(torch::allclose(reference.gather(1, got.indices), got.values, 0, tol));
  if (got.values.size(1) > 1) {
    EXPECT_TRUE((got.values.slice(1, 0, -1) >= got.values.slice(1, 1)).all().item<bool>());
  }
}

}  // namespace

TEST(TopKLogSoftmax, EqualsLogSoftmaxThenTopkInFp32) {
  torch::manual_seed(1);
  for (int64_t V : {1, 7, 16, 100, 8000, 8003}) {
    const auto logits = 4 * torch::randn({37, V});
    for (int64_t k : {1, 10, 40}) expect_matches_aten(logits, k, 1e-5);
    // Distinct fp32 values: the indices themselves agree, not only the values.
    const auto k = std::min<int64_t>(10, V);
    EXPECT_TRUE(torch::equal(top_k_log_softmax(logits, 10).indices, std::get<1>(logits.topk(k, 1)))) << V;
  }
}

TEST(TopKLogSoftmax, Bf16LogitsAreReadWithoutLoss) {
  torch::manual_seed(2);
  // bf16 logits have many equal values: the check does not depend on their order.
  const auto logits = (4 * torch::randn({50, 8000})).to(torch::kBFloat16);
  for (int64_t k : {1, 10}) expect_matches_aten(logits, k, 1e-5);
}

TEST(TopKLogSoftmax, LargeOffsetsMaskedTokensAndOtherDtypes) {
  torch::manual_seed(3);
  auto logits = 3 * torch::randn({20, 1000}) + 500;  // the maximum is subtracted first
  logits.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, 4)}, -INFINITY);
  logits[5].fill_(-INFINITY);
  logits[5][17] = 2.0;  // one finite logit: log-prob 0, the others -inf
  expect_matches_aten(logits, 10, 1e-4);
  const auto row5 = top_k_log_softmax(logits, 3);
  EXPECT_EQ(row5.indices[5][0].item<int64_t>(), 17);
  EXPECT_EQ(row5.values[5][0].item<float>(), 0.0f);
  expect_matches_aten(logits.to(torch::kDouble), 10, 1e-4);  // the ATen fallback
  expect_matches_aten(torch::randn({0, 50}), 5, 0);
}

TEST(TopKLogSoftmax, TheResultDoesNotDependOnTheNumberOfThreads) {
  torch::manual_seed(4);
  const auto logits = torch::randn({300, 8000});
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = top_k_log_softmax(logits, 10);
  at::set_num_threads(2);
  const auto two = top_k_log_softmax(logits.t().contiguous().t(), 10);  // a strided view
  at::set_num_threads(before);
  EXPECT_TRUE(torch::equal(one.values, two.values));
  EXPECT_TRUE(torch::equal(one.indices, two.indices));
}

TEST(TopKLogSoftmax, RejectsBadShapesAndK) {
  EXPECT_THROW(top_k_log_softmax(torch::randn({3}), 1), c10::Error);
  EXPECT_THROW(top_k_log_softmax(torch::randn({3, 4}), 0), c10::Error);
}

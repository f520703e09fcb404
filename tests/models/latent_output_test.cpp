// The fused, chunked latent-alignment loss against the naive [B, T, S, V] computation.
#include "nmt/models/latent_output.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/models/attention.h"

namespace {

using namespace nmt::models;

constexpr int64_t B = 3, T = 4, S = 5, H = 6, E = 4, V = 11;

struct Case {
  LatentPairs pairs;
  LatentOutputLayer layer;
  at::Tensor prior_scores;  // [B, T, S], requires grad: the weights are a function of it
};

/// Random inputs with padding on both sides: sentence 1 has 3 source positions and 2 target
/// steps, sentence 2 one source position and 3 target steps.
Case make_case(bool with_pre, bool with_bias, uint64_t seed) {
  torch::manual_seed(seed);
  auto opts = torch::TensorOptions().dtype(torch::kDouble);
  Case c;
  c.pairs.from_memory = torch::randn({B, S, H}, opts).requires_grad_();
  c.pairs.from_hidden = torch::randn({B, T, H}, opts).requires_grad_();
  c.pairs.gold = torch::randint(0, V, {B, T}, torch::kLong);
  c.pairs.src_mask = torch::ones({B, S}, torch::kBool);
  c.pairs.src_mask[1].slice(0, 3).fill_(false);
  c.pairs.src_mask[2].slice(0, 1).fill_(false);
  c.pairs.tgt_mask = torch::ones({B, T}, torch::kBool);
  c.pairs.tgt_mask[1].slice(0, 2).fill_(false);
  c.pairs.tgt_mask[2].slice(0, 3).fill_(false);
  c.layer.weight = (torch::randn({V, with_pre ? E : H}, opts) * 2).requires_grad_();
  if (with_pre) c.layer.pre_output = torch::randn({E, H}, opts).requires_grad_();
  if (with_bias) c.layer.bias = torch::randn({V}, opts).requires_grad_();
  c.prior_scores = (torch::randn({B, T, S}, opts) * 2).requires_grad_();
  return c;
}

at::Tensor src_mask3(const Case& c) { return c.pairs.src_mask.unsqueeze(1).expand({B, T, S}); }

/// The naive computation: g [B, T, S] = log p(y_t | z = s) from the full [B, T, S, V] tensor.
at::Tensor naive_gold(const Case& c) {
  auto x = torch::tanh(c.pairs.from_memory.unsqueeze(1) + c.pairs.from_hidden.unsqueeze(2));  // [B, T, S, H]
  if (c.layer.pre_output.defined()) x = torch::matmul(x, c.layer.pre_output.t());
  auto logits = torch::matmul(x, c.layer.weight.t());
  if (c.layer.bias.defined()) logits = logits + c.layer.bias;
  auto lp = torch::log_softmax(logits, -1);  // [B, T, S, V]
  return lp.gather(3, c.pairs.gold.view({B, T, 1, 1}).expand({B, T, S, 1})).squeeze(3);
}

std::vector<at::Tensor> inputs_of(const Case& c) {
  std::vector<at::Tensor> v{c.pairs.from_memory, c.pairs.from_hidden, c.layer.weight, c.prior_scores};
  if (c.layer.pre_output.defined()) v.push_back(c.layer.pre_output);
  if (c.layer.bias.defined()) v.push_back(c.layer.bias);
  return v;
}

std::vector<at::Tensor> grads_of(const at::Tensor& value, const Case& c) {
  return torch::autograd::grad({value}, inputs_of(c), {}, /*retain_graph=*/true, false, /*allow_unused=*/true);
}

void expect_same(const at::Tensor& fused, const at::Tensor& naive, const Case& c, const std::string& what) {
  EXPECT_NEAR(fused.item<double>(), naive.item<double>(), 1e-5 * (1 + std::abs(naive.item<double>()))) << what;
  auto gf = grads_of(fused, c), gn = grads_of(naive, c);
  for (size_t i = 0; i < gf.size(); ++i) {
    ASSERT_TRUE(gf[i].defined() && gn[i].defined()) << what << " input " << i;
    EXPECT_TRUE(torch::allclose(gf[i], gn[i], 1e-5, 1e-7)) << what << " gradient of input " << i << "\n"
                                                          << gf[i] - gn[i];
  }
}

class LatentOutput : public ::testing::TestWithParam<std::tuple<bool, bool, int64_t>> {};

TEST_P(LatentOutput, ExpectationEqualsTheNaiveComputation) {
  auto [pre, bias, chunk] = GetParam();
  auto c = make_case(pre, bias, 1);
  auto q = masked_softmax(c.prior_scores, src_mask3(c));
  auto fused = latent_log_likelihood(c.pairs, c.layer, q, LatentReduction::Expectation, nullptr, chunk);
  auto tmask = c.pairs.tgt_mask.to(torch::kDouble);
  auto naive = ((q * naive_gold(c)).sum(2) * tmask).sum();
  expect_same(fused, naive, c, "enum");
}

TEST_P(LatentOutput, MarginalEqualsTheNaiveComputation) {
  auto [pre, bias, chunk] = GetParam();
  auto c = make_case(pre, bias, 2);
  auto log_prior = masked_log_softmax(c.prior_scores, src_mask3(c));
  at::Tensor g;
  auto fused = latent_log_likelihood(c.pairs, c.layer, log_prior, LatentReduction::Marginal, &g, chunk);
  auto tmask = c.pairs.tgt_mask.to(torch::kDouble);
  auto gold = naive_gold(c);
  auto naive = (torch::logsumexp(log_prior + gold, 2) * tmask).sum();
  expect_same(fused, naive, c, "exact");
  // The per-pair scores are returned as well: g on real pairs, 0 elsewhere.
  auto pm = c.pairs.tgt_mask.unsqueeze(2).logical_and(c.pairs.src_mask.unsqueeze(1));
  EXPECT_TRUE(torch::allclose(g, gold.detach().masked_fill(pm.logical_not(), 0.0), 1e-9, 1e-12));
}

TEST_P(LatentOutput, TopKExpectationEqualsTheNaiveComputation) {
  auto [pre, bias, chunk] = GetParam();
  auto c = make_case(pre, bias, 3);
  // q truncated to its 2 most probable positions and renormalised: zero weights elsewhere.
  auto log_q = masked_log_softmax(c.prior_scores, src_mask3(c));
  auto [top, pos] = log_q.topk(2, 2);
  auto top_q = torch::softmax(top, 2).masked_fill(top.isinf(), 0.0);  // sentence 2 has one position only
  auto q = torch::zeros_like(log_q).scatter(2, pos, top_q);
  auto fused = latent_log_likelihood(c.pairs, c.layer, q, LatentReduction::Expectation, nullptr, chunk);
  auto tmask = c.pairs.tgt_mask.to(torch::kDouble);
  auto naive = ((q * naive_gold(c)).sum(2) * tmask).sum();
  expect_same(fused, naive, c, "top-2");
}

INSTANTIATE_TEST_SUITE_P(LayersAndChunks, LatentOutput,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Values(1, 7, 4096)));

TEST(LatentOutputPadding, PaddedPairsContributeNothing) {
  auto c = make_case(true, true, 4);
  auto q = masked_softmax(c.prior_scores, src_mask3(c));
  auto before = latent_log_likelihood(c.pairs, c.layer, q, LatentReduction::Expectation);
  auto before_exact =
      latent_log_likelihood(c.pairs, c.layer, q.log(), LatentReduction::Marginal);
  // Anything at padded positions, in the inputs or the weights, changes nothing.
  torch::NoGradGuard no_grad;
  Case d = c;
  d.pairs.from_memory = c.pairs.from_memory.clone();
  d.pairs.from_hidden = c.pairs.from_hidden.clone();
  d.pairs.from_memory[1].slice(0, 3).fill_(100.0);
  d.pairs.from_hidden[2].slice(0, 3).fill_(-50.0);
  d.pairs.gold = c.pairs.gold.clone();
  d.pairs.gold[1].slice(0, 2).fill_(0);
  auto q2 = q.clone();
  q2[1].slice(0, 2).fill_(0.7);  // padded target steps
  EXPECT_DOUBLE_EQ(latent_log_likelihood(d.pairs, d.layer, q2, LatentReduction::Expectation).item<double>(),
                   before.item<double>());
  EXPECT_NEAR(latent_log_likelihood(d.pairs, d.layer, q2.log(), LatentReduction::Marginal).item<double>(),
              before_exact.item<double>(), 1e-12);
}

TEST(LatentOutputScores, MixturesAreTheNaiveMarginalDistributions) {
  auto c = make_case(true, false, 5);
  torch::NoGradGuard no_grad;
  auto prior = masked_softmax(c.prior_scores, src_mask3(c));
  auto uniform = masked_softmax(torch::zeros_like(c.prior_scores), src_mask3(c));
  auto scores = latent_scores(c.pairs, c.layer, {prior, uniform}, 5);
  auto x = torch::tanh(c.pairs.from_memory.unsqueeze(1) + c.pairs.from_hidden.unsqueeze(2));
  auto lp = torch::log_softmax(torch::matmul(torch::matmul(x, c.layer.pre_output.t()), c.layer.weight.t()), -1);
  for (int m = 0; m < 2; ++m) {  // every row, padded target steps too
    auto w = m == 0 ? prior : uniform;
    auto naive = torch::logsumexp(lp + w.log().unsqueeze(3), 2);  // [B, T, V]
    EXPECT_TRUE(torch::allclose(scores.log_mixtures[m], naive, 1e-9, 1e-12));
    EXPECT_TRUE(torch::allclose(scores.log_mixtures[m].exp().sum(2), torch::ones({B, T}, torch::kDouble)));
  }
  EXPECT_TRUE(torch::allclose(scores.gold_log_probs, naive_gold(c).masked_fill(
      c.pairs.tgt_mask.unsqueeze(2).logical_and(c.pairs.src_mask.unsqueeze(1)).logical_not(), 0.0), 1e-9, 1e-12));
}

}  // namespace

// Variational attention (Deng et al. 2018): KL, marginal, ELBO and the three training objectives.
#include "nmt/models/variational.h"

#include <cmath>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "support/model_util.h"
#include <torch/torch.h>

#include "nmt/data/batching.h"
#include "nmt/models/attention.h"
#include "nmt/models/rnn.h"
#include "nmt/train/loss.h"

namespace {

using namespace nmt::models;

torch::Tensor mask_3x5() {
  auto mask = torch::ones({3, 5}, torch::kBool);
  mask[1].slice(0, 3).fill_(false);
  mask[2].slice(0, 1).fill_(false);
  return mask;
}

TEST(Variational, KlIsNonNegativeAndZeroExactlyWhenQEqualsP) {
  torch::manual_seed(1);
  auto mask = mask_3x5();
  for (int trial = 0; trial < 50; ++trial) {
    auto log_q = masked_log_softmax(torch::randn({3, 5}) * 3, mask);
    auto log_p = masked_log_softmax(torch::randn({3, 5}) * 3, mask);
    auto kl = categorical_kl(log_q, log_p);
    EXPECT_TRUE(kl.ge(0).all().item<bool>()) << kl;
    EXPECT_TRUE(torch::isfinite(kl).all().item<bool>());
    EXPECT_TRUE(torch::allclose(categorical_kl(log_q, log_q), torch::zeros({3}), 0, 1e-7));
  }
  // Gradients are finite although masked positions hold −inf.
  auto scores = torch::randn({3, 5}, torch::requires_grad());
  auto log_q = masked_log_softmax(scores, mask);
  categorical_kl(log_q, masked_log_softmax(torch::randn({3, 5}), mask)).sum().backward();
  EXPECT_TRUE(torch::isfinite(scores.grad()).all().item<bool>());
}

TEST(Variational, MarginalAndExpectationMatchTheirDefinitions) {
  torch::manual_seed(2);
  auto mask = mask_3x5().unsqueeze(1).expand({3, 2, 5});          // B=3, T=2, S=5
  auto log_prior = masked_log_softmax(torch::randn({3, 2, 5}), mask);
  auto lp = torch::log_softmax(torch::randn({3, 2, 5, 7}), -1);    // V=7
  auto marginal = marginal_log_probs(log_prior, lp);
  auto expected = torch::log((log_prior.exp().unsqueeze(-1) * lp.exp()).sum(2));
  EXPECT_TRUE(torch::allclose(marginal, expected, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(marginal.exp().sum(-1), torch::ones({3, 2}), 1e-5, 1e-6));
  auto q = log_prior.exp();
  EXPECT_TRUE(torch::allclose(expected_log_probs(q, lp), (q.unsqueeze(-1) * lp).sum(2), 1e-5, 1e-6));
  // Jensen: E_q[log p] ≤ log E_q[p].
  EXPECT_TRUE(expected_log_probs(q, lp).le(marginal + 1e-6).all().item<bool>());
}

nmt::data::Batch toy_batch() { return nmt::testing::batch_of(nmt::testing::examples()); }

nmt::ModelConfig variational(nmt::VariationalMode mode) {
  nmt::ModelConfig c;
  c.embed_dim = 8;
  c.hidden_size = 12;
  c.encoder_layers = 1;
  c.dropout = 0.0;
  c.attention.type = nmt::AttentionType::Luong;
  c.attention.mode = nmt::AttentionMode::Variational;
  c.attention.variational_mode = mode;
  return c;
}

/// Larger weights than the initial uniform(−0.1, 0.1): the alignments and p(y | z) then differ
/// clearly between source positions, so q, the prior and the true posterior differ too.
void sharpen(RnnSeq2SeqImpl& model) {
  torch::NoGradGuard no_grad;
  for (auto& p : model.parameters()) p.mul_(15);
}

TEST(Variational, ElboIsAtMostTheExactLogLikelihoodOfTheSameBatch) {
  auto batch = toy_batch();
  for (int seed = 0; seed < 5; ++seed) {
    torch::manual_seed(seed);
    RnnSeq2SeqImpl model(variational(nmt::VariationalMode::Enum), 20, 20);
    sharpen(model);
    model.eval();
    torch::NoGradGuard no_grad;
    auto out = model.forward(batch);
    ASSERT_TRUE(out.bound_nll.defined());
    const double nll = nmt::train::sequence_loss(out.log_probs, batch.tgt_out, 0.0).nll.item<double>();
    const double elbo = -out.bound_nll.item<double>();
    EXPECT_LE(elbo, -nll + 1e-4) << "seed " << seed;
    EXPECT_LT(elbo, -nll - 1e-3) << "a random q differs from the true posterior";
    // Translation uses the prior: the eval-mode output is a proper distribution.
    EXPECT_TRUE(torch::allclose(out.log_probs.exp().sum(-1), torch::ones({3, batch.tgt_out.size(1)}), 1e-4, 1e-5));
  }
}

/// Train-mode objective Σ_t −log p̂(y_t) + aux (no label smoothing): −ELBO in enum mode.
at::Tensor train_objective(RnnSeq2SeqImpl& model, const nmt::data::Batch& batch) {
  model.train();
  auto out = model.forward(batch);
  return nmt::train::token_loss(out, batch.tgt_out, 0.0).loss + out.aux_loss;
}

TEST(Variational, EnumTrainingObjectiveIsTheNegativeElbo) {
  torch::manual_seed(11);
  RnnSeq2SeqImpl model(variational(nmt::VariationalMode::Enum), 20, 20);
  auto batch = toy_batch();
  model.eval();  // dropout is 0, so train and eval modes differ only in the objective
  at::Tensor bound;
  {
    torch::NoGradGuard no_grad;
    bound = model.forward(batch).bound_nll;
  }
  auto loss = train_objective(model, batch);
  EXPECT_NEAR(loss.item<double>(), bound.item<double>(), 1e-3 * std::abs(bound.item<double>()));
  loss.backward();
  for (auto& p : model.named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
}

nmt::ModelConfig top_k_enum(int k) {
  auto c = variational(nmt::VariationalMode::Enum);
  c.attention.variational_top_k = k;
  return c;
}

TEST(Variational, TopKEnumCoveringTheWholeSourceIsTheExactEnum) {
  auto batch = toy_batch();
  torch::manual_seed(15);
  RnnSeq2SeqImpl exact(top_k_enum(0), 20, 20);
  torch::manual_seed(15);
  RnnSeq2SeqImpl covering(top_k_enum(50), 20, 20);  // K ≥ S: every position, in another order
  sharpen(exact);
  sharpen(covering);
  const double a = train_objective(exact, batch).item<double>();
  const double b = train_objective(covering, batch).item<double>();
  EXPECT_NEAR(a, b, 1e-5 * std::abs(a));
}

TEST(Variational, TopKEnumObjectiveIsStillABoundOnTheExactLogLikelihood) {
  auto batch = toy_batch();  // source lengths 5, 2 and 1 (+ EOS): K = 3 truncates the first only
  for (int seed = 0; seed < 5; ++seed) {
    torch::manual_seed(seed);
    RnnSeq2SeqImpl model(top_k_enum(3), 20, 20);
    sharpen(model);
    double nll = 0;
    {
      model.eval();
      torch::NoGradGuard no_grad;
      nll = nmt::train::sequence_loss(model.forward(batch).log_probs, batch.tgt_out, 0.0).nll.item<double>();
    }
    auto loss = train_objective(model, batch);
    EXPECT_GE(loss.item<double>(), nll - 1e-4) << "seed " << seed;
    loss.backward();
    for (auto& p : model.named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
    }
    // Truncating q changes the objective: the first sentence has more than K positions.
    torch::manual_seed(seed);
    RnnSeq2SeqImpl exact(top_k_enum(0), 20, 20);
    sharpen(exact);
    EXPECT_GT(std::abs(train_objective(exact, batch).item<double>() - loss.item<double>()), 1e-4);
  }
}

TEST(Variational, SampleModeGivesFiniteReinforceGradientsToTheInferenceNetwork) {
  torch::manual_seed(12);
  RnnSeq2SeqImpl model(variational(nmt::VariationalMode::Sample), 20, 20);
  model.train();
  auto batch = toy_batch();
  auto out = model.forward(batch);
  ASSERT_TRUE(out.aux_loss.defined());
  (nmt::train::token_loss(out, batch.tgt_out, 0.0).loss + out.aux_loss).backward();
  bool inference_trained = false;
  for (auto& p : model.named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
    if (p.key().rfind("inference.", 0) == 0 && p.value().grad().abs().sum().item<float>() > 0) inference_trained = true;
  }
  EXPECT_TRUE(inference_trained);
}

TEST(Variational, ExactModeTrainsTheMarginalLikelihoodWithoutAnInferenceNetwork) {
  torch::manual_seed(13);
  RnnSeq2SeqImpl model(variational(nmt::VariationalMode::Exact), 20, 20);
  for (auto& p : model.named_parameters()) EXPECT_NE(p.key().rfind("inference.", 0), 0u) << p.key();
  auto batch = toy_batch();
  model.train();
  auto train_out = model.forward(batch);
  model.eval();
  torch::NoGradGuard no_grad;
  auto eval_out = model.forward(batch);
  // Training minimises the same exact negative log-likelihood that validation reports.
  EXPECT_NEAR(train_out.nll.item<double>(), eval_out.nll.item<double>(), 1e-5 * eval_out.nll.item<double>());
  EXPECT_NEAR(eval_out.nll.item<double>(),
              nmt::train::sequence_loss(eval_out.log_probs, batch.tgt_out, 0.0).nll.item<double>(), 1e-4);
  EXPECT_FALSE(eval_out.bound_nll.defined());
}

/// A sharpened enum model in eval mode.
std::shared_ptr<RnnSeq2SeqImpl> eval_model(uint64_t seed) {
  torch::manual_seed(seed);
  auto model = std::make_shared<RnnSeq2SeqImpl>(variational(nmt::VariationalMode::Enum), 20, 20);
  sharpen(*model);
  model->eval();
  return model;
}

TEST(Variational, PosteriorReadsTheWholeTargetSentence) {
  auto model_ptr = eval_model(14);
  auto& model = *model_ptr;
  torch::NoGradGuard no_grad;
  auto a = toy_batch();
  auto b = toy_batch();
  b.tgt_out[0][2] = 19;  // the last target word of sentence 0 (y_3), as output and as input
  b.tgt_in[0][3] = 19;
  auto qa = model.forward(a).posterior, qb = model.forward(b).posterior;
  // q(z_0) depends on a later target word (bidirectional), the prior α_0 does not.
  EXPECT_GT((qa[0][0] - qb[0][0]).abs().max().item<float>(), 1e-4);
  EXPECT_TRUE(torch::allclose(model.forward(a).attention[0][0], model.forward(b).attention[0][0]));
}

nmt::ModelConfig sum_and_sample(int k) {
  auto c = variational(nmt::VariationalMode::SumAndSample);
  c.attention.variational_top_k = k;
  return c;
}

/// Mean and standard error of samples.
std::pair<double, double> mean_and_se(const std::vector<double>& x) {
  double m = 0, v = 0;
  for (double a : x) m += a;
  m /= x.size();
  for (double a : x) v += (a - m) * (a - m);
  return {m, std::sqrt(v / (x.size() - 1) / x.size())};
}

TEST(Variational, SumAndSampleIsUnbiasedForTheElboAndItsGradient) {
  auto batch = toy_batch();  // source lengths 6, 3 and 2 with EOS: K = 2 leaves a rest in two
  torch::manual_seed(21);
  RnnSeq2SeqImpl exact(variational(nmt::VariationalMode::Enum), 20, 20);
  torch::manual_seed(21);
  RnnSeq2SeqImpl estimator(sum_and_sample(2), 20, 20);
  sharpen(exact);
  sharpen(estimator);
  // A fixed random direction in the inference network's bilinear weights: its gradient along
  // it is a scalar whose mean over samples must equal the exact one.
  auto weight_of = [](RnnSeq2SeqImpl& m) { return m.named_parameters()["inference.bilinear.weight"]; };
  auto direction = torch::randn_like(weight_of(exact));
  auto objective_and_slope = [&](RnnSeq2SeqImpl& m) {
    m.zero_grad();
    auto loss = train_objective(m, batch);
    loss.backward();
    return std::make_pair(loss.item<double>(), (weight_of(m).grad() * direction).sum().item<double>());
  };
  const auto [exact_value, exact_slope] = objective_and_slope(exact);
  std::vector<double> values, slopes;
  for (int i = 0; i < 800; ++i) {
    auto [v, g] = objective_and_slope(estimator);
    values.push_back(v);
    slopes.push_back(g);
  }
  auto [mv, sev] = mean_and_se(values);
  auto [mg, seg] = mean_and_se(slopes);
  EXPECT_GT(sev, 0) << "the estimate must vary: the test needs sentences longer than K";
  EXPECT_NEAR(mv, exact_value, 5 * sev + 1e-6) << "standard error " << sev;
  EXPECT_NEAR(mg, exact_slope, 5 * seg + 1e-6) << "standard error " << seg;
}

TEST(Variational, EntropyAndKlOfHandMadeDistributions) {
  auto log = [](std::vector<double> p) { return torch::tensor(p, torch::kDouble).log(); };
  // H(uniform over 4) = log 4; a point mass has entropy 0; zero entries contribute nothing.
  EXPECT_NEAR(categorical_entropy(log({0.25, 0.25, 0.25, 0.25})).item<double>(), std::log(4.0), 1e-12);
  EXPECT_NEAR(categorical_entropy(log({0, 1, 0, 0})).item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(categorical_entropy(log({0.5, 0, 0.5, 0})).item<double>(), std::log(2.0), 1e-12);
  // KL([1/2, 1/2, 0] ‖ [1/4, 1/4, 1/2]) = log 2.
  EXPECT_NEAR(categorical_kl(log({0.5, 0.5, 0}), log({0.25, 0.25, 0.5})).item<double>(), std::log(2.0), 1e-12);
  // KL(point mass at s ‖ p) = −log p_s.
  EXPECT_NEAR(categorical_kl(log({0, 0, 1}), log({0.2, 0.3, 0.5})).item<double>(), -std::log(0.5), 1e-12);
}

TEST(Variational, ValidationDiagnosticsMatchTheirDefinitions) {
  auto model_ptr = eval_model(22);
  auto& model = *model_ptr;
  torch::NoGradGuard no_grad;
  auto batch = toy_batch();
  auto out = model.forward(batch);
  auto mask = batch.tgt_out.ne(nmt::data::kPad);
  auto maskf = mask.to(torch::kFloat);
  const auto& d = out.diagnostics;
  ASSERT_TRUE(d.kl.defined() && d.q_entropy.defined() && d.prior_entropy.defined());
  auto log_q = out.posterior.log(), log_p = out.attention.log();
  EXPECT_NEAR(d.kl.item<double>(), (categorical_kl(log_q, log_p) * maskf).sum().item<double>(), 1e-4);
  EXPECT_NEAR(d.q_entropy.item<double>(), (categorical_entropy(log_q) * maskf).sum().item<double>(), 1e-4);
  EXPECT_NEAR(d.prior_entropy.item<double>(), (categorical_entropy(log_p) * maskf).sum().item<double>(), 1e-4);
  // Accuracy under the prior: the argmax of the exact marginal (the eval-mode log_probs).
  auto hits = out.log_probs.argmax(2).eq(batch.tgt_out).logical_and(mask).sum().item<double>();
  EXPECT_EQ(d.correct_prior.item<double>(), hits);
  EXPECT_LE(d.correct_q.item<double>(), mask.sum().item<double>());
  // The ELBO gap is the KL to the true posterior: bound_nll − nll ≥ 0.
  EXPECT_GE(out.bound_nll.item<double>(), out.nll.item<double>() - 1e-4);
}

}  // namespace

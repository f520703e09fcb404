// Variational attention (Deng et al. 2018): KL, marginal, ELBO and the three training objectives.
#include "nmt/models/variational.h"

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
  c.attention = nmt::AttentionType::Luong;
  c.attention_mode = nmt::AttentionMode::Variational;
  c.variational_mode = mode;
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
  model.train();
  auto out = model.forward(batch);
  auto loss = nmt::train::sequence_loss(out.log_probs, batch.tgt_out, 0.0).loss + out.aux_loss;
  EXPECT_NEAR(loss.item<double>(), bound.item<double>(), 1e-3 * std::abs(bound.item<double>()));
  loss.backward();
  for (auto& p : model.named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
}

/// Train-mode objective Σ_t −log p̂(y_t) + aux (no label smoothing): −ELBO in enum mode.
at::Tensor train_objective(RnnSeq2SeqImpl& model, const nmt::data::Batch& batch) {
  model.train();
  auto out = model.forward(batch);
  return nmt::train::sequence_loss(out.log_probs, batch.tgt_out, 0.0).loss + out.aux_loss;
}

nmt::ModelConfig top_k_enum(int k) {
  auto c = variational(nmt::VariationalMode::Enum);
  c.variational_top_k = k;
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
  (nmt::train::sequence_loss(out.log_probs, batch.tgt_out, 0.0).loss + out.aux_loss).backward();
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
  EXPECT_TRUE(torch::allclose(train_out.log_probs, eval_out.log_probs, 1e-5, 1e-6));
  EXPECT_FALSE(eval_out.bound_nll.defined());
}

TEST(Variational, PosteriorReadsTheWholeTargetSentence) {
  torch::manual_seed(14);
  RnnSeq2SeqImpl model(variational(nmt::VariationalMode::Enum), 20, 20);
  sharpen(model);
  model.eval();
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

}  // namespace

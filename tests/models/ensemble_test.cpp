// The ensemble (models/ensemble.h): a model with itself translates as the model alone, its step
// is the renormalised weighted sum of its members' log-probs, and `select` reorders every
// member's state.
#include "nmt/models/ensemble.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/search/search.h"
#include "support/model_util.h"

namespace {

using nmt::models::EnsembleImpl;
using nmt::models::Seq2Seq;

constexpr int64_t kVocab = 20;

Seq2Seq make(nmt::ModelType type, uint64_t seed, int64_t tgt_vocab = kVocab) {
  const auto c = nmt::testing::tiny_model_config(type);
  torch::manual_seed(seed);
  auto m = nmt::models::make_model(c, kVocab, tgt_vocab);
  m->eval();
  return m;
}

at::Tensor source() { return nmt::testing::batch_of(nmt::testing::examples()).src; }

class EnsembleOfItself : public ::testing::TestWithParam<nmt::ModelType> {};

TEST_P(EnsembleOfItself, TranslatesAsTheModelAlone) {
  auto model = make(GetParam(), 3);
  nmt::SearchConfig search;
  search.beam_size = 3;
  search.max_len_b = 6;
  const auto alone = nmt::search::decode(*model, source(), search, /*keep_attention=*/true);
  for (std::vector<double> weights : {std::vector<double>{}, std::vector<double>{0.3, 0.7}}) {
    auto twice = std::make_shared<EnsembleImpl>(std::vector<Seq2Seq>{model, model}, weights);
    const auto both = nmt::search::decode(*twice, source(), search, /*keep_attention=*/true);
    ASSERT_EQ(both.size(), alone.size());
    for (size_t i = 0; i < alone.size(); ++i) {
      EXPECT_EQ(both[i].tokens, alone[i].tokens) << "sentence " << i;
      EXPECT_NEAR(both[i].log_prob, alone[i].log_prob, 1e-4) << "sentence " << i;
      EXPECT_NEAR(both[i].score, alone[i].score, 1e-4) << "sentence " << i;
      ASSERT_TRUE(both[i].attention.defined());
      EXPECT_TRUE(torch::allclose(both[i].attention, alone[i].attention, 1e-5, 1e-6)) << "sentence " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, EnsembleOfItself,
                         ::testing::Values(nmt::ModelType::Rnn, nmt::ModelType::Transformer,
                                           nmt::ModelType::ConvS2S));

TEST(Ensemble, StepCombinesTheMembersAndSelectReordersEveryState) {
  torch::NoGradGuard no_grad;
  auto a = make(nmt::ModelType::Rnn, 1), b = make(nmt::ModelType::Transformer, 2);
  EnsembleImpl ens({a, b}, {1.0, 3.0});
  const auto src = source();
  auto state = ens.start(src);
  auto sa = a->start(src), sb = b->start(src);
  auto expect_combined = [&](const at::Tensor& prev) {
    auto out = ens.step(prev, *state);
    auto la = log_probs_of(a->step(prev, *sa)), lb = log_probs_of(b->step(prev, *sb));
    auto expected = torch::log_softmax(0.25 * la + 0.75 * lb, -1);
    EXPECT_TRUE(torch::allclose(out.log_probs, expected, 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(out.log_probs.exp().sum(-1), torch::ones({prev.size(0)}), 1e-5, 1e-6));
  };
  expect_combined(torch::full({3}, nmt::data::kBos, torch::kLong));
  const auto rows = torch::tensor({2, 0, 0, 1}, torch::kLong);
  state = state->select(rows);
  sa = sa->select(rows);
  sb = sb->select(rows);
  expect_combined(torch::tensor({4, 5, 6, 7}, torch::kLong));
  expect_combined(torch::tensor({8, 9, 10, 11}, torch::kLong));
}

TEST(Ensemble, BadWeightsAndVocabulariesAreErrors) {
  auto a = make(nmt::ModelType::Rnn, 1);
  EXPECT_THROW(EnsembleImpl({a, a}, {1.0}), std::invalid_argument);
  EXPECT_THROW(EnsembleImpl({a, a}, {1.0, 0.0}), std::invalid_argument);
  EXPECT_THROW(EnsembleImpl({}), std::invalid_argument);
  EnsembleImpl mixed({a, make(nmt::ModelType::Rnn, 1, kVocab + 1)});
  auto state = mixed.start(source());
  EXPECT_THROW(mixed.step(torch::full({3}, nmt::data::kBos, torch::kLong), *state), std::invalid_argument);
}

}  // namespace

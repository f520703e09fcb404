// Properties of the Transformer (Vaswani et al. 2017), checked over its variants: pre-/post-norm,
// sinusoidal/learned positions, tied/shared/separate embeddings.
#include "nmt/models/transformer.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "support/model_properties.h"

namespace {

struct Variant {
  const char* name;
  bool pre_norm;
  bool learned_positions;
  bool tie;
  bool share;  ///< needs src vocabulary == tgt vocabulary
};

const Variant kVariants[] = {
    {"pre_norm_sinusoidal_tied", true, false, true, false},
    {"post_norm_sinusoidal_untied", false, false, false, false},
    {"pre_norm_learned_shared", true, true, true, true},
    {"post_norm_learned_tied", false, true, true, false},
};

constexpr int64_t kTgtVocab = 25;

nmt::ModelConfig small_config(const Variant& v) {
  nmt::ModelConfig c;
  c.type = nmt::ModelType::Transformer;
  c.embed_dim = 16;
  c.heads = 4;
  c.ff_dim = 32;
  c.encoder_layers = 2;
  c.decoder_layers = 2;
  c.dropout = 0.2;  // dropouts must not matter in eval mode
  c.attention_dropout = 0.1;
  c.activation_dropout = 0.1;
  c.pre_norm = v.pre_norm;
  c.learned_positions = v.learned_positions;
  c.tie_embeddings = v.tie;
  c.share_embeddings = v.share;
  return c;
}

using nmt::testing::batch_of;
using nmt::testing::close;
using nmt::testing::examples;

class TransformerVariants : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    torch::manual_seed(7);
    const int64_t src_vocab = GetParam().share ? kTgtVocab : 30;
    model_ = std::make_shared<nmt::models::TransformerSeq2SeqImpl>(small_config(GetParam()), src_vocab, kTgtVocab);
    model_->eval();
  }
  std::shared_ptr<nmt::models::TransformerSeq2SeqImpl> model_;
};

TEST_P(TransformerVariants, Bf16AgreesWithFp32AndStepwiseWithForward) {
  nmt::testing::expect_bf16_agrees_with_fp32(*model_);
}

TEST_P(TransformerVariants, StepwiseDecodingWithCacheEqualsTeacherForcedForward) {
  auto state = nmt::testing::expect_stepwise_decoding_equals_forward(*model_, kTgtVocab);
  // The cache grew by one position per step and was never recomputed from scratch.
  const int64_t T = batch_of(examples()).tgt_in.size(1);
  auto& s = dynamic_cast<nmt::models::TransformerDecoderState&>(*state);
  EXPECT_EQ(s.position, T);
  for (auto& layer : s.layers) EXPECT_EQ(layer.self_k.size(2), T);
}

TEST_P(TransformerVariants, StepwiseDecodingOfFortyPositionsWithReorderedStatesEqualsForward) {
  // A long target, and every 5th step the rows trade places and trade back (reorder copies
  // and frees the caches): each step still equals the teacher-forced forward pass.
  torch::NoGradGuard no_grad;
  constexpr int64_t T = 40;
  std::vector<nmt::data::Example> ex(2);
  for (int64_t i = 0; i < T - 1; ++i) ex[0].tgt.push_back(4 + (i * 7) % (kTgtVocab - 4));
  for (int64_t i = 0; i < T / 2; ++i) ex[1].tgt.push_back(4 + (i * 3) % (kTgtVocab - 4));
  ex[0].src = {5, 6, 7, 8};
  ex[1].src = {9, 10};
  ex[1].index = 1;
  auto batch = batch_of(ex);
  ASSERT_EQ(batch.tgt_in.size(1), T);
  auto full = model_->forward(batch);
  std::unique_ptr<nmt::models::DecoderState> state = model_->start(batch.src);
  const auto swap = torch::tensor({1, 0}, torch::kLong);
  for (int64_t t = 0; t < T; ++t) {
    if (t % 5 == 4) state = state->reorder(swap)->reorder(swap);
    auto out = model_->step(batch.tgt_in.select(1, t), *state);
    EXPECT_TRUE(close(log_probs_of(out), full.log_probs.select(1, t))) << "step " << t;
  }
}

TEST_P(TransformerVariants, FutureTokensCannotChangeEarlierPositions) {
  nmt::testing::expect_future_tokens_cannot_change_earlier_positions(*model_);
}

TEST_P(TransformerVariants, PaddingDoesNotChangeOutputs) { nmt::testing::expect_padding_does_not_change_outputs(*model_); }

TEST_P(TransformerVariants, AttentionSumsToOneAndIgnoresPadding) {
  nmt::testing::expect_attention_sums_to_one_and_ignores_padding(*model_);
}

TEST_P(TransformerVariants, StateSelectReordersEveryCache) { nmt::testing::expect_select_reorders_every_cache(*model_); }

TEST_P(TransformerVariants, BeamSizeOneEqualsGreedy) { nmt::testing::expect_beam_size_one_equals_greedy(*model_); }

TEST_P(TransformerVariants, GradientsReachEveryParameter) {
  nmt::testing::expect_gradients_reach_every_parameter(*model_);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, TransformerVariants, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(TransformerParts, MultiHeadAttentionEqualsOneHeadAtATime) {
  torch::manual_seed(3);
  const int64_t B = 2, T = 3, S = 5, d = 8, H = 2, dk = d / H;
  nmt::models::MultiHeadAttention mha(d, H, 0.0);
  auto x = torch::randn({B, T, d}), memory = torch::randn({B, S, d});
  auto keep = torch::tensor({{true, true, true, true, true}, {true, true, true, false, false}});
  auto q = mha->project_q(x);
  auto kv = mha->project_kv(memory);
  at::Tensor weights;
  auto out = mha->attend(q, kv[0], kv[1], nmt::models::padding_bias(keep, torch::kFloat), &weights);
  // Reference: the paper's formula, head by head, from the raw projection matrices.
  auto params = mha->named_parameters();
  auto W = params["in_proj.weight"], b = params["in_proj.bias"];
  std::vector<at::Tensor> heads;
  for (int64_t h = 0; h < H; ++h) {
    auto rows = [&](int64_t part) { return std::make_pair(W.narrow(0, part * d + h * dk, dk), b.narrow(0, part * d + h * dk, dk)); };
    auto [wq, bq] = rows(0);
    auto [wk, bk] = rows(1);
    auto [wv, bv] = rows(2);
    auto scores = torch::matmul(torch::linear(x, wq, bq), torch::linear(memory, wk, bk).transpose(1, 2)) / std::sqrt(double(dk));
    scores = scores.masked_fill(keep.logical_not().unsqueeze(1), -INFINITY);
    auto p = torch::softmax(scores, -1);
    EXPECT_TRUE(close(p, weights.select(1, h))) << "head " << h;
    heads.push_back(torch::matmul(p, torch::linear(memory, wv, bv)));
  }
  auto expected = torch::linear(torch::cat(heads, -1), params["out_proj.weight"], params["out_proj.bias"]);
  EXPECT_TRUE(close(out, expected));
}

TEST(TransformerParts, CausalBiasHidesOnlyFuturePositions) {
  auto bias = nmt::models::causal_bias(2, 3, torch::TensorOptions(torch::kFloat));  // queries at positions 3, 4
  ASSERT_EQ(bias.sizes(), (std::vector<int64_t>{2, 5}));
  auto expected = torch::tensor({{0.f, 0.f, 0.f, 0.f, -INFINITY}, {0.f, 0.f, 0.f, 0.f, 0.f}});
  EXPECT_TRUE(torch::equal(bias, expected));
}

TEST(TransformerParts, SinusoidalPositionsFollowThePaper) {
  const int64_t d = 6;
  auto pe = nmt::models::sinusoidal_positions(3, 2, d, torch::TensorOptions(torch::kDouble));  // positions 3, 4
  ASSERT_EQ(pe.sizes(), (std::vector<int64_t>{2, d}));
  for (int64_t p = 0; p < 2; ++p)
    for (int64_t i = 0; i < d; ++i) {
      const double angle = (3 + p) / std::pow(10000.0, double(i - i % 2) / d);
      EXPECT_NEAR(pe[p][i].item<double>(), i % 2 == 0 ? std::sin(angle) : std::cos(angle), 1e-12);
    }
}

TEST(TransformerParts, SharedEmbeddingsNeedOneVocabulary) {
  auto c = small_config(kVariants[2]);
  EXPECT_THROW(nmt::models::TransformerSeq2SeqImpl(c, 30, 25), nmt::ConfigError);
  c.heads = 3;  // 16 is not divisible by 3
  c.share_embeddings = false;
  EXPECT_THROW(nmt::models::TransformerSeq2SeqImpl(c, 30, 25), nmt::ConfigError);
}

TEST(TransformerParts, FactoryBuildsTheTransformer) {
  auto model = nmt::models::make_model(small_config(kVariants[0]), 30, 25);
  EXPECT_NE(dynamic_cast<nmt::models::TransformerSeq2SeqImpl*>(model.get()), nullptr);
}

}  // namespace

// Properties of the Transformer (Vaswani et al. 2017), checked over its variants: pre-/post-norm,
// sinusoidal/learned positions, tied/shared/separate embeddings.
#include "nmt/models/transformer.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/data/batching.h"
#include "support/model_util.h"
#include "nmt/search/search.h"

namespace {

using nmt::data::Example;
using nmt::data::kBos;
using nmt::data::kPad;

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
using nmt::testing::examples;

bool close(const at::Tensor& a, const at::Tensor& b) { return torch::allclose(a, b, 1e-5, 1e-5); }

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

TEST_P(TransformerVariants, StepwiseDecodingWithCacheEqualsTeacherForcedForward) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto full = model_->forward(batch);
  ASSERT_EQ(full.log_probs.sizes(), (std::vector<int64_t>{3, batch.tgt_in.size(1), kTgtVocab}));
  auto state = model_->start(batch.src);
  for (int64_t t = 0; t < batch.tgt_in.size(1); ++t) {
    auto out = model_->step(batch.tgt_in.select(1, t), *state);
    EXPECT_TRUE(close(out.log_probs, full.log_probs.select(1, t))) << "step " << t;
    EXPECT_TRUE(close(out.attention, full.attention.select(1, t))) << "step " << t;
  }
  // The cache grew by one position per step and was never recomputed from scratch.
  auto& s = dynamic_cast<nmt::models::TransformerDecoderState&>(*state);
  EXPECT_EQ(s.position, batch.tgt_in.size(1));
  for (auto& layer : s.layers) EXPECT_EQ(layer.self_k.size(2), batch.tgt_in.size(1));
}

TEST_P(TransformerVariants, FutureTokensCannotChangeEarlierPositions) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto before = model_->forward(batch).log_probs;
  const int64_t t = 2;
  batch.tgt_in.select(1, t).fill_(20);  // a different token at position t in every row
  auto after = model_->forward(batch).log_probs;
  EXPECT_TRUE(close(before.slice(1, 0, t), after.slice(1, 0, t)));
  // ... while position t itself does see the change (the test can fail).
  EXPECT_FALSE(close(before.select(1, t), after.select(1, t)));
}

TEST_P(TransformerVariants, PaddingDoesNotChangeOutputs) {
  torch::NoGradGuard no_grad;
  auto ex = examples();
  auto batch = batch_of(ex);
  auto together = model_->forward(batch);
  // Each sentence alone (no padding at all) gives the same log-probs and attention.
  for (size_t i = 0; i < ex.size(); ++i) {
    auto alone = model_->forward(batch_of({ex[i]}));
    const int64_t T = alone.log_probs.size(1), S = alone.attention.size(2);
    EXPECT_TRUE(close(alone.log_probs[0], together.log_probs[i].slice(0, 0, T))) << "sentence " << i;
    EXPECT_TRUE(close(alone.attention[0], together.attention[i].slice(0, 0, T).slice(1, 0, S))) << "sentence " << i;
  }
  // Extra padding columns on the source change nothing either.
  auto padded = batch;
  padded.src = torch::cat({batch.src, torch::full({batch.size(), 4}, kPad, torch::kLong)}, 1);
  auto wider = model_->forward(padded);
  EXPECT_TRUE(close(wider.log_probs, together.log_probs));
  EXPECT_TRUE(close(wider.attention.slice(2, 0, batch.src.size(1)), together.attention));
}

TEST_P(TransformerVariants, AttentionSumsToOneAndIgnoresPadding) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto att = model_->forward(batch).attention;  // [B, T, S]
  ASSERT_EQ(att.sizes(), (std::vector<int64_t>{3, batch.tgt_in.size(1), batch.src.size(1)}));
  EXPECT_TRUE(close(att.sum(-1), torch::ones({att.size(0), att.size(1)})));
  auto pad = batch.src.eq(kPad).unsqueeze(1).expand_as(att);
  EXPECT_EQ(att.masked_select(pad).abs().max().item<float>(), 0.0f);
}

TEST_P(TransformerVariants, StateSelectReordersEveryCache) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto state = model_->start(batch.src);
  model_->step(torch::full({3}, kBos, torch::kLong), *state);
  model_->step(torch::tensor({10, 13, 18}, torch::kLong), *state);  // the self-attention caches now differ per row
  const auto rows = torch::tensor({2, 0, 1, 1}, torch::kLong);
  auto reordered = state->select(rows);
  auto next = torch::tensor({11, 14, 4}, torch::kLong);
  auto a = model_->step(next, *state);
  auto b = model_->step(next.index_select(0, rows), *reordered);
  EXPECT_TRUE(close(b.log_probs, a.log_probs.index_select(0, rows)));
  EXPECT_TRUE(close(b.attention, a.attention.index_select(0, rows)));
}

TEST_P(TransformerVariants, BeamSizeOneEqualsGreedy) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  nmt::search::SearchOptions o;
  o.beam_size = 1;
  o.length_penalty = 0.0;
  auto greedy = nmt::search::greedy_search(*model_, batch.src, o);
  auto beam = nmt::search::beam_search(*model_, batch.src, o);
  ASSERT_EQ(greedy.size(), beam.size());
  for (size_t i = 0; i < greedy.size(); ++i) {
    EXPECT_EQ(greedy[i].tokens, beam[i].tokens) << "sentence " << i;
    EXPECT_NEAR(greedy[i].log_prob, beam[i].log_prob, 1e-4) << "sentence " << i;
  }
}

TEST_P(TransformerVariants, GradientsReachEveryParameter) {
  model_->train();
  auto out = model_->forward(batch_of(examples()));
  out.log_probs.sum().backward();
  for (auto& p : model_->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
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

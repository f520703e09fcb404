// Properties of the Transformer (Vaswani et al. 2017), checked over its variants: pre-/post-norm,
// sinusoidal/learned positions, tied/shared/separate embeddings.
#include "nmt/models/transformer.h"

#include "nmt/precision.h"

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
  for (auto& layer : s.layers) EXPECT_EQ(layer.keys().size(2), T);
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

TEST_P(TransformerVariants, AReorderedStateTakesTheNextPositionInPlace) {
  // reorder() leaves one position of room in the self-attention caches: the next step writes
  // its keys and values there (the same storage) instead of concatenating; a step with no room
  // concatenates. Every step equals the teacher-forced forward pass.
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  ASSERT_GE(batch.tgt_in.size(1), 3);
  auto full = model_->forward(batch);
  auto state = model_->start(batch.src);
  auto out = model_->step(batch.tgt_in.select(1, 0), *state);
  const int64_t B = batch.src.size(0);
  state = state->reorder(torch::arange(B));
  auto& s = dynamic_cast<nmt::models::TransformerDecoderState&>(*state);
  std::vector<const void*> storage;
  for (auto& layer : s.layers) {
    EXPECT_EQ(layer.self_length, 1);
    EXPECT_EQ(layer.self_k.size(2), 2);
    storage.push_back(layer.self_k.data_ptr());
  }
  out = model_->step(batch.tgt_in.select(1, 1), *state);
  EXPECT_TRUE(close(log_probs_of(out), full.log_probs.select(1, 1)));
  for (size_t i = 0; i < s.layers.size(); ++i) {
    EXPECT_EQ(s.layers[i].self_length, 2);
    EXPECT_EQ(s.layers[i].self_k.data_ptr(), storage[i]) << "layer " << i;
  }
  out = model_->step(batch.tgt_in.select(1, 2), *state);  // no room left
  EXPECT_TRUE(close(log_probs_of(out), full.log_probs.select(1, 2)));
  for (size_t i = 0; i < s.layers.size(); ++i) {
    EXPECT_EQ(s.layers[i].keys().size(2), 3);
    EXPECT_NE(s.layers[i].self_k.data_ptr(), storage[i]) << "layer " << i;
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

/// Gradients of Σ r·MHA(x, memory) with respect to x, memory and the projection weights, from
/// the module (its head split and its backward) and from the paper's formula head by head.
struct AttentionGradients {
  at::Tensor x, memory, in_w, in_b, out_w;
};

AttentionGradients attention_gradients(bool reference, bool bf16) {
  torch::manual_seed(5);
  const int64_t B = 3, T = 4, S = 6, d = 16, H = 4, dk = d / H;
  nmt::models::MultiHeadAttention mha(d, H, 0.0);
  auto x = torch::randn({B, T, d}).requires_grad_(), memory = torch::randn({B, S, d}).requires_grad_();
  auto r = torch::randn({B, T, d});
  auto params = mha->named_parameters();
  auto W = params["in_proj.weight"], b = params["in_proj.bias"];
  at::Tensor out;
  {
    nmt::AutocastGuard autocast(bf16 ? nmt::Precision::kBf16 : nmt::Precision::kFp32, torch::kCPU);
    if (!reference) {
      auto self = mha->project_qkv(x);  // self-attention of x, then x attending to memory
      auto h = mha->attend(self[0], self[1], self[2], at::Tensor());
      auto kv = mha->project_kv(memory);
      out = mha->attend(mha->project_q(h), kv[0], kv[1], at::Tensor());
    } else {
      auto attend = [&](const at::Tensor& queries, const at::Tensor& keys) {
        std::vector<at::Tensor> heads;
        for (int64_t i = 0; i < H; ++i) {
          auto proj = [&](const at::Tensor& in, int64_t part) {
            return torch::linear(in, W.narrow(0, part * d + i * dk, dk), b.narrow(0, part * d + i * dk, dk));
          };
          auto scores = torch::matmul(proj(queries, 0), proj(keys, 1).transpose(1, 2)).to(torch::kFloat) / std::sqrt(double(dk));
          heads.push_back(torch::matmul(torch::softmax(scores, -1), proj(keys, 2)));
        }
        return torch::linear(torch::cat(heads, -1), params["out_proj.weight"], params["out_proj.bias"]);
      };
      out = attend(attend(x, x), memory);
    }
  }
  (out.to(torch::kFloat) * r).sum().backward();
  return {x.grad(), memory.grad(), W.grad(), b.grad(), params["out_proj.weight"].grad()};
}

double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

TEST(TransformerParts, MultiHeadAttentionGradientsEqualThoseOfOneHeadAtATime) {
  // fp32: the heads are views of the projections; bf16 autocast: contiguous copies made in one pass.
  // Either way the backward pass of the head split gathers q, k and v's gradients in one tensor.
  for (bool bf16 : {false, true}) {
    const auto got = attention_gradients(false, bf16), expected = attention_gradients(true, false);
    const double tolerance = bf16 ? 0.03 : 1e-5;  // bf16: relative to the fp32 gradients
    EXPECT_LT(relative_error(got.x, expected.x), tolerance) << "bf16 " << bf16;
    EXPECT_LT(relative_error(got.memory, expected.memory), tolerance) << "bf16 " << bf16;
    EXPECT_LT(relative_error(got.in_w, expected.in_w), tolerance) << "bf16 " << bf16;
    EXPECT_LT(relative_error(got.in_b, expected.in_b), tolerance) << "bf16 " << bf16;
    EXPECT_LT(relative_error(got.out_w, expected.out_w), tolerance) << "bf16 " << bf16;
  }
}

TEST(TransformerParts, HeadsWithoutAGradientGetZerosInTheProjectionsGradient) {
  for (bool bf16 : {false, true}) {
    torch::manual_seed(6);
    nmt::models::MultiHeadAttention mha(8, 2, 0.0);
    auto x = torch::randn({2, 3, 8}).requires_grad_();
    {
      nmt::AutocastGuard autocast(bf16 ? nmt::Precision::kBf16 : nmt::Precision::kFp32, torch::kCPU);
      auto qkv = mha->project_qkv(x);
      (qkv[0].to(torch::kFloat).sum() + 2 * qkv[1].to(torch::kFloat).sum()).backward();  // v unused
    }
    auto W = mha->named_parameters()["in_proj.weight"];
    // d Σq / dW_q[i, j] = Σ over (b, t) of x[b, t, j] for every row i; k counts twice.
    const auto column_sums = x.detach().sum(at::IntArrayRef{0, 1}).expand({8, 8});
    const double tolerance = bf16 ? 0.05 : 1e-5;
    EXPECT_TRUE(torch::allclose(W.grad().narrow(0, 0, 8), column_sums, tolerance, tolerance)) << "bf16 " << bf16;
    EXPECT_TRUE(torch::allclose(W.grad().narrow(0, 8, 8), 2 * column_sums, tolerance, tolerance)) << "bf16 " << bf16;
    EXPECT_TRUE(torch::equal(W.grad().narrow(0, 16, 8), torch::zeros({8, 8}))) << "bf16 " << bf16;
  }
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

// Properties of ConvS2S (Gehring et al. 2017), checked over its variants: kernel widths 1, 2 (the
// encoder's padding is then uneven), 3 and 5; tied, untied and shared embeddings.
#include "nmt/models/convs2s.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "support/model_properties.h"

namespace {

using nmt::testing::batch_of;
using nmt::testing::close;
using nmt::testing::examples;

struct Variant {
  const char* name;
  int kernel_width;
  bool tie;
  bool share;  ///< needs src vocabulary == tgt vocabulary
};

const Variant kVariants[] = {
    {"k3_tied", 3, true, false},
    {"k2_untied", 2, false, false},
    {"k5_shared", 5, true, true},
    {"k1_untied", 1, false, false},
};

constexpr int64_t kTgtVocab = 25;

nmt::ModelConfig small_config(const Variant& v) {
  nmt::ModelConfig c;
  c.type = nmt::ModelType::ConvS2S;
  c.embed_dim = 16;
  c.hidden_size = 24;  // unlike embed_dim, so every projection is exercised
  c.encoder_layers = 2;
  c.decoder_layers = 3;
  c.kernel_width = v.kernel_width;
  c.dropout = 0.2;  // dropout must not matter in eval mode
  c.tie_embeddings = v.tie;
  c.share_embeddings = v.share;
  return c;
}

class ConvS2SVariants : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    torch::manual_seed(7);
    const int64_t src_vocab = GetParam().share ? kTgtVocab : 30;
    model_ = std::make_shared<nmt::models::ConvS2SSeq2SeqImpl>(small_config(GetParam()), src_vocab, kTgtVocab);
    model_->eval();
  }
  std::shared_ptr<nmt::models::ConvS2SSeq2SeqImpl> model_;
};

TEST_P(ConvS2SVariants, Bf16AgreesWithFp32AndStepwiseWithForward) {
  nmt::testing::expect_bf16_agrees_with_fp32(*model_);
}

TEST_P(ConvS2SVariants, StepwiseDecodingWithCachesEqualsTeacherForcedForward) {
  auto state = nmt::testing::expect_stepwise_decoding_equals_forward(*model_, kTgtVocab);
  // One position per layer and step: each cache still holds just the last k − 1 convolution
  // inputs, which are the last k − 1 decoder inputs of that layer.
  auto& s = dynamic_cast<nmt::models::ConvS2SDecoderState&>(*state);
  EXPECT_EQ(s.position, batch_of(examples()).tgt_in.size(1));
  ASSERT_EQ(s.contexts.size(), 3u);
  for (auto& context : s.contexts)
    EXPECT_EQ(context.sizes(), (std::vector<int64_t>{3, GetParam().kernel_width - 1, 24}));
}

TEST_P(ConvS2SVariants, FutureTokensCannotChangeEarlierPositions) {
  nmt::testing::expect_future_tokens_cannot_change_earlier_positions(*model_);
}

TEST_P(ConvS2SVariants, PaddingDoesNotChangeOutputs) { nmt::testing::expect_padding_does_not_change_outputs(*model_); }

TEST_P(ConvS2SVariants, AttentionSumsToOneAndIgnoresPadding) {
  nmt::testing::expect_attention_sums_to_one_and_ignores_padding(*model_);
}

TEST_P(ConvS2SVariants, StateSelectReordersEveryCache) { nmt::testing::expect_select_reorders_every_cache(*model_); }

TEST_P(ConvS2SVariants, BeamSizeOneEqualsGreedy) { nmt::testing::expect_beam_size_one_equals_greedy(*model_); }

TEST_P(ConvS2SVariants, GradientsReachEveryParameter) { nmt::testing::expect_gradients_reach_every_parameter(*model_); }

INSTANTIATE_TEST_SUITE_P(AllVariants, ConvS2SVariants, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- the parts, against the paper's formulas -------------------------------------------------

TEST(ConvS2SParts, WeightNormSeparatesLengthFromDirection) {
  torch::manual_seed(3);
  nmt::models::WeightNormLinear layer(6, 4, 0.5);
  auto params = layer->named_parameters();
  auto v = params["v"], g = params["g"];
  // W = g · v / ‖v‖ with g = ‖v‖ at the start, so W = v.
  EXPECT_TRUE(close(layer->weight(), v));
  auto x = torch::randn({3, 6});
  auto y = layer->forward(x);
  torch::NoGradGuard no_grad;
  v.mul_(3.0);  // the direction alone: the length of each row stays g
  EXPECT_TRUE(close(layer->forward(x), y));
  g.mul_(2.0);  // twice the length: twice the output (the bias is zero)
  EXPECT_TRUE(close(layer->forward(x), 2 * y));
  EXPECT_TRUE(close(layer->weight().norm(2, {1}), g));
}

TEST(ConvS2SParts, ConvGluIsAConvolutionWithAGatedLinearUnit) {
  torch::manual_seed(4);
  const int64_t B = 2, T = 5, H = 3, k = 3;
  nmt::models::ConvGlu conv(H, k, 0.3);
  auto padded = torch::randn({B, T + k - 1, H});
  auto out = conv->forward(padded);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{B, T, H}));
  // Reference: LibTorch's own convolution over [B, H, time] with the weight as [2H, H, k].
  auto params = conv->named_parameters();
  auto v = params["conv.v"], g = params["conv.g"];
  auto weight = (v * (g / v.norm(2, {1})).unsqueeze(1)).view({2 * H, H, k});
  auto ab = torch::conv1d(padded.transpose(1, 2), weight, params["conv.bias"]).transpose(1, 2);  // [B, T, 2H]
  auto expected = ab.narrow(2, 0, H) * torch::sigmoid(ab.narrow(2, H, H));
  EXPECT_TRUE(close(out, expected));
}

TEST(ConvS2SParts, DecoderLayerFollowsThePaper) {
  torch::manual_seed(5);
  nmt::ModelConfig c = small_config(kVariants[1]);  // k = 2
  const int64_t B = 2, T = 3, S = 4, E = c.embed_dim, H = c.hidden_size, k = c.kernel_width;
  nmt::models::ConvS2SDecoderLayer layer(c);
  layer->eval();
  auto x = torch::randn({B, T, H}), g = torch::randn({B, T, E});
  nmt::models::ConvS2SMemory memory;
  memory.keys = torch::randn({B, S, E});
  memory.values = torch::randn({B, S, E});
  auto keep = torch::tensor({{true, true, true, true}, {true, true, false, false}});
  memory.src_bias = torch::zeros({B, 1, S}).masked_fill(keep.logical_not().unsqueeze(1), -INFINITY);
  memory.src_scale = torch::tensor({2.0f, std::sqrt(2.0f)}).view({B, 1, 1});  // √m, m = 4 and 2
  auto context = torch::zeros({B, k - 1, H});
  at::Tensor weights;
  auto out = layer->forward(x, context, g, memory, &weights);
  // The same from the formulas, position by position, from the raw parameters.
  auto p = layer->named_parameters();
  auto wn = [&](const std::string& name) {
    auto v = p[name + ".v"];
    return std::make_pair(v * (p[name + ".g"] / v.norm(2, {1})).unsqueeze(1), p[name + ".bias"]);
  };
  auto [wc, bc] = wn("conv.conv");
  auto [wd, bd] = wn("attn_in");
  auto [wo, bo] = wn("attn_out");
  auto w3 = wc.view({2 * H, H, k});
  for (int64_t b = 0; b < B; ++b) {
    const int64_t m = b == 0 ? 4 : 2;
    for (int64_t t = 0; t < T; ++t) {
      auto ab = bc.clone();
      for (int64_t j = 0; j < k; ++j) {  // tap j reads position t − (k − 1) + j; zeros before 0
        const int64_t src_t = t - (k - 1) + j;
        if (src_t >= 0) ab = ab + torch::mv(w3.select(2, j), x[b][src_t]);
      }
      auto h = ab.narrow(0, 0, H) * torch::sigmoid(ab.narrow(0, H, H));
      auto d = (torch::mv(wd, h) + bd + g[b][t]) * std::sqrt(0.5);
      auto a = torch::softmax(torch::mv(memory.keys[b].narrow(0, 0, m), d), 0);
      EXPECT_TRUE(close(weights[b][t].narrow(0, 0, m), a)) << "row " << b << " position " << t;
      auto ci = std::sqrt(double(m)) * torch::mv(memory.values[b].narrow(0, 0, m).t(), a);
      auto expected = ((torch::mv(wo, ci) + bo + h) * std::sqrt(0.5) + x[b][t]) * std::sqrt(0.5);
      EXPECT_TRUE(close(out[b][t], expected)) << "row " << b << " position " << t;
    }
  }
  // The context now holds the last k − 1 inputs.
  EXPECT_TRUE(close(context, x.narrow(1, T - (k - 1), k - 1)));
}

TEST(ConvS2SParts, InitialisationFollowsThePaper) {
  torch::manual_seed(6);
  nmt::ModelConfig c = small_config(kVariants[1]);
  c.embed_dim = 64;
  c.hidden_size = 128;
  c.kernel_width = 3;
  c.dropout = 0.2;
  nmt::models::ConvS2SSeq2SeqImpl model(c, 300, 300);
  auto p = model.named_parameters();
  auto near_std = [](const at::Tensor& w, double expected) {
    EXPECT_NEAR(w.std().item<double>(), expected, 0.05 * expected);
    EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.05 * expected);
  };
  near_std(p["tgt_embed.weight"], 0.1);  // embeddings N(0, 0.1²)
  near_std(p["src_positions.weight"], 0.1);
  near_std(p["encoder.0.conv.conv.v"], std::sqrt(4 * 0.8 / (3 * 128)));  // before a GLU: 4(1 − p)/n
  near_std(p["decoder.1.conv.conv.v"], std::sqrt(4 * 0.8 / (3 * 128)));
  near_std(p["encoder_in.v"], std::sqrt(0.8 / 64));  // after dropout: (1 − p)/n
  near_std(p["decoder.0.attn_in.v"], std::sqrt(1.0 / 128));
  near_std(p["output.v"], std::sqrt(0.8 / 64));
}

TEST(ConvS2SParts, SharedEmbeddingsNeedOneVocabulary) {
  auto c = small_config(kVariants[2]);
  EXPECT_THROW(nmt::models::ConvS2SSeq2SeqImpl(c, 30, 25), nmt::ConfigError);
}

TEST(ConvS2SParts, FactoryBuildsConvS2S) {
  auto model = nmt::models::make_model(small_config(kVariants[0]), 30, 25);
  EXPECT_NE(dynamic_cast<nmt::models::ConvS2SSeq2SeqImpl*>(model.get()), nullptr);
}

}  // namespace

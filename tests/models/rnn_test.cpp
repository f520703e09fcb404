// Properties of the RNN encoder-decoder, checked over every attention/cell variant.
#include "nmt/models/rnn.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/data/batching.h"
#include "nmt/search/search.h"

namespace {

using nmt::data::Example;

struct Variant {
  const char* name;
  nmt::AttentionType attention;
  nmt::AttentionScore score;
  nmt::RnnCell cell;
  bool input_feeding;
  bool tie;
  int decoder_layers;
};

const Variant kVariants[] = {
    {"bahdanau_lstm", nmt::AttentionType::Bahdanau, nmt::AttentionScore::General, nmt::RnnCell::Lstm, true, true, 1},
    {"bahdanau_gru_2layers", nmt::AttentionType::Bahdanau, nmt::AttentionScore::General, nmt::RnnCell::Gru, true, false, 2},
    {"luong_dot", nmt::AttentionType::Luong, nmt::AttentionScore::Dot, nmt::RnnCell::Lstm, true, true, 1},
    {"luong_general", nmt::AttentionType::Luong, nmt::AttentionScore::General, nmt::RnnCell::Lstm, true, false, 2},
    {"luong_concat_no_feeding", nmt::AttentionType::Luong, nmt::AttentionScore::Concat, nmt::RnnCell::Gru, false, true, 1},
};

nmt::ModelConfig small_config(const Variant& v) {
  nmt::ModelConfig c;
  c.embed_dim = 12;
  c.hidden_size = 16;
  c.encoder_layers = 2;
  c.decoder_layers = v.decoder_layers;
  c.dropout = 0.2;  // must not matter in eval mode
  c.attention = v.attention;
  c.attention_score = v.score;
  c.cell = v.cell;
  c.input_feeding = v.input_feeding;
  c.tie_embeddings = v.tie;
  return c;
}

/// Three pairs of different lengths, so the batch has padding on both sides.
std::vector<Example> examples() {
  return {{{5, 6, 7, 8, 9}, {10, 11, 12}, 0}, {{6, 7}, {13, 14, 15, 16, 17}, 1}, {{9}, {18}, 2}};
}

nmt::data::Batch batch_of(const std::vector<Example>& ex) {
  std::vector<const Example*> ptrs;
  for (auto& e : ex) ptrs.push_back(&e);
  return nmt::data::make_batch(ptrs, torch::kCPU);
}

class RnnVariants : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    torch::manual_seed(7);
    model_ = std::make_shared<nmt::models::RnnSeq2SeqImpl>(small_config(GetParam()), 30, 25);
    model_->eval();
  }
  std::shared_ptr<nmt::models::RnnSeq2SeqImpl> model_;
};

TEST_P(RnnVariants, StepwiseDecodingEqualsTeacherForcedForward) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto full = model_->forward(batch);
  auto state = model_->start(batch.src);
  for (int64_t t = 0; t < batch.tgt_in.size(1); ++t) {
    auto out = model_->step(batch.tgt_in.select(1, t), *state);
    EXPECT_TRUE(torch::allclose(out.log_probs, full.log_probs.select(1, t), 1e-5, 1e-6)) << "step " << t;
    EXPECT_TRUE(torch::allclose(out.attention, full.attention.select(1, t), 1e-5, 1e-6)) << "step " << t;
  }
}

TEST_P(RnnVariants, AttentionSumsToOneAndIgnoresPadding) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto att = model_->forward(batch).attention;  // [B, T, S]
  EXPECT_TRUE(torch::allclose(att.sum(-1), torch::ones({att.size(0), att.size(1)}), 1e-5, 1e-6));
  auto pad = batch.src.eq(nmt::data::kPad).unsqueeze(1).expand_as(att);
  EXPECT_EQ(att.masked_select(pad).abs().max().item<float>(), 0.0f);
}

TEST_P(RnnVariants, PaddingDoesNotChangeOutputs) {
  torch::NoGradGuard no_grad;
  auto ex = examples();
  auto together = model_->forward(batch_of(ex)).log_probs;
  for (size_t i = 0; i < ex.size(); ++i) {
    auto alone = model_->forward(batch_of({ex[i]})).log_probs[0];  // [T_i, V]
    const int64_t T = alone.size(0);
    EXPECT_TRUE(torch::allclose(alone, together[i].slice(0, 0, T), 1e-5, 1e-6)) << "sentence " << i;
  }
}

TEST_P(RnnVariants, StateSelectReordersRows) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto state = model_->start(batch.src);
  auto prev = torch::full({3}, nmt::data::kBos, torch::kLong);
  auto reordered = state->select(torch::tensor({2, 0, 1, 1}, torch::kLong));
  auto a = model_->step(prev, *state).log_probs;
  auto b = model_->step(torch::full({4}, nmt::data::kBos, torch::kLong), *reordered).log_probs;
  EXPECT_TRUE(torch::allclose(b, a.index_select(0, torch::tensor({2, 0, 1, 1}, torch::kLong))));
}

TEST_P(RnnVariants, GradientsReachEveryParameter) {
  model_->train();
  auto out = model_->forward(batch_of(examples()));
  out.log_probs.sum().backward();
  for (auto& p : model_->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, RnnVariants, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Attention, MaskedSoftmaxGivesZeroWeightToMaskedPositions) {
  auto scores = torch::tensor({{1.0f, 2.0f, 3.0f}, {0.5f, 0.5f, 9.0f}});
  auto mask = torch::tensor({{true, true, false}, {true, true, false}});
  auto w = nmt::models::masked_softmax(scores, mask);
  EXPECT_FLOAT_EQ(w[0][2].item<float>(), 0.0f);
  EXPECT_NEAR(w[1][0].item<float>(), 0.5, 1e-6);
  EXPECT_NEAR(w[0][1].item<float>(), std::exp(2.0) / (std::exp(1.0) + std::exp(2.0)), 1e-6);
}

}  // namespace

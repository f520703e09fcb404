// Properties of the RNN encoder-decoder, checked over every attention/cell variant.
#include "nmt/models/rnn.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/data/batching.h"
#include "support/model_properties.h"
#include "support/model_util.h"
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
  nmt::AttentionWindow window = nmt::AttentionWindow::Global;
  nmt::AttentionMode mode = nmt::AttentionMode::Soft;
  nmt::VariationalMode variational = nmt::VariationalMode::Enum;
  nmt::HardEval hard_eval = nmt::HardEval::Expected;
  double coverage = 0.0;
};

using nmt::AttentionMode;
using nmt::AttentionWindow;
using nmt::VariationalMode;

const Variant kVariants[] = {
    {"bahdanau_lstm", nmt::AttentionType::Bahdanau, nmt::AttentionScore::General, nmt::RnnCell::Lstm, true, true, 1},
    {"bahdanau_gru_2layers", nmt::AttentionType::Bahdanau, nmt::AttentionScore::General, nmt::RnnCell::Gru, true, false, 2},
    {"luong_dot", nmt::AttentionType::Luong, nmt::AttentionScore::Dot, nmt::RnnCell::Lstm, true, true, 1},
    {"luong_general", nmt::AttentionType::Luong, nmt::AttentionScore::General, nmt::RnnCell::Lstm, true, false, 2},
    {"luong_concat_no_feeding", nmt::AttentionType::Luong, nmt::AttentionScore::Concat, nmt::RnnCell::Gru, false, true, 1},
    // Local attention (Luong et al. 2015), with each score function and both decoder flows.
    {"local_m_dot", nmt::AttentionType::Luong, nmt::AttentionScore::Dot, nmt::RnnCell::Lstm, true, true, 1,
     AttentionWindow::LocalM},
    {"local_p_general_gru_2layers", nmt::AttentionType::Luong, nmt::AttentionScore::General, nmt::RnnCell::Gru, true,
     false, 2, AttentionWindow::LocalP},
    {"local_p_concat_no_feeding", nmt::AttentionType::Luong, nmt::AttentionScore::Concat, nmt::RnnCell::Lstm, false,
     true, 1, AttentionWindow::LocalP},
    {"local_p_bahdanau", nmt::AttentionType::Bahdanau, nmt::AttentionScore::General, nmt::RnnCell::Lstm, true, true,
     1, AttentionWindow::LocalP},
    // Coverage regularisation (Xu et al. 2015).
    {"coverage_bahdanau", nmt::AttentionType::Bahdanau, nmt::AttentionScore::General, nmt::RnnCell::Lstm, true, true,
     1, AttentionWindow::Global, AttentionMode::Soft, VariationalMode::Enum, nmt::HardEval::Expected, 0.5},
    // Hard attention (Xu et al. 2015).
    {"hard_bahdanau", nmt::AttentionType::Bahdanau, nmt::AttentionScore::General, nmt::RnnCell::Lstm, true, true, 1,
     AttentionWindow::Global, AttentionMode::Hard},
    {"hard_luong_argmax_local_p", nmt::AttentionType::Luong, nmt::AttentionScore::General, nmt::RnnCell::Gru, true,
     true, 1, AttentionWindow::LocalP, AttentionMode::Hard, VariationalMode::Enum, nmt::HardEval::Argmax},
    // Variational attention (Deng et al. 2018), each training objective.
    {"variational_enum", nmt::AttentionType::Luong, nmt::AttentionScore::General, nmt::RnnCell::Lstm, true, true, 1,
     AttentionWindow::Global, AttentionMode::Variational, VariationalMode::Enum},
    {"variational_sample_gru", nmt::AttentionType::Luong, nmt::AttentionScore::Dot, nmt::RnnCell::Gru, true, false,
     2, AttentionWindow::Global, AttentionMode::Variational, VariationalMode::Sample},
    {"variational_exact_no_feeding", nmt::AttentionType::Luong, nmt::AttentionScore::Concat, nmt::RnnCell::Lstm,
     false, true, 1, AttentionWindow::Global, AttentionMode::Variational, VariationalMode::Exact, nmt::HardEval::Expected,
     0.5},
};

nmt::ModelConfig small_config(const Variant& v) {
  nmt::ModelConfig c;
  c.embed_dim = 12;
  c.hidden_size = 16;
  c.encoder_layers = 2;
  c.decoder_layers = v.decoder_layers;
  c.dropout = 0.2;  // must not matter in eval mode
  c.attention.type = v.attention;
  c.attention.score = v.score;
  c.cell = v.cell;
  c.attention.input_feeding = v.input_feeding;
  c.tie_embeddings = v.tie;
  c.attention.window = v.window;
  c.attention.window_size = 1;  // narrower than the test sentences, so the window matters
  c.attention.mode = v.mode;
  c.attention.variational_mode = v.variational;
  c.attention.hard_eval = v.hard_eval;
  c.attention.coverage_penalty = v.coverage;
  c.attention.reinforce_entropy = 0.01;
  return c;
}

using nmt::testing::batch_of;
using nmt::testing::examples;

class RnnVariants : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    torch::manual_seed(7);
    model_ = std::make_shared<nmt::models::RnnSeq2SeqImpl>(small_config(GetParam()), 30, 25);
    model_->eval();
  }
  std::shared_ptr<nmt::models::RnnSeq2SeqImpl> model_;
};

TEST_P(RnnVariants, Bf16AgreesWithFp32AndStepwiseWithForward) {
  using nmt::testing::Alignment;
  const auto& v = GetParam();
  const auto alignment = v.mode == AttentionMode::Hard && v.hard_eval == nmt::HardEval::Argmax ? Alignment::kArgmax
                         : v.window == AttentionWindow::LocalP                                ? Alignment::kWindowed
                                                                                              : Alignment::kSmooth;
  nmt::testing::expect_bf16_agrees_with_fp32(*model_, alignment);
}

TEST_P(RnnVariants, StepwiseDecodingEqualsTeacherForcedForward) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto full = model_->forward(batch);
  auto state = model_->start(batch.src);
  for (int64_t t = 0; t < batch.tgt_in.size(1); ++t) {
    auto out = model_->step(batch.tgt_in.select(1, t), *state);
    EXPECT_TRUE(torch::allclose(log_probs_of(out), full.log_probs.select(1, t), 1e-5, 1e-6)) << "step " << t;
    EXPECT_TRUE(torch::allclose(out.attention, full.attention.select(1, t), 1e-5, 1e-6)) << "step " << t;
  }
}

TEST_P(RnnVariants, AttentionSumsToOneAndIgnoresPadding) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  for (bool training : {false, true}) {
    model_->train(training);
    auto out = model_->forward(batch);
    auto pad = batch.src.eq(nmt::data::kPad).unsqueeze(1).expand_as(out.attention);
    for (const auto& att : {out.attention, out.posterior}) {  // [B, T, S]; posterior: variational
      if (!att.defined()) continue;
      EXPECT_TRUE(torch::allclose(att.sum(-1), torch::ones({att.size(0), att.size(1)}), 1e-5, 1e-6));
      EXPECT_EQ(att.masked_select(pad).abs().max().item<float>(), 0.0f);
    }
  }
}

TEST_P(RnnVariants, LocalAttentionIsZeroOutsideItsWindow) {
  if (GetParam().window != AttentionWindow::LocalM) GTEST_SKIP() << "local-p: see attention_test.cpp";
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto att = model_->forward(batch).attention;  // [B, T, S]
  auto len = batch.src.ne(nmt::data::kPad).sum(1);
  for (int64_t b = 0; b < att.size(0); ++b)
    for (int64_t t = 0; t < att.size(1); ++t) {
      const int64_t p = std::min<int64_t>(t, len[b].item<int64_t>() - 1);  // local-m: p_t = t
      for (int64_t s = 0; s < att.size(2); ++s)
        if (std::abs(s - p) > 1) {
          EXPECT_EQ(att[b][t][s].item<float>(), 0.0f) << b << " " << t << " " << s;
        }
    }
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
  auto a = log_probs_of(model_->step(prev, *state));
  auto b = log_probs_of(model_->step(torch::full({4}, nmt::data::kBos, torch::kLong), *reordered));
  EXPECT_TRUE(torch::allclose(b, a.index_select(0, torch::tensor({2, 0, 1, 1}, torch::kLong))));
}

TEST_P(RnnVariants, StateSelectWithinEachSentenceSharesTheEncoderSide) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto beams = model_->start(batch.src)->select(torch::tensor({0, 0, 1, 1, 2, 2}, torch::kLong));  // 2 beams each
  const auto& expanded = dynamic_cast<const nmt::models::RnnDecoderState&>(*beams);
  model_->step(torch::tensor({4, 5, 6, 7, 8, 9}, torch::kLong), *beams);  // the beams' decoder states now differ
  // Beams reordered within each sentence: the encoder side is shared, the decoder side reordered.
  const auto within_rows = torch::tensor({1, 0, 3, 3, 5, 4}, torch::kLong);
  auto within = beams->select(within_rows);
  const auto& w = dynamic_cast<const nmt::models::RnnDecoderState&>(*within);
  EXPECT_EQ(w.memory.data_ptr(), expanded.memory.data_ptr());
  EXPECT_EQ(w.src_mask.data_ptr(), expanded.src_mask.data_ptr());
  EXPECT_TRUE(torch::equal(w.h.back(), expanded.h.back().index_select(0, within_rows)));
  // Sentences that change places are copied.
  auto across = beams->select(torch::tensor({2, 3, 0, 1, 4, 5}, torch::kLong));
  const auto& x = dynamic_cast<const nmt::models::RnnDecoderState&>(*across);
  EXPECT_NE(x.memory.data_ptr(), expanded.memory.data_ptr());
  EXPECT_TRUE(torch::equal(x.memory, expanded.memory.index_select(0, torch::tensor({2, 3, 0, 1, 4, 5}, torch::kLong))));
  // The shared state decodes as the reordered rows of the original.
  const auto prev = torch::full({6}, 3, torch::kLong);
  auto shared = log_probs_of(model_->step(prev, *within));
  auto original = log_probs_of(model_->step(prev, *beams));
  EXPECT_TRUE(torch::allclose(shared, original.index_select(0, within_rows), 1e-6, 1e-6));
}

TEST_P(RnnVariants, GradientsReachEveryParameter) {
  model_->train();
  auto out = model_->forward(batch_of(examples()));
  // The training objective: token log-likelihood terms plus the model's own terms (coverage,
  // REINFORCE, KL), through which hard and variational attention train their alignments.
  auto objective = out.nll.defined() ? out.nll : -out.log_probs.sum();
  if (out.aux_loss.defined()) objective = objective + out.aux_loss;
  objective.backward();
  for (auto& p : model_->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, RnnVariants, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

/// The encoder's memory and its gradients, from the model (its encoder run layer by layer) and
/// from LibTorch's multi-layer module called on the same packed batch.
TEST(RnnEncoder, LayerByLayerEqualsTheMultiLayerModule) {
  namespace rnn = torch::nn::utils::rnn;
  for (auto cell : {nmt::RnnCell::Lstm, nmt::RnnCell::Gru}) {
    auto config = small_config(kVariants[0]);
    config.cell = cell;
    config.encoder_layers = 3;
    config.dropout = 0.0;  // training mode below: nothing dropped, so the two must agree
    torch::manual_seed(8);
    auto model = std::make_shared<nmt::models::RnnSeq2SeqImpl>(config, 30, 25);
    model->train();
    const int64_t P = nmt::data::kPad;
    auto src = torch::tensor(std::vector<int64_t>{5, 6, 7, 8, 9, 10, 11, P, P, P, 12, 13, 14, P, P}).view({3, 5});
    auto state = model->start(src);
    const auto memory = dynamic_cast<nmt::models::RnnDecoderState&>(*state).memory;  // [B, S, H]
    auto modules = model->named_modules();
    auto emb = modules["src_embed"]->as<torch::nn::Embedding>()->forward(src);
    auto lengths = src.ne(P).sum(1);
    auto packed = rnn::pack_padded_sequence(emb, lengths, true, false);
    auto out = cell == nmt::RnnCell::Lstm ? std::get<0>(modules["encoder"]->as<torch::nn::LSTM>()->forward_with_packed_input(packed))
                                           : std::get<0>(modules["encoder"]->as<torch::nn::GRU>()->forward_with_packed_input(packed));
    const auto expected = std::get<0>(rnn::pad_packed_sequence(out, true, 0.0, src.size(1)));
    ASSERT_EQ(memory.sizes(), expected.sizes());
    EXPECT_TRUE(torch::allclose(memory, expected, 1e-6, 1e-6));
    EXPECT_TRUE(torch::equal(memory.select(0, 1).narrow(0, 2, 3), torch::zeros({3, config.hidden_size})));  // padding
    const auto r = torch::randn(memory.sizes());
    auto weights = modules["encoder"]->parameters();
    auto got = torch::autograd::grad({(memory * r).sum()}, weights);
    auto want = torch::autograd::grad({(expected * r).sum()}, weights);
    ASSERT_EQ(got.size(), 4u * 2 * 3);  // w_ih, w_hh, b_ih, b_hh per direction and layer
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-5, 1e-6)) << "weight " << i;
  }
}

TEST(Attention, MaskedSoftmaxGivesZeroWeightToMaskedPositions) {
  auto scores = torch::tensor({{1.0f, 2.0f, 3.0f}, {0.5f, 0.5f, 9.0f}});
  auto mask = torch::tensor({{true, true, false}, {true, true, false}});
  auto w = nmt::models::masked_softmax(scores, mask);
  EXPECT_FLOAT_EQ(w[0][2].item<float>(), 0.0f);
  EXPECT_NEAR(w[1][0].item<float>(), 0.5, 1e-6);
  EXPECT_NEAR(w[0][1].item<float>(), std::exp(2.0) / (std::exp(1.0) + std::exp(2.0)), 1e-6);
}

}  // namespace

#pragma once
// Properties every Seq2Seq model must have, as gtest expectations on the fixture batch of
// model_util.h (three pairs of different lengths, padded on both sides). The model tests run
// them over each model's variants; the model is in eval mode unless a check says otherwise.
#include <memory>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/models/seq2seq.h"
#include "nmt/precision.h"
#include "nmt/search/search.h"
#include "support/model_util.h"

namespace nmt::testing {

inline bool close(const at::Tensor& a, const at::Tensor& b) { return torch::allclose(a, b, 1e-5, 1e-5); }

/// Decoding step by step from start() gives forward()'s log-probs and attention at every position
/// (to 1e-5). Returns the state after the last step, for checks of the model's own caches.
inline std::unique_ptr<models::DecoderState> expect_stepwise_decoding_equals_forward(models::Seq2SeqImpl& model,
                                                                                    int64_t tgt_vocab) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto full = model.forward(batch);
  EXPECT_EQ(full.log_probs.sizes(), (std::vector<int64_t>{3, batch.tgt_in.size(1), tgt_vocab}));
  auto state = model.start(batch.src);
  for (int64_t t = 0; t < batch.tgt_in.size(1); ++t) {
    auto out = model.step(batch.tgt_in.select(1, t), *state);
    EXPECT_TRUE(close(log_probs_of(out), full.log_probs.select(1, t))) << "step " << t;
    EXPECT_TRUE(close(out.attention, full.attention.select(1, t))) << "step " << t;
  }
  return state;
}

/// Agreement "within bf16 tolerance": bf16 keeps 8 significant bits (relative rounding error
/// 2^-9), and a few layers of products of such numbers move a tiny model's log-probabilities
/// by a few hundredths; 0.05 (absolute and relative) leaves room for any summation order.
inline bool close_bf16(const at::Tensor& a, const at::Tensor& b) { return torch::allclose(a, b, 0.05, 0.05); }

/// Under bf16 autocast, forward() gives fp32 log-probs and attention that agree with the fp32
/// forward pass within bf16 tolerance, and differ from it (the products did run in bf16); the
/// weights stay fp32. Stepwise decoding under bf16 equals the bf16 forward pass within the same
/// tolerance. Where the alignment makes a discrete choice that bf16 rounding may flip, less is
/// compared with fp32: a window (local-p: a position may enter or leave it) leaves out the
/// attention, an argmax (hard attention) also the log-probabilities; the stepwise check always applies.
enum class Alignment { kSmooth, kWindowed, kArgmax };
inline void expect_bf16_agrees_with_fp32(models::Seq2SeqImpl& model, Alignment alignment = Alignment::kSmooth) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto fp32 = model.forward(batch);
  AutocastGuard bf16(Precision::kBf16, torch::kCPU);
  auto mixed = model.forward(batch);
  ASSERT_EQ(mixed.log_probs.scalar_type(), torch::kFloat);
  EXPECT_FALSE(torch::allclose(mixed.log_probs, fp32.log_probs, 1e-6, 1e-6)) << "autocast changed nothing";
  if (alignment != Alignment::kArgmax) {
    EXPECT_TRUE(close_bf16(mixed.log_probs, fp32.log_probs))
        << "max difference " << (mixed.log_probs - fp32.log_probs).abs().max().item<float>();
  }
  if (alignment == Alignment::kSmooth) {
    EXPECT_TRUE(close_bf16(mixed.attention.to(torch::kFloat), fp32.attention));
  }
  for (const auto& p : model.parameters()) EXPECT_EQ(p.scalar_type(), torch::kFloat);
  auto state = model.start(batch.src);
  for (int64_t t = 0; t < batch.tgt_in.size(1); ++t) {
    auto out = model.step(batch.tgt_in.select(1, t), *state);
    EXPECT_TRUE(close_bf16(log_probs_of(out), mixed.log_probs.select(1, t))) << "step " << t;
    EXPECT_TRUE(close_bf16(out.attention.to(torch::kFloat), mixed.attention.select(1, t))) << "step " << t;
  }
}

/// Changing the target token at position t changes no output before t (and does change t's).
inline void expect_future_tokens_cannot_change_earlier_positions(models::Seq2SeqImpl& model) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto before = model.forward(batch);
  const int64_t t = 2;
  batch.tgt_in.select(1, t).fill_(20);  // a different token at position t in every row
  auto after = model.forward(batch);
  EXPECT_TRUE(close(before.log_probs.slice(1, 0, t), after.log_probs.slice(1, 0, t)));
  EXPECT_TRUE(close(before.attention.slice(1, 0, t), after.attention.slice(1, 0, t)));
  // ... while position t itself does see the change (the check can fail).
  EXPECT_FALSE(close(before.log_probs.select(1, t), after.log_probs.select(1, t)));
}

/// A sentence gives the same log-probs and attention alone (no padding) as in a padded batch,
/// and extra padding columns on the source change nothing either.
inline void expect_padding_does_not_change_outputs(models::Seq2SeqImpl& model) {
  torch::NoGradGuard no_grad;
  auto ex = examples();
  auto batch = batch_of(ex);
  auto together = model.forward(batch);
  for (size_t i = 0; i < ex.size(); ++i) {
    auto alone = model.forward(batch_of({ex[i]}));
    const int64_t T = alone.log_probs.size(1), S = alone.attention.size(2);
    EXPECT_TRUE(close(alone.log_probs[0], together.log_probs[i].slice(0, 0, T))) << "sentence " << i;
    EXPECT_TRUE(close(alone.attention[0], together.attention[i].slice(0, 0, T).slice(1, 0, S))) << "sentence " << i;
  }
  auto padded = batch;
  padded.src = torch::cat({batch.src, torch::full({batch.size(), 4}, data::kPad, torch::kLong)}, 1);
  auto wider = model.forward(padded);
  EXPECT_TRUE(close(wider.log_probs, together.log_probs));
  EXPECT_TRUE(close(wider.attention.slice(2, 0, batch.src.size(1)), together.attention));
}

/// The attention [B, T, S] of forward() sums to 1 over source positions and is exactly zero on padding.
inline void expect_attention_sums_to_one_and_ignores_padding(models::Seq2SeqImpl& model) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto att = model.forward(batch).attention;
  ASSERT_EQ(att.sizes(), (std::vector<int64_t>{3, batch.tgt_in.size(1), batch.src.size(1)}));
  EXPECT_TRUE(close(att.sum(-1), torch::ones({att.size(0), att.size(1)})));
  auto pad = batch.src.eq(data::kPad).unsqueeze(1).expand_as(att);
  EXPECT_EQ(att.masked_select(pad).abs().max().item<float>(), 0.0f);
}

/// After two steps (so the caches differ per row), a state reordered by select() continues
/// exactly as the reordered rows of the original; so does one by reorder() (of a copy: it
/// consumes the state).
inline void expect_select_reorders_every_cache(models::Seq2SeqImpl& model) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  auto state = model.start(batch.src);
  model.step(torch::full({3}, data::kBos, torch::kLong), *state);
  model.step(torch::tensor({10, 13, 18}, torch::kLong), *state);
  auto next = torch::tensor({11, 14, 4}, torch::kLong);
  auto a = model.step(next, *state->select(torch::arange(3)));
  // Any rows; runs of equal rows, as beam search makes (the beams of a sentence), in and out of
  // order and with sentences dropped; and a selection of a selection.
  for (const auto& rows : {torch::tensor({2, 0, 1, 1}), torch::tensor({0, 0, 1, 1, 2, 2}),
                           torch::tensor({2, 2, 2, 0, 0, 0}), torch::tensor({1, 1})}) {
    auto reordered = state->select(rows);
    auto b = model.step(next.index_select(0, rows), *reordered);
    EXPECT_TRUE(close(log_probs_of(b), log_probs_of(a).index_select(0, rows))) << rows;
    EXPECT_TRUE(close(b.attention, a.attention.index_select(0, rows))) << rows;
    auto consumed = state->select(torch::arange(3))->reorder(rows);
    auto d = model.step(next.index_select(0, rows), *consumed);
    EXPECT_TRUE(torch::equal(log_probs_of(d), log_probs_of(b))) << "reorder " << rows;
  }
  const auto first = torch::tensor({0, 0, 1, 1, 2, 2}), second = torch::tensor({4, 4, 0, 0});
  auto twice = state->select(first)->select(second);
  auto c = model.step(next.index_select(0, first).index_select(0, second), *twice);
  EXPECT_TRUE(close(log_probs_of(c), log_probs_of(a).index_select(0, first).index_select(0, second)));
}

/// Beam search with beam size 1 finds greedy search's outputs and scores, with and without a
/// length penalty.
inline void expect_beam_size_one_equals_greedy(models::Seq2SeqImpl& model) {
  torch::NoGradGuard no_grad;
  auto batch = batch_of(examples());
  for (double alpha : {0.0, 1.0}) {
    SearchConfig o;
    o.beam_size = 1;
    o.length_penalty = alpha;
    auto greedy = search::greedy_search(model, batch.src, o);
    auto beam = search::beam_search(model, batch.src, o);
    ASSERT_EQ(greedy.size(), beam.size());
    for (size_t i = 0; i < greedy.size(); ++i) {
      EXPECT_EQ(greedy[i].tokens, beam[i].tokens) << "sentence " << i << ", alpha " << alpha;
      EXPECT_NEAR(greedy[i].log_prob, beam[i].log_prob, 1e-4) << "sentence " << i << ", alpha " << alpha;
      EXPECT_NEAR(greedy[i].score, beam[i].score, 1e-4) << "sentence " << i << ", alpha " << alpha;
    }
  }
}

/// In training mode, the summed log-probs give every parameter a finite, non-zero gradient.
inline void expect_gradients_reach_every_parameter(models::Seq2SeqImpl& model) {
  model.train();
  auto out = model.forward(batch_of(examples()));
  out.log_probs.sum().backward();
  for (auto& p : model.named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
  }
}

}  // namespace nmt::testing

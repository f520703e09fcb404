#pragma once
/// @file rnn_attention.h
/// The RNN decoder's attention behind one interface, whatever its score function (attention.h),
/// window (local_attention.h) and mode (soft; hard, hard_attention.h; variational, whose
/// training objective is variational.h's and whose per-step context is the prior's expectation):
///
///   prepare(memory)                              once per sentence: the projected keys, kept in
///                                                the decoder state
///   attend(query, memory, keys, mask, step)      the alignment α_t over the source positions
///   context(α_t, memory)                         the context vector the decoder consumes
///   auxiliary_loss(...)                          what the attention adds to the training loss
///                                                (hard: REINFORCE; coverage penalty)
///
/// A new attention variant touches its own file, one case here, the config and a test. The
/// modules are registered in the owning model under the names stored checkpoints use
/// (`attention`, `local_attention`, `reinforce_baseline`).
#include <torch/nn/module.h>

#include "nmt/config.h"
#include "nmt/models/attention.h"
#include "nmt/models/hard_attention.h"
#include "nmt/models/local_attention.h"

namespace nmt::models {

class RnnAttention {
 public:
  RnnAttention() = default;
  /// Registers the attention's modules in `owner` (in the order checkpoints store them). Bahdanau
  /// attention uses the additive score, Luong the configured one; queries, keys and values all
  /// have size `hidden` H. Throws std::invalid_argument for a local window of half-width < 1.
  RnnAttention(torch::nn::Module& owner, const AttentionConfig& config, int64_t hidden);

  /// memory [B, S, H] → the per-sentence key projections [B, S, A].
  at::Tensor prepare(const at::Tensor& memory);
  /// The alignment of query [B, H] (h_t, or h_{t−1} for Bahdanau) over memory [B, S, H] with
  /// proj_keys from prepare() and mask [B, S] bool (true = real source token) at target step
  /// `step` (local-m's p_t): weights and log-weights [B, S], their expected context [B, H], and
  /// p_t [B] for a local window.
  AttentionOutput attend(const at::Tensor& query, const at::Tensor& memory, const at::Tensor& proj_keys,
                         const at::Tensor& mask, int64_t step);
  /// The context vector [B, H] the decoder consumes: the expectation Σ_s α_s m_s (soft and
  /// variational), for hard attention a position sampled from α in training (its log α(z) [B]
  /// then goes to `sample_log_prob`) and the expectation or the argmax at test time.
  at::Tensor context(const AttentionOutput& alignment, const at::Tensor& memory, bool training,
                     at::Tensor& sample_log_prob);
  /// The attention's terms of the training loss (a scalar, undefined when there are none): hard
  /// attention's REINFORCE objective (when `sample_log_probs` [B, T] is defined; log_probs
  /// [B, T, V] under the sampled contexts) and λ·coverage. targets [B, T] (kPad on padding),
  /// alignment and log_alignment [B, T, S], src_mask [B, S], tgt_in [B, T].
  at::Tensor auxiliary_loss(const at::Tensor& log_probs, const at::Tensor& targets, const at::Tensor& tgt_in,
                            const at::Tensor& sample_log_probs, const at::Tensor& alignment,
                            const at::Tensor& log_alignment, const at::Tensor& src_mask);

  const AttentionConfig& config() const { return config_; }
  /// Bahdanau attention: queried with the previous state, its context is an input of the RNN
  /// cell (else it is queried with the new state and combined after the cell).
  bool before_cell() const { return config_.type == AttentionType::Bahdanau; }

 private:
  AttentionConfig config_;
  GlobalAttention score_{nullptr};        ///< score function (and global attention)
  LocalAttention local_{nullptr};         ///< window, when attention_window is local-m/-p
  ReinforceBaseline baseline_{nullptr};   ///< hard attention's moving-average reward baseline
};

}  // namespace nmt::models

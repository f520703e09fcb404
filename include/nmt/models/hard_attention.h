#pragma once
/// @file hard_attention.h
/// Stochastic hard attention (Xu et al. 2015, "Show, Attend and Tell", section 4.1): at each
/// target step one source position z_t ~ Categorical(α_t) is sampled and its encoder state is
/// the context. The alignment parameters are trained with REINFORCE (Williams 1992): the
/// reward is the sentence's mean token log-likelihood R = (1/|y|) Σ_t log p(y_t | ·), the
/// baseline b a moving average of R, and an entropy bonus λ_H Σ_t H(α_t) is added; the
/// surrogate loss is −(R − b) Σ_t log α_t(z_t) − λ_H Σ_t H(α_t).
#include <torch/nn/module.h>

#include "nmt/models/attention.h"

namespace nmt::models {

/// One sampled alignment per row.
struct SampledAlignment {
  at::Tensor index;     ///< [B] int64 source position z_t
  at::Tensor log_prob;  ///< [B] log α_t(z_t), differentiable w.r.t. the attention parameters
};

/// z ~ Categorical(att.weights) for every row (never a masked position).
SampledAlignment sample_alignment(const AttentionOutput& att);

/// values [B, S, K], index [B] int64 → [B, K]: the encoder state at each row's position.
at::Tensor gather_context(const at::Tensor& values, const at::Tensor& index);

/// Entropy H(α) = −Σ_s α_s log α_s in nats of each row: weights, log_weights [..., S] → [...].
/// Masked positions (α = 0, log α = −inf) contribute 0 and give finite gradients.
at::Tensor alignment_entropy(const at::Tensor& weights, const at::Tensor& log_weights);

/// A moving-average reward baseline b ← decay·b + (1 − decay)·R̄, kept in a buffer so that it
/// is saved with the model. The first update sets b = R̄.
class ReinforceBaselineImpl : public torch::nn::Module {
 public:
  explicit ReinforceBaselineImpl(double decay);
  /// Current baseline b (0 before the first update).
  double value() const;
  /// Fold in the mean reward of one batch.
  void update(double mean_reward);

 private:
  double decay_;
  at::Tensor state_;  ///< [2]: b, and 1 once initialised
};
TORCH_MODULE(ReinforceBaseline);

/// The REINFORCE surrogate −Σ_b (R_b − baseline) Σ_t log α_bt(z_bt), whose gradient is the
/// score-function estimate of −∇ E[R]. reward [B] (detached), log_prob [B, T] of the sampled
/// positions, tgt_mask [B, T] bool. Returns a scalar.
at::Tensor reinforce_surrogate(const at::Tensor& reward, double baseline, const at::Tensor& log_prob,
                               const at::Tensor& tgt_mask);

/// The training objective's hard-attention terms (forward() in training): the REINFORCE
/// surrogate with the sentence's mean token log-likelihood as reward R and the moving-average
/// baseline (updated with this batch's mean R), minus λ_H Σ_t H(α_t). log_probs [B, T, V]
/// under the sampled contexts; targets [B, T] (kPad on padding); sample_log_probs [B, T] log
/// α_t(z_t); log_alignment [B, T, S]. Returns a scalar.
at::Tensor hard_attention_objective(const at::Tensor& log_probs, const at::Tensor& targets,
                                    const at::Tensor& sample_log_probs, const at::Tensor& log_alignment,
                                    ReinforceBaselineImpl& baseline, double entropy_weight);

}  // namespace nmt::models

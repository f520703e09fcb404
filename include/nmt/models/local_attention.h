#pragma once
/// @file local_attention.h
/// Local attention (Luong et al. 2015, "Effective Approaches to Attention-based Neural Machine
/// Translation", section 3.2): the alignment is restricted to the window [p_t − D, p_t + D].
/// - local-m (monotonic): p_t = t, the target step, clamped to the last real source position.
/// - local-p (predictive): p_t = S·sigmoid(v_pᵀ tanh(W_p h_t)), S = real source length, and the
///   scores are weighted by the Gaussian exp(−(s − p_t)² / (2σ²)), σ = D/2.
/// Any score function (dot/general/concat) supplies the scores. Unlike the paper, the weights
/// are renormalised after the Gaussian, so α_t sums to 1 over the window: α_ts ∝ exp(score_ts)
/// · exp(−(s − p_t)²/(2σ²)) for real positions s with |s − p_t| ≤ D, and α_ts = 0 elsewhere.
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include "nmt/models/int8.h"

#include "nmt/config.h"
#include "nmt/models/attention.h"

namespace nmt::models {

class LocalAttentionImpl : public torch::nn::Module {
 public:
  /// window: local-m or local-p (global is not a local attention: throws std::invalid_argument);
  /// half_width D ≥ 1 (source positions); query_dim Q (size of h_t, for local-p's predictor).
  LocalAttentionImpl(AttentionWindow window, int64_t half_width, int64_t query_dim);

  /// scores [B, S] from any score function; query [B, Q] (h_t, used by local-p); values
  /// [B, S, K]; mask [B, S] bool (true = real source token); step t ≥ 0 (target position,
  /// used by local-m). Returns the context, the window-restricted weights and p_t [B].
  AttentionOutput forward(const at::Tensor& scores, const at::Tensor& query, const at::Tensor& values,
                          const at::Tensor& mask, int64_t step);

  /// The aligned position p_t [B] (float, in source positions from 0) for query [B, Q].
  at::Tensor position(const at::Tensor& query, const at::Tensor& mask, int64_t step);

  int64_t half_width() const { return half_width_; }

 private:
  AttentionWindow window_;
  int64_t half_width_;
  Linear w_p_{nullptr}, v_p_{nullptr};  ///< local-p position predictor
};
TORCH_MODULE(LocalAttention);

}  // namespace nmt::models

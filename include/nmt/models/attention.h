#pragma once
/// @file attention.h
/// Global (soft) attention over encoder states: scores → masked softmax → context vector.
/// Scores: additive vᵀtanh(W_q q + W_k k) (Bahdanau et al. 2015; Luong's `concat` is the same
/// function), `dot` qᵀk and `general` qᵀW k (Luong et al. 2015).
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include "nmt/models/int8.h"

#include "nmt/config.h"

namespace nmt::models {

struct AttentionOutput {
  at::Tensor context;      ///< [B, K] weighted sum of values
  at::Tensor weights;      ///< [B, S] alignment α, zero on padding, rows sum to 1
  at::Tensor log_weights;  ///< [B, S] log α, −inf where α is exactly zero (masked positions)
  at::Tensor position;     ///< [B] aligned position p_t of local attention (undefined if global)
};

class GlobalAttentionImpl : public torch::nn::Module {
 public:
  enum class Score { Additive, Dot, General };
  /// query_dim Q, key_dim K (dot needs Q == K), hidden size A of the additive score.
  GlobalAttentionImpl(Score score, int64_t query_dim, int64_t key_dim, int64_t hidden_dim);
  /// Per-sentence precomputation kept in the decoder state: keys [B, S, K] → [B, S, A or Q].
  at::Tensor project_keys(const at::Tensor& keys);
  /// Unnormalised alignment scores: query [B, Q], proj_keys from project_keys → [B, S].
  at::Tensor score(const at::Tensor& query, const at::Tensor& proj_keys);
  /// query [B, Q]; proj_keys from project_keys; values [B, S, K]; mask [B, S] bool (true = real).
  AttentionOutput forward(const at::Tensor& query, const at::Tensor& proj_keys,
                          const at::Tensor& values, const at::Tensor& mask);

 private:
  Score score_;
  Linear key_proj_{nullptr}, query_proj_{nullptr}, v_{nullptr};
};
TORCH_MODULE(GlobalAttention);

/// Additive (Bahdanau) scores e_bs = Σ_a v_a·tanh(k_bsa + q_ba): proj_keys [B, S, A], query
/// [B, A] (the projected query), v [1, A] or [A] → [B, S] fp32. On the CPU (fp32 or bf16 keys and
/// query, fp32 v) one pass over the keys that writes no [B, S, A] tensor, and a backward pass
/// that recomputes tanh in one more (the keys' gradient in their dtype; v's summed per sentence,
/// then over sentences in order, so it does not depend on the thread count); elsewhere ATen's
/// tanh and product. Differentiable in all three. Throws c10::Error when the shapes do not fit.
at::Tensor additive_scores(const at::Tensor& proj_keys, const at::Tensor& query, const at::Tensor& v);

/// Softmax over the last dimension with masked (false) positions given exactly zero weight.
at::Tensor masked_softmax(const at::Tensor& scores, const at::Tensor& mask);

/// Log-softmax over the last dimension; masked (false) positions get −inf. Every row needs at
/// least one true position. Gradients stay finite (no log of zero is ever taken).
at::Tensor masked_log_softmax(const at::Tensor& scores, const at::Tensor& mask);

/// Context vector Σ_s α_s v_s: weights [B, S], values [B, S, K] → [B, K].
at::Tensor weighted_context(const at::Tensor& weights, const at::Tensor& values);

}  // namespace nmt::models

#pragma once
/// @file latent_output.h
/// A fused, chunked output-layer loss for latent alignments (variational attention,
/// Deng et al. 2018). For every real pair (t, s) of a target step and a source position the
/// output layer sees its own attentional vector h̃_ts = tanh(a_s + c_t), where a_s = W_m m_s and
/// c_t = W_h h_t are the two halves of W_c [m_s; h_t], and predicts
///   g_ts = log p(y_t | z_t = s) = logit_ts(y_t) − logsumexp_v logit_ts(v),
///   logit_ts = W_o (P h̃_ts) + b        (P: optional H → E projection of a tied output layer).
/// The naive computation stores a [B, T, S, V] tensor; here pairs are processed a chunk at a
/// time: logits, their log-sum-exp and the gold logit are computed, combined with the alignment
/// weights, and the gradient of the chunk is computed at once and accumulated (as fused linear
/// cross-entropy kernels do), so no [B, T, S, V] tensor exists, and padded pairs are skipped.
#include <vector>

#include <ATen/Tensor.h>

namespace nmt::models {

/// The output layer shared by all source positions.
struct LatentOutputLayer {
  at::Tensor pre_output;  ///< [E, H] projection P before a tied output layer, or undefined (E = H)
  at::Tensor weight;      ///< [V, E] W_o
  at::Tensor bias;        ///< [V] b, or undefined
};

/// One batch of per-position inputs. Pairs (t, s) count when tgt_mask[b, t] and src_mask[b, s].
struct LatentPairs {
  at::Tensor from_memory;  ///< [B, S, H] a_s = W_m m_s
  at::Tensor from_hidden;  ///< [B, T, H] c_t = W_h h_t
  at::Tensor gold;         ///< [B, T] int64 reference tokens y_t
  at::Tensor tgt_mask;     ///< [B, T] bool, true on real target steps
  at::Tensor src_mask;     ///< [B, S] bool, true on real source positions
};

/// How g_ts combines over s for one target step.
enum class LatentReduction {
  /// Σ_s w_ts g_ts with alignment probabilities w (the ELBO's E_q[log p(y_t | z_t)]); pairs
  /// with w_ts = 0 are skipped, so a truncated (top-K) distribution costs K pairs per step.
  Expectation,
  /// log Σ_s exp(log w_ts + g_ts) with log-probabilities log w (the exact marginal log p(y_t)).
  Marginal,
};

/// Σ over real target steps of the reduction: a scalar in nats (a log-likelihood, ≤ 0).
/// `weights` [B, T, S] are probabilities (Expectation) or log-probabilities (Marginal, −inf
/// where zero). Differentiable with respect to pairs.from_memory, pairs.from_hidden, weights
/// and the layer's tensors; when any of them requires a gradient (and grad mode is on) the
/// gradients are computed during the forward pass, chunk by chunk, and only scaled in backward.
/// `gold_log_probs`, when given, receives g [B, T, S] (detached; 0 on skipped pairs).
/// `chunk_pairs`: pairs per chunk (memory ~ chunk_pairs × V floats).
/// Throws c10::Error on inconsistent shapes.
at::Tensor latent_log_likelihood(const LatentPairs& pairs, const LatentOutputLayer& layer,
                                 const at::Tensor& weights, LatentReduction reduction,
                                 at::Tensor* gold_log_probs = nullptr, int64_t chunk_pairs = 2048);

/// No gradients: g [B, T, S] (0 on padded pairs) and, for each mixture in `mixtures`
/// ([B, T, S] alignment probabilities w), the mixture's log-distribution over the vocabulary
/// log Σ_s w_ts p(v | z_t = s) [B, T, V]: with the prior, the exact marginal log p(v | x, y<t)
/// (translation's distribution); its argmax gives token accuracy under that alignment.
/// Padded target rows get their distributions too (as stepwise decoding computes them).
struct LatentScores {
  at::Tensor gold_log_probs;             ///< [B, T, S]
  std::vector<at::Tensor> log_mixtures;  ///< one [B, T, V] per mixture
};
LatentScores latent_scores(const LatentPairs& pairs, const LatentOutputLayer& layer,
                           const std::vector<at::Tensor>& mixtures, int64_t chunk_pairs = 2048);

}  // namespace nmt::models

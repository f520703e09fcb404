#pragma once
/// @file variational.h
/// Variational attention (Deng et al. 2018, "Latent Alignment and Variational Attention").
/// The alignment z_t ∈ {source positions} is a categorical latent variable. The prior
/// p(z_t | x, y<t) is the decoder's attention α_t; the output model p(y_t | x, y<t, z_t) sees
/// the single encoder state x_{z_t} as its context; the decoder RNN itself does not depend on
/// z, so the sequence likelihood factorises over t. An inference network q(z_t | x, y) reads the
/// whole target sentence. Training maximises the ELBO
///   Σ_t E_q[log p(y_t | x, y<t, z_t)] − KL(q(z_t) ‖ p(z_t))  ≤  Σ_t log Σ_z p(z_t) p(y_t | z_t).
/// Costs: the exact expectation (and the marginal used for decoding) evaluates the output layer
/// once per source position, i.e. a [B, T, S, V] tensor: S times the time and memory of the
/// output layer of a soft-attention model. `model.variational_top_k: K` makes enum training take
/// the expectation over q's K most probable positions, renormalised: that truncated q is still a
/// distribution over alignments, so the objective stays a lower bound on log p(y), at K instead of
/// S output layers per target token.
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

#include "nmt/config.h"

namespace nmt::models {

/// KL(q ‖ p) = Σ_s q_s (log q_s − log p_s) over the last dimension, in nats.
/// log_q, log_p [..., S] (−inf where the probability is zero; q must be zero wherever p is).
/// Returns [...]; terms with q_s = 0 contribute exactly 0 and give finite gradients.
at::Tensor categorical_kl(const at::Tensor& log_q, const at::Tensor& log_p);

/// log Σ_s p(z = s) p(v | z = s): log_prior [B, T, S], position_log_probs [B, T, S, V] → [B, T, V].
at::Tensor marginal_log_probs(const at::Tensor& log_prior, const at::Tensor& position_log_probs);

/// Σ_s q(z = s) log p(v | z = s): posterior [B, T, S], position_log_probs [B, T, S, V] → [B, T, V].
/// At the reference token this is the expected log-likelihood term of the ELBO.
at::Tensor expected_log_probs(const at::Tensor& posterior, const at::Tensor& position_log_probs);

/// The inference network q(z_t | x, y): a bidirectional RNN (hidden/2 per direction) over the
/// embedded target sentence y_1 .. y_n EOS, whose state u_t scores the source encoding m_s
/// bilinearly: q(z_t = s) ∝ exp(u_tᵀ W m_s) over real source positions.
class InferenceNetworkImpl : public torch::nn::Module {
 public:
  InferenceNetworkImpl(RnnCell cell, int64_t embed_dim, int64_t hidden_size);
  /// tgt_emb [B, T, E] (embedded prediction targets), tgt_mask [B, T] bool, memory [B, S, H],
  /// src_mask [B, S] bool → log q [B, T, S] (−inf on source padding; every row, even a padded
  /// target step, is a proper distribution).
  at::Tensor forward(const at::Tensor& tgt_emb, const at::Tensor& tgt_mask, const at::Tensor& memory,
                     const at::Tensor& src_mask);

 private:
  torch::nn::LSTM lstm_{nullptr};
  torch::nn::GRU gru_{nullptr};
  torch::nn::Linear bilinear_{nullptr};
};
TORCH_MODULE(InferenceNetwork);

}  // namespace nmt::models

#pragma once
/// @file variational.h
/// Variational attention (Deng et al. 2018, "Latent Alignment and Variational Attention").
/// The alignment z_t ∈ {source positions} is a categorical latent variable. The prior
/// p(z_t | x, y<t) is the decoder's attention α_t; the output model p(y_t | x, y<t, z_t) sees
/// the single encoder state x_{z_t} as its context; the decoder RNN itself does not depend on
/// z, so the sequence likelihood factorises over t. An inference network q(z_t | x, y) reads the
/// whole target sentence. Training maximises the ELBO
///   Σ_t E_q[log p(y_t | x, y<t, z_t)] − KL(q(z_t) ‖ p(z_t))  ≤  Σ_t log Σ_z p(z_t) p(y_t | z_t).
/// Costs: the exact expectation (and the marginal) evaluate the output layer once per source
/// position: S times the output layer's FLOPs of a soft-attention model. Training and validation
/// run it through the fused, chunked loss of latent_output.h, so no [B, T, S, V] tensor is ever
/// stored. `model.variational_top_k: K` makes enum training take the expectation over q's K most
/// probable positions, renormalised (still a lower bound on log p(y)); `sum-and-sample` sums
/// those K exactly and samples one of the rest (unbiased).
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "nmt/models/int8.h"
#include <torch/nn/modules/rnn.h>

#include <functional>

#include "nmt/config.h"
#include "nmt/models/latent_output.h"
#include "nmt/models/seq2seq.h"

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

/// The inference network q(z_t | x, y) of Deng et al. 2018 (their code: `bigbrnn`): its own
/// bidirectional RNNs over the source x and over the target y_1 .. y_n EOS (`layers` layers,
/// hidden/2 units per direction; the embeddings are the model's), whose states v_s and u_t
/// score each other bilinearly: q(z_t = s) ∝ exp(u_tᵀ W v_s) over real source positions.
class InferenceNetworkImpl : public torch::nn::Module {
 public:
  InferenceNetworkImpl(RnnCell cell, int64_t embed_dim, int64_t hidden_size, int64_t layers, double dropout);
  /// src_emb [B, S, E], src_mask [B, S] bool, tgt_emb [B, T, E] (embedded prediction targets),
  /// tgt_mask [B, T] bool → log q [B, T, S] (−inf on source padding; every row, even a padded
  /// target step, is a proper distribution).
  at::Tensor forward(const at::Tensor& src_emb, const at::Tensor& src_mask, const at::Tensor& tgt_emb,
                     const at::Tensor& tgt_mask);

 private:
  at::Tensor encode(const at::Tensor& emb, const at::Tensor& mask, bool source);
  torch::nn::LSTM src_lstm_{nullptr}, tgt_lstm_{nullptr};
  torch::nn::GRU src_gru_{nullptr}, tgt_gru_{nullptr};
  Linear bilinear_{nullptr};
};
TORCH_MODULE(InferenceNetwork);

/// Entropy H(p) = −Σ_s p_s log p_s over the last dimension, in nats; log_p [..., S] (−inf where
/// p is zero) → [...].
at::Tensor categorical_entropy(const at::Tensor& log_p);

/// What the variational objective needs from the RNN model for one batch.
struct VariationalInputs {
  LatentPairs pairs;          ///< the per-position output's inputs (a_s, c_t, gold, masks)
  LatentOutputLayer layer;    ///< the output layer
  at::Tensor log_prior;       ///< [B, T, S] log p(z_t | x, y<t), the decoder's attention
  at::Tensor log_q;           ///< [B, T, S] log q(z_t | x, y), undefined for mode exact
  at::Tensor memory;          ///< [B, S, H] encoder states m_s
  /// log p(· | context) [B, T, V] of the output layer at a context [B, T, H] (sample mode).
  std::function<at::Tensor(const at::Tensor& context)> log_probs_at;
};

/// Training objective of variational attention (AttentionConfig::variational_mode): sets out.nll
/// (the negated likelihood term: E_q, sampled, sum-and-sample or exact marginal) and
/// out.aux_loss (KL(q ‖ p) and REINFORCE surrogates). Label smoothing never enters.
void variational_training_objective(const AttentionConfig& config, const VariationalInputs& in, ForwardOutput& out);

/// Eval mode: out.log_probs is the exact marginal log Σ_s p(z_t = s) p(v | z_t = s) [B, T, V]
/// (translation's distribution), out.nll its reference-token sum; with an inference network
/// also out.bound_nll (−ELBO), out.posterior (q) and the diagnostics (KL, entropies, accuracy
/// under q and under the prior).
void variational_evaluation(const VariationalInputs& in, ForwardOutput& out);

}  // namespace nmt::models

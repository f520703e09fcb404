#include "nmt/models/variational.h"

#include <torch/nn/utils/rnn.h>
#include <torch/torch.h>

#include "nmt/models/batched_matmul.h"
#include "nmt/models/attention.h"
#include "nmt/models/dropout.h"
#include "nmt/models/packed_rnn.h"

namespace nmt::models {

at::Tensor categorical_kl(const at::Tensor& log_q, const at::Tensor& log_p) {
  auto q = log_q.exp();
  auto diff = (log_q - log_p).masked_fill(q.le(0), 0.0);  // 0·(−inf − −inf) would be NaN
  return (q * diff).sum(-1);
}

at::Tensor marginal_log_probs(const at::Tensor& log_prior, const at::Tensor& position_log_probs) {
  return at::logsumexp(log_prior.unsqueeze(-1) + position_log_probs, /*dim=*/2);
}

at::Tensor expected_log_probs(const at::Tensor& posterior, const at::Tensor& position_log_probs) {
  return at::matmul(posterior.unsqueeze(2), position_log_probs).squeeze(2);  // [B,T,1,S]·[B,T,S,V]
}

at::Tensor categorical_entropy(const at::Tensor& log_p) { return -categorical_kl(log_p, at::zeros_like(log_p)); }

InferenceNetworkImpl::InferenceNetworkImpl(RnnCell cell, int64_t embed_dim, int64_t hidden_size, int64_t layers,
                                           double dropout) {
  const double between = layers > 1 ? dropout : 0.0;
  for (const char* side : {"src_rnn", "tgt_rnn"}) {
    const bool source = side[0] == 's';
    if (cell == RnnCell::Lstm) {
      auto rnn = register_module(side, torch::nn::LSTM(torch::nn::LSTMOptions(embed_dim, hidden_size / 2)
                                                           .num_layers(layers).dropout(between)
                                                           .bidirectional(true).batch_first(true)));
      (source ? src_lstm_ : tgt_lstm_) = rnn;
    } else {
      auto rnn = register_module(side, torch::nn::GRU(torch::nn::GRUOptions(embed_dim, hidden_size / 2)
                                                          .num_layers(layers).dropout(between)
                                                          .bidirectional(true).batch_first(true)));
      (source ? src_gru_ : tgt_gru_) = rnn;
    }
  }
  bilinear_ = register_module("bilinear",
                              Linear(torch::nn::LinearOptions(hidden_size, hidden_size).bias(false)));
}

at::Tensor InferenceNetworkImpl::encode(const at::Tensor& emb, const at::Tensor& mask, bool source) {
  namespace rnn = torch::nn::utils::rnn;
  const int64_t L = emb.size(1);
  auto lengths = mask.sum(1).clamp_min(1).to(at::kCPU, at::kLong);
  auto packed = rnn::pack_padded_sequence(emb, lengths, /*batch_first=*/true, /*enforce_sorted=*/false);
  auto& lstm = source ? src_lstm_ : tgt_lstm_;
  auto& gru = source ? src_gru_ : tgt_gru_;
  if (!emb.is_cpu()) {
    auto out = lstm ? std::get<0>(lstm->forward_with_packed_input(packed)) : std::get<0>(gru->forward_with_packed_input(packed));
    return std::get<0>(rnn::pad_packed_sequence(out, true, 0.0, L));  // [B, L, H]
  }
  // Layer by layer (packed_rnn.h: a backward pass linear in the length), models::dropout between.
  const double p = lstm ? lstm->options.dropout() : gru->options.dropout();
  const int64_t layers = lstm ? lstm->options.num_layers() : gru->options.num_layers();
  const bool training = is_training();
  auto y = packed_bidirectional_rnn(packed.data(), packed.batch_sizes(), lstm ? lstm->all_weights() : gru->all_weights(),
                                    layers, static_cast<bool>(lstm),
                                    [p, training](const at::Tensor& x) { return models::dropout(x, p, training); });
  rnn::PackedSequence out(y, packed.batch_sizes(), packed.sorted_indices(), packed.unsorted_indices());
  return std::get<0>(rnn::pad_packed_sequence(out, true, 0.0, L));  // [B, L, H]
}

at::Tensor InferenceNetworkImpl::forward(const at::Tensor& src_emb, const at::Tensor& src_mask,
                                         const at::Tensor& tgt_emb, const at::Tensor& tgt_mask) {
  auto v = encode(src_emb, src_mask, /*source=*/true);   // [B, S, H]
  auto u = encode(tgt_emb, tgt_mask, /*source=*/false);  // [B, T, H]
  auto scores = batched_matmul(bilinear_(u), v.transpose(1, 2));  // [B, T, S]
  return masked_log_softmax(scores, src_mask.unsqueeze(1).expand_as(scores));
}

namespace {

at::Tensor masked_sum(const at::Tensor& per_token, const at::Tensor& maskf) { return (per_token * maskf).sum(); }

/// Exact enumeration over q, or over q's K most probable positions renormalised.
void enum_objective(const AttentionConfig& c, const VariationalInputs& in, const at::Tensor& maskf, ForwardOutput& out) {
  const int64_t S = in.log_q.size(2);
  if (c.variational_top_k > 0 && c.variational_top_k < S) {
    auto [top, positions] = in.log_q.topk(c.variational_top_k, 2);          // [B, T, K]
    auto top_log_q = top - at::logsumexp(top, 2, /*keepdim=*/true);         // −inf stays on padding
    auto q = at::zeros_like(in.log_q).scatter(2, positions, top_log_q.exp());
    out.nll = -latent_log_likelihood(in.pairs, in.layer, q, LatentReduction::Expectation);
    out.aux_loss = masked_sum(categorical_kl(top_log_q, in.log_prior.gather(2, positions)), maskf);
    return;
  }
  out.nll = -latent_log_likelihood(in.pairs, in.layer, in.log_q.exp(), LatentReduction::Expectation);
  out.aux_loss = masked_sum(categorical_kl(in.log_q, in.log_prior), maskf);
}

/// Sum-and-sample (Liu et al. 2019, "Rao-Blackwellized stochastic gradients for discrete
/// distributions"): E_q[f] = Σ_{s∈K} q_s f(s) + (1 − Q_K) E_{q̃}[f], q̃ = q restricted to the
/// other positions and renormalised, Q_K = Σ_{s∈K} q_s; the second term is estimated with one
/// z' ~ q̃ and its score-function gradient (1 − Q_K)(f(z') − b) ∇ log q̃(z'), with the baseline
/// b = the renormalised top-K expectation (independent of z', so the estimate stays unbiased).
void sum_and_sample_objective(const AttentionConfig& c, const VariationalInputs& in, const at::Tensor& maskf,
                              ForwardOutput& out) {
  const int64_t B = in.log_q.size(0), T = in.log_q.size(1), S = in.log_q.size(2);
  const auto& src_mask = in.pairs.src_mask;
  auto q = in.log_q.exp();
  auto positions = std::get<1>(in.log_q.topk(std::min<int64_t>(c.variational_top_k, S), 2));  // [B, T, K]
  auto in_top = at::zeros({B, T, S}, src_mask.options()).scatter(2, positions, true)
                    .logical_and(src_mask.unsqueeze(1));
  auto q_top = q.masked_fill(in_top.logical_not(), 0.0);
  auto top_mass = q_top.sum(2);                                     // Q_K [B, T]
  auto rest = q.detach().masked_fill(in_top, 0.0);                  // unnormalised q̃
  auto has_rest = rest.sum(2).gt(1e-6);                             // [B, T]
  // Rows without a rest (and padded target steps) draw from q itself; their sampled term has
  // weight 0 and no score-function term.
  auto draw_from = at::where(has_rest.unsqueeze(2), rest, q.detach()).reshape({B * T, S});
  auto z = at::multinomial(draw_from, 1).view({B, T, 1});           // z' [B, T, 1]
  auto rest_mass = (1 - top_mass) * has_rest.to(q.scalar_type());  // 1 − Q_K, 0 without a rest
  auto weights = q_top + at::zeros_like(q).scatter(2, z, rest_mass.unsqueeze(2));
  at::Tensor g;
  out.nll = -latent_log_likelihood(in.pairs, in.layer, weights, LatentReduction::Expectation, &g);
  // Score-function term of the sampled part (the value is 0: only its gradient counts).
  auto log_rest_z = in.log_q.gather(2, z).squeeze(2) - at::log((1 - top_mass).clamp_min(1e-12));
  auto f_z = g.gather(2, z).squeeze(2);
  auto baseline = (q_top * g).sum(2) / top_mass.clamp_min(1e-12);
  auto live = has_rest.logical_and(in.pairs.tgt_mask);
  auto coef = (rest_mass * (f_z - baseline)).detach().masked_fill(live.logical_not(), 0.0);
  auto surrogate = (coef * log_rest_z.masked_fill(live.logical_not(), 0.0)).sum();
  out.aux_loss = -(surrogate - surrogate.detach()) + masked_sum(categorical_kl(in.log_q, in.log_prior), maskf);
}

/// One alignment z_t ~ q per step with REINFORCE for q; the baseline is the likelihood under
/// the prior's soft context Σ_s p(z_t = s) m_s (Deng et al. 2018, section 4); exact KL.
void sample_objective(const VariationalInputs& in, const at::Tensor& maskf, ForwardOutput& out) {
  const int64_t B = in.log_q.size(0), T = in.log_q.size(1), S = in.log_q.size(2), H = in.memory.size(2);
  auto z = at::multinomial(in.log_q.exp().detach().reshape({B * T, S}), 1).view({B, T, 1});
  auto log_q_z = in.log_q.gather(2, z).squeeze(2);                                  // [B, T]
  auto sampled = in.memory.gather(1, z.expand({B, T, H}));                          // x_z [B, T, H]
  auto gold = in.pairs.gold.unsqueeze(2);
  auto gold_lp = in.log_probs_at(sampled).gather(2, gold).squeeze(2);              // [B, T]
  out.nll = -masked_sum(gold_lp, maskf);
  at::Tensor baseline;
  {
    torch::NoGradGuard no_grad;
    baseline = in.log_probs_at(at::matmul(in.log_prior.exp(), in.memory)).gather(2, gold).squeeze(2);
  }
  auto advantage = (gold_lp.detach() - baseline) * maskf;
  out.aux_loss = -(advantage * log_q_z).sum() + masked_sum(categorical_kl(in.log_q, in.log_prior), maskf);
}

}  // namespace

void variational_training_objective(const AttentionConfig& config, const VariationalInputs& in, ForwardOutput& out) {
  auto maskf = in.pairs.tgt_mask.to(in.log_prior.scalar_type());
  switch (config.variational_mode) {
    case VariationalMode::Exact:
      out.nll = -latent_log_likelihood(in.pairs, in.layer, in.log_prior, LatentReduction::Marginal);
      return;
    case VariationalMode::Enum: enum_objective(config, in, maskf, out); return;
    case VariationalMode::SumAndSample: sum_and_sample_objective(config, in, maskf, out); return;
    case VariationalMode::Sample: sample_objective(in, maskf, out); return;
  }
}

void variational_evaluation(const VariationalInputs& in, ForwardOutput& out) {
  torch::NoGradGuard no_grad;
  const auto& tgt_mask = in.pairs.tgt_mask;
  auto maskf = tgt_mask.to(in.log_prior.scalar_type());
  auto prior = in.log_prior.exp();
  std::vector<at::Tensor> mixtures{prior};
  if (in.log_q.defined()) mixtures.push_back(in.log_q.exp());
  auto scores = latent_scores(in.pairs, in.layer, mixtures);
  auto gold = in.pairs.gold.unsqueeze(2);
  out.log_probs = scores.log_mixtures[0];  // exact log p(v | x, y<t)
  out.nll = -masked_sum(out.log_probs.gather(2, gold).squeeze(2), maskf);
  auto correct = [&](const at::Tensor& log_mix) {
    return log_mix.argmax(2).eq(in.pairs.gold).logical_and(tgt_mask).sum().to(at::kDouble);
  };
  auto& d = out.diagnostics;
  d.prior_entropy = masked_sum(categorical_entropy(in.log_prior), maskf);
  d.correct_prior = correct(out.log_probs);
  if (!in.log_q.defined()) return;
  const auto& q = mixtures[1];
  auto kl = categorical_kl(in.log_q, in.log_prior);                       // [B, T]
  out.bound_nll = -masked_sum((q * scores.gold_log_probs).sum(2) - kl, maskf);
  out.posterior = q;
  d.kl = masked_sum(kl, maskf);
  d.q_entropy = masked_sum(categorical_entropy(in.log_q), maskf);
  d.correct_q = correct(scores.log_mixtures[1]);
}

}  // namespace nmt::models

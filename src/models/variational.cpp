#include "nmt/models/variational.h"

#include <torch/nn/utils/rnn.h>

#include "nmt/models/attention.h"

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

InferenceNetworkImpl::InferenceNetworkImpl(RnnCell cell, int64_t embed_dim, int64_t hidden_size) {
  if (cell == RnnCell::Lstm) {
    lstm_ = register_module("rnn", torch::nn::LSTM(torch::nn::LSTMOptions(embed_dim, hidden_size / 2)
                                                       .bidirectional(true).batch_first(true)));
  } else {
    gru_ = register_module("rnn", torch::nn::GRU(torch::nn::GRUOptions(embed_dim, hidden_size / 2)
                                                     .bidirectional(true).batch_first(true)));
  }
  bilinear_ = register_module("bilinear",
                              torch::nn::Linear(torch::nn::LinearOptions(hidden_size, hidden_size).bias(false)));
}

at::Tensor InferenceNetworkImpl::forward(const at::Tensor& tgt_emb, const at::Tensor& tgt_mask,
                                         const at::Tensor& memory, const at::Tensor& src_mask) {
  namespace rnn = torch::nn::utils::rnn;
  const int64_t T = tgt_emb.size(1);
  auto lengths = tgt_mask.sum(1).clamp_min(1).to(at::kCPU, at::kLong);
  auto packed = rnn::pack_padded_sequence(tgt_emb, lengths, /*batch_first=*/true, /*enforce_sorted=*/false);
  auto out = lstm_ ? std::get<0>(lstm_->forward_with_packed_input(packed))
                   : std::get<0>(gru_->forward_with_packed_input(packed));
  auto states = std::get<0>(rnn::pad_packed_sequence(out, true, 0.0, T));  // [B, T, H]
  auto scores = at::matmul(bilinear_(states), memory.transpose(1, 2));     // [B, T, S]
  return masked_log_softmax(scores, src_mask.unsqueeze(1).expand_as(scores));
}

}  // namespace nmt::models

#include "nmt/models/hard_attention.h"

#include <ATen/ATen.h>

#include "nmt/data/batch.h"

namespace nmt::models {

SampledAlignment sample_alignment(const AttentionOutput& att) {
  SampledAlignment out;
  out.index = at::multinomial(att.weights.detach(), 1).squeeze(1);              // [B]
  out.log_prob = att.log_weights.gather(1, out.index.unsqueeze(1)).squeeze(1);  // [B]
  return out;
}

at::Tensor gather_context(const at::Tensor& values, const at::Tensor& index) {
  auto idx = index.view({-1, 1, 1}).expand({values.size(0), 1, values.size(2)});
  return values.gather(1, idx).squeeze(1);
}

at::Tensor alignment_entropy(const at::Tensor& weights, const at::Tensor& log_weights) {
  auto safe_log = log_weights.masked_fill(weights.le(0), 0.0);
  return -(weights * safe_log).sum(-1);
}

ReinforceBaselineImpl::ReinforceBaselineImpl(double decay) : decay_(decay) {
  state_ = register_buffer("state", at::zeros({2}, at::kDouble));
}

double ReinforceBaselineImpl::value() const { return state_[0].item<double>(); }

void ReinforceBaselineImpl::update(double mean_reward) {
  const bool initialised = state_[1].item<double>() > 0;
  const double b = initialised ? decay_ * value() + (1 - decay_) * mean_reward : mean_reward;
  state_[0].fill_(b);
  state_[1].fill_(1.0);
}

at::Tensor reinforce_surrogate(const at::Tensor& reward, double baseline, const at::Tensor& log_prob,
                               const at::Tensor& tgt_mask) {
  auto advantage = (reward.detach() - baseline).to(log_prob.scalar_type());  // [B]
  auto sampled = (log_prob * tgt_mask.to(log_prob.scalar_type())).sum(1);    // [B]
  return -(advantage * sampled).sum();
}

at::Tensor hard_attention_objective(const at::Tensor& log_probs, const at::Tensor& targets,
                                    const at::Tensor& sample_log_probs, const at::Tensor& log_alignment,
                                    ReinforceBaselineImpl& baseline, double entropy_weight) {
  auto tgt_mask = targets.ne(data::kPad);                                                    // [B, T]
  auto maskf = tgt_mask.to(log_probs.scalar_type());
  auto token_ll = log_probs.detach().gather(2, targets.unsqueeze(2)).squeeze(2);             // [B, T]
  auto reward = (token_ll * maskf).sum(1) / maskf.sum(1).clamp_min(1);                       // [B]
  auto loss = reinforce_surrogate(reward, baseline.value(), sample_log_probs, tgt_mask);
  if (entropy_weight > 0) {
    auto entropy = alignment_entropy(log_alignment.exp(), log_alignment);                    // [B, T]
    loss = loss - entropy_weight * (entropy * maskf).sum();
  }
  baseline.update(reward.mean().item<double>());
  return loss;
}

}  // namespace nmt::models

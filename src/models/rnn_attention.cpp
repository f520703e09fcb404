#include "nmt/models/rnn_attention.h"

#include "nmt/data/batch.h"
#include "nmt/models/coverage.h"

namespace nmt::models {

RnnAttention::RnnAttention(torch::nn::Module& owner, const AttentionConfig& config, int64_t hidden)
    : config_(config) {
  GlobalAttentionImpl::Score score = GlobalAttentionImpl::Score::Additive;
  if (!before_cell() && config.score == AttentionScore::Dot) score = GlobalAttentionImpl::Score::Dot;
  if (!before_cell() && config.score == AttentionScore::General) score = GlobalAttentionImpl::Score::General;
  score_ = owner.register_module("attention", GlobalAttention(score, hidden, hidden, hidden));
  if (config.window != AttentionWindow::Global)
    local_ = owner.register_module("local_attention", LocalAttention(config.window, config.window_size, hidden));
  if (config.mode == AttentionMode::Hard)
    baseline_ = owner.register_module("reinforce_baseline", ReinforceBaseline(config.reinforce_baseline_decay));
}

at::Tensor RnnAttention::prepare(const at::Tensor& memory) { return score_->project_keys(memory); }

AttentionOutput RnnAttention::attend(const at::Tensor& query, const at::Tensor& memory, const at::Tensor& proj_keys,
                                     const at::Tensor& mask, int64_t step) {
  if (!local_) return score_(query, proj_keys, memory, mask);
  return local_(score_->score(query, proj_keys), query, memory, mask, step);
}

at::Tensor RnnAttention::context(const AttentionOutput& alignment, const at::Tensor& memory, bool training,
                                 at::Tensor& sample_log_prob) {
  if (config_.mode != AttentionMode::Hard) return alignment.context;
  if (training) {
    auto z = sample_alignment(alignment);
    sample_log_prob = z.log_prob;
    return gather_context(memory, z.index);
  }
  if (config_.hard_eval == HardEval::Argmax) return gather_context(memory, alignment.weights.argmax(1));
  return alignment.context;
}

at::Tensor RnnAttention::auxiliary_loss(const at::Tensor& log_probs, const at::Tensor& targets,
                                        const at::Tensor& tgt_in, const at::Tensor& sample_log_probs,
                                        const at::Tensor& alignment, const at::Tensor& log_alignment,
                                        const at::Tensor& src_mask) {
  at::Tensor loss;
  auto add = [&](const at::Tensor& term) { loss = loss.defined() ? loss + term : term; };
  if (sample_log_probs.defined())
    add(hard_attention_objective(log_probs, targets, sample_log_probs, log_alignment, *baseline_,
                                 config_.reinforce_entropy));
  if (config_.coverage_penalty > 0)
    add(config_.coverage_penalty * coverage_penalty(alignment, src_mask, tgt_in.ne(data::kPad)));
  return loss;
}

}  // namespace nmt::models

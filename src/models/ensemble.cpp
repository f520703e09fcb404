#include "nmt/models/ensemble.h"

#include <numeric>
#include <stdexcept>
#include <string>

#include <torch/torch.h>

namespace nmt::models {
namespace {

/// The members' decoder states, row-aligned.
class EnsembleState : public DecoderState {
 public:
  std::vector<std::unique_ptr<DecoderState>> members;
  std::unique_ptr<DecoderState> select(const at::Tensor& rows) const override {
    auto out = std::make_unique<EnsembleState>();
    for (const auto& m : members) out->members.push_back(m->select(rows));
    return out;
  }
  std::unique_ptr<DecoderState> reorder(const at::Tensor& rows) override {
    auto out = std::make_unique<EnsembleState>();
    for (auto& m : members) out->members.push_back(m->reorder(rows));
    members.clear();
    return out;
  }
};

/// Mean of the defined tensors of `xs`, or undefined when none is.
at::Tensor mean_of_defined(const std::vector<at::Tensor>& xs) {
  at::Tensor sum;
  int n = 0;
  for (const auto& x : xs) {
    if (!x.defined()) continue;
    sum = sum.defined() ? sum + x : x;
    ++n;
  }
  return n > 1 ? sum / n : sum;
}

}  // namespace

EnsembleImpl::EnsembleImpl(std::vector<Seq2Seq> members, std::vector<double> weights)
    : members_(std::move(members)), weights_(std::move(weights)) {
  if (members_.empty()) throw std::invalid_argument("an ensemble needs at least one model");
  if (weights_.empty()) weights_.assign(members_.size(), 1.0);
  if (weights_.size() != members_.size())
    throw std::invalid_argument(std::to_string(weights_.size()) + " ensemble weights for " +
                                std::to_string(members_.size()) + " models");
  for (double w : weights_)
    if (!(w > 0)) throw std::invalid_argument("ensemble weights must be positive, got " + std::to_string(w));
  const double total = std::accumulate(weights_.begin(), weights_.end(), 0.0);
  for (auto& w : weights_) w /= total;
  for (size_t i = 0; i < members_.size(); ++i) register_module("member" + std::to_string(i), members_[i]);
}

at::Tensor EnsembleImpl::combine(const std::vector<at::Tensor>& log_probs) const {
  if (log_probs.size() == 1) return log_probs.front();
  at::Tensor sum = log_probs[0] * weights_[0];
  for (size_t i = 1; i < log_probs.size(); ++i) {
    if (log_probs[i].size(-1) != sum.size(-1))
      throw std::invalid_argument("ensemble members disagree on the target vocabulary size (" +
                                  std::to_string(sum.size(-1)) + " against " +
                                  std::to_string(log_probs[i].size(-1)) + ")");
    sum = sum + log_probs[i] * weights_[i];
  }
  return torch::log_softmax(sum, -1);
}

ForwardOutput EnsembleImpl::forward(const data::Batch& batch) {
  std::vector<at::Tensor> log_probs, attention;
  for (auto& m : members_) {
    auto out = m->forward(batch);
    if (!out.log_probs.defined())
      throw std::invalid_argument("an ensemble member gave no per-position log-probs (training mode of a "
                                  "latent-alignment model); use the ensemble in eval mode");
    log_probs.push_back(out.log_probs);
    attention.push_back(out.attention);
  }
  ForwardOutput out;
  out.log_probs = combine(log_probs);
  out.attention = mean_of_defined(attention);
  return out;
}

std::unique_ptr<DecoderState> EnsembleImpl::start(const at::Tensor& src) {
  auto state = std::make_unique<EnsembleState>();
  for (auto& m : members_) state->members.push_back(m->start(src));
  return state;
}

StepOutput EnsembleImpl::step(const at::Tensor& prev, DecoderState& state) {
  auto& s = dynamic_cast<EnsembleState&>(state);
  std::vector<at::Tensor> log_probs, attention;
  for (size_t i = 0; i < members_.size(); ++i) {
    auto out = members_[i]->step(prev, *s.members[i]);
    log_probs.push_back(log_probs_of(out));
    attention.push_back(out.attention);
  }
  return {combine(log_probs), mean_of_defined(attention), at::Tensor()};
}

void EnsembleImpl::set_int8(bool on) {
  for (auto& m : members_) m->set_int8(on);
}

}  // namespace nmt::models

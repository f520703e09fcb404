#pragma once
/// @file ensemble.h
/// An ensemble of models behind the one Seq2Seq interface, so search needs nothing new:
/// log-linear combination of the members' next-token distributions at every step,
///   log p(y_t | y_<t, x) = Σ_i w_i log p_i(y_t | y_<t, x) − log Σ_v exp(Σ_i w_i log p_i(v | y_<t, x)),
/// with weights normalised to sum to 1 (Marian's and fairseq's ensembles, renormalised). The
/// ensemble's DecoderState holds one state per member; `select` reorders every one of them.
/// Members must share the source and target vocabularies (the caller checks; the sizes are
/// checked here).
#include <memory>
#include <vector>

#include "nmt/models/seq2seq.h"

namespace nmt::models {

class EnsembleImpl : public Seq2SeqImpl {
 public:
  /// `members` (at least one, all on one device) with `weights` (one per member, each > 0;
  /// empty: equal weights). Throws std::invalid_argument otherwise.
  EnsembleImpl(std::vector<Seq2Seq> members, std::vector<double> weights = {});

  /// Teacher-forced pass: the combined [B, T, V] log-probs of batch.tgt_in; attention [B, T, S]
  /// is the mean of the members' that have one (undefined when none has).
  ForwardOutput forward(const data::Batch& batch) override;
  /// One state per member, in an EnsembleState.
  std::unique_ptr<DecoderState> start(const at::Tensor& src) override;
  /// Steps every member; log_probs [B, V] combined as above, attention [B, S] the members' mean.
  StepOutput step(const at::Tensor& prev, DecoderState& state) override;
  /// set_int8 of every member.
  void set_int8(bool on) override;

  const std::vector<double>& weights() const { return weights_; }
  size_t size() const { return members_.size(); }

 private:
  /// Σ_i w_i x_i renormalised over the last dimension; x_i: [..., V].
  at::Tensor combine(const std::vector<at::Tensor>& log_probs) const;

  std::vector<Seq2Seq> members_;
  std::vector<double> weights_;  ///< normalised, Σ = 1
};

}  // namespace nmt::models

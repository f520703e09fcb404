#include "nmt/models/seq2seq.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "nmt/models/convs2s.h"
#include "nmt/models/int8.h"
#include "nmt/models/rnn.h"
#include "nmt/models/transformer.h"
#include "nmt/precision.h"

namespace nmt::models {

at::Tensor log_softmax_of_logits(at::Tensor logits) {
  logits = at_least_fp32(logits);
  // ATen's CPU kernel reads a whole row before it writes it, so the result may overwrite its input.
  if (at::GradMode::is_enabled() || !logits.device().is_cpu() || logits.scalar_type() != at::kFloat ||
      !logits.is_contiguous())
    return at::log_softmax(logits, -1);
  return at::_log_softmax_out(logits, logits, -1, /*half_to_float=*/false);
}

at::Tensor log_probs_of(const StepOutput& out) {
  if (out.log_probs.defined()) return out.log_probs;
  // Not in place on out.logits, which the caller may read again; a bf16 one is copied anyway.
  return out.logits.scalar_type() == at::kFloat ? at::log_softmax(out.logits, -1) : log_softmax_of_logits(out.logits);
}

bool Seq2SeqImpl::output_layer_wanted() const {
  return output_layer_for_loss_ && is_training() && at::GradMode::is_enabled();
}

OutputLayerInput output_layer_input(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& bias) {
  return {hidden, autocast_operand(weight), bias};
}

void Seq2SeqImpl::set_int8(bool on) { set_int8_linear_layers(*this, on); }

Seq2Seq make_model(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab) {
  switch (config.type) {
    case ModelType::Rnn:
      return std::make_shared<RnnSeq2SeqImpl>(config, src_vocab, tgt_vocab);
    case ModelType::Transformer:
      return std::make_shared<TransformerSeq2SeqImpl>(config, src_vocab, tgt_vocab);
    case ModelType::ConvS2S:
      return std::make_shared<ConvS2SSeq2SeqImpl>(config, src_vocab, tgt_vocab);
  }
  throw ConfigError("model.type: unknown model type");
}

}  // namespace nmt::models

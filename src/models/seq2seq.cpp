#include "nmt/models/seq2seq.h"

#include "nmt/models/convs2s.h"
#include "nmt/models/int8.h"
#include "nmt/models/rnn.h"
#include "nmt/models/transformer.h"

namespace nmt::models {

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

#pragma once
// Fixtures shared by the search tests.
#include <memory>

#include <torch/torch.h>

#include "nmt/models/rnn.h"

namespace nmt::testing {

/// A small untrained RNN (embeddings 16, hidden 24, one encoder layer, vocabularies of 20 on
/// both sides), initialised from `seed`.
inline std::shared_ptr<models::RnnSeq2SeqImpl> small_rnn(uint64_t seed) {
  torch::manual_seed(seed);
  ModelConfig c;
  c.embed_dim = 16;
  c.hidden_size = 24;
  c.encoder_layers = 1;
  return std::make_shared<models::RnnSeq2SeqImpl>(c, 20, 20);
}

}  // namespace nmt::testing

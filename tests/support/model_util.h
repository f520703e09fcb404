#pragma once
// Fixtures shared by the model tests.
#include <vector>

#include <torch/torch.h>

#include "nmt/config.h"
#include "nmt/data/batching.h"

namespace nmt::testing {

/// A tiny model of `type` for tests: embeddings and hidden states of 16, 2 heads, FFN 32, one
/// encoder and one decoder layer, no dropout.
inline ModelConfig tiny_model_config(ModelType type = ModelType::Rnn) {
  ModelConfig c;
  c.type = type;
  c.embed_dim = 16;
  c.hidden_size = 16;
  c.heads = 2;
  c.ff_dim = 32;
  c.encoder_layers = 1;
  c.decoder_layers = 1;
  c.dropout = 0.0;
  c.attention_dropout = 0.0;
  return c;
}

/// Three pairs of different lengths, so the batch has padding on both sides.
inline std::vector<data::Example> examples() {
  return {{{5, 6, 7, 8, 9}, {10, 11, 12}, 0}, {{6, 7}, {13, 14, 15, 16, 17}, 1}, {{9}, {18}, 2}};
}

inline data::Batch batch_of(const std::vector<data::Example>& ex) {
  std::vector<const data::Example*> ptrs;
  for (auto& e : ex) ptrs.push_back(&e);
  return data::make_batch(ptrs, torch::kCPU);
}

}  // namespace nmt::testing

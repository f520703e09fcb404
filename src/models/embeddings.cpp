#include "nmt/models/embeddings.h"

#include <string>

namespace nmt::models {

TokenEmbeddings register_token_embeddings(torch::nn::Module& model, const ModelConfig& config, int64_t src_vocab,
                                          int64_t tgt_vocab, int64_t dim) {
  TokenEmbeddings e;
  e.tgt = model.register_module("tgt_embed", torch::nn::Embedding(tgt_vocab, dim));
  if (!config.share_embeddings) {
    e.src = model.register_module("src_embed", torch::nn::Embedding(src_vocab, dim));
    return e;
  }
  if (src_vocab != tgt_vocab)
    throw ConfigError("model.share_embeddings needs one joint vocabulary (source " + std::to_string(src_vocab) +
                      " vs target " + std::to_string(tgt_vocab) + " pieces)");
  e.src = e.tgt;
  return e;
}

at::Tensor learned_positions(const torch::nn::Embedding& table, int64_t start, int64_t length) {
  TORCH_CHECK(start + length <= table->weight.size(0), "a sequence of ", start + length,
              " positions exceeds the learned position table (", table->weight.size(0), ")");
  return table->weight.narrow(0, start, length);
}

}  // namespace nmt::models

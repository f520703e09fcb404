#pragma once
/// @file embeddings.h
/// Token and position embedding tables shared by the models.
#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>

#include "nmt/config.h"

namespace nmt::models {

/// Longest sequence (source or target, EOS/BOS included) that learned position embeddings cover.
constexpr int64_t kMaxLearnedPositions = 1024;

/// A model's source and target token embeddings, [vocabulary, dim] each; with
/// model.share_embeddings both are the same module.
struct TokenEmbeddings {
  torch::nn::Embedding src{nullptr}, tgt{nullptr};
};

/// Registers `tgt_embed` [tgt_vocab, dim] and, unless model.share_embeddings, `src_embed`
/// [src_vocab, dim] on `model`. Throws ConfigError when share_embeddings is set with different
/// source and target vocabulary sizes.
TokenEmbeddings register_token_embeddings(torch::nn::Module& model, const ModelConfig& config, int64_t src_vocab,
                                          int64_t tgt_vocab, int64_t dim);

/// Rows start .. start + length − 1 of a learned position table [kMaxLearnedPositions, d] →
/// [length, d]. Throws c10::Error naming the length when the table is too short.
at::Tensor learned_positions(const torch::nn::Embedding& table, int64_t start, int64_t length);

}  // namespace nmt::models

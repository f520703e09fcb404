#pragma once
/// @file batch.h
/// A padded mini-batch of source/target token ids, as the models and the trainer consume it.
#include <cstdint>
#include <vector>

#include <ATen/Tensor.h>

namespace nmt::data {

/// Reserved token ids, identical in every SentencePiece model nmt trains (pad_id=0, unk_id=1,
/// bos_id=2, eos_id=3).
constexpr int64_t kPad = 0;
constexpr int64_t kUnk = 1;
constexpr int64_t kBos = 2;
constexpr int64_t kEos = 3;

/// One encoded sentence pair; `index` is its line number (0-based) in the corpus files.
struct Example {
  std::vector<int64_t> src;  ///< source ids, no BOS/EOS
  std::vector<int64_t> tgt;  ///< target ids, no BOS/EOS
  size_t index = 0;
};

/// A padded batch. B = sentences, S = max source length (+1 for EOS), T = max target length + 1.
struct Batch {
  at::Tensor src;          ///< [B, S] int64: source ids followed by EOS, right-padded with kPad
  at::Tensor src_lengths;  ///< [B] int64: non-pad source lengths (EOS included)
  at::Tensor tgt_in;       ///< [B, T] int64: BOS y_1 .. y_n, padded (teacher-forcing input)
  at::Tensor tgt_out;      ///< [B, T] int64: y_1 .. y_n EOS, padded (prediction targets)
  int64_t num_tgt_tokens = 0;   ///< non-pad entries of tgt_out
  std::vector<size_t> indices;  ///< corpus line of each row
  int64_t size() const { return src.defined() ? src.size(0) : 0; }
};

}  // namespace nmt::data

#pragma once
/// @file token_file.h
/// A training corpus encoded once into a binary token file and read through mmap, so that
/// training holds only the batch at hand in memory, not every encoded pair (corpora of millions
/// of pairs). Built by `nmt preprocess` or at the start of `nmt train`, reused by resumed runs
/// and by every rank of a data-parallel run.
///
/// Layout (native little-endian): a 64-byte header {magic "NMTTOK01", pairs, index offset,
/// tokens, lines read}, the token ids of every kept pair as int32 (source then target, no
/// BOS/EOS), then the index: per pair {uint64 token offset, uint32 source length, uint32 target
/// length, uint64 corpus line}.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nmt/data/batch.h"
#include "nmt/data/corpus.h"
#include "nmt/data/vocab.h"

namespace nmt::data {

/// A read-only, memory-mapped token file.
class TokenCorpus {
 public:
  /// Maps `path` and checks it: header, sizes, every offset and every id below the vocabulary
  /// sizes. Throws std::runtime_error naming the file and what is wrong (missing, truncated,
  /// not a token file, an id out of range).
  TokenCorpus(const std::string& path, int64_t src_vocab_size, int64_t tgt_vocab_size);
  ~TokenCorpus();
  TokenCorpus(TokenCorpus&& other) noexcept;
  TokenCorpus& operator=(TokenCorpus&& other) noexcept;
  TokenCorpus(const TokenCorpus&) = delete;
  TokenCorpus& operator=(const TokenCorpus&) = delete;

  size_t size() const { return pairs_; }
  bool empty() const { return pairs_ == 0; }
  /// Pair i copied out of the map (Example::index = its corpus line).
  Example example(size_t i) const;
  /// (source length, target length) of every pair, for make_token_batches().
  std::vector<std::pair<uint32_t, uint32_t>> lengths() const;
  const std::string& path() const { return path_; }

  /// One index entry of the file (layout above).
  struct Entry;

 private:
  Entry entry(size_t i) const;  ///< index entry i, copied (the index need not be 8-byte aligned)
  std::string path_;
  const char* map_ = nullptr;
  size_t bytes_ = 0;
  size_t pairs_ = 0;
  const int32_t* tokens_ = nullptr;
  const char* index_ = nullptr;
};

/// Encodes the line-aligned files `src_path`/`tgt_path` into the token file `out_path`,
/// streaming `chunk_lines` pairs at a time (each chunk encoded on all hardware threads), with
/// the filtering of encode_corpus() (empty pairs and pairs over `max_len` tokens are dropped)
/// and a progress line per chunk. Written to a temporary file and renamed, so `out_path` is
/// never half-written. Throws std::runtime_error naming the file and line for unreadable or
/// invalid UTF-8 input, and when the files differ in length.
FilterStats build_token_file(const std::string& src_path, const std::string& tgt_path, const Vocab& src_vocab,
                             const Vocab& tgt_vocab, int max_len, const std::string& out_path,
                             size_t chunk_lines = 200000);

/// The token file's name for these inputs: "corpus-<hash>.tok", where the 64-bit FNV-1a hash
/// covers both corpus paths, sizes and modification times, both SentencePiece models' bytes and
/// `max_len`, so a changed input gets a new file. Throws std::runtime_error when a file is missing.
std::string token_file_name(const std::string& src_path, const std::string& tgt_path, const Vocab& src_vocab,
                            const Vocab& tgt_vocab, int max_len);

}  // namespace nmt::data

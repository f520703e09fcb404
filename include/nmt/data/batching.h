#pragma once
/// @file batching.h
/// Building padded Batches, and grouping sentences into token-budget batches.
///
/// "Padded length" below is a sentence's length as it appears in a Batch: source ids + EOS, and
/// target ids + 1 (BOS .. for tgt_in, .. EOS for tgt_out).
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include <c10/core/Device.h>

#include "nmt/data/batch.h"

namespace nmt::data {

/// Pads `examples` into one Batch on `device` (see Batch in batch.h):
///   src     [B, S]  ids + EOS, right-padded with kPad; S = max(len(src)) + 1
///   tgt_in  [B, T]  BOS + ids, padded;                 T = max(len(tgt)) + 1
///   tgt_out [B, T]  ids + EOS, padded
/// `indices` holds each example's Example::index. Throws std::invalid_argument when `examples` is
/// empty or holds a null pointer.
Batch make_batch(const std::vector<const Example*>& examples, c10::Device device);

/// A source-only Batch for translation: src/src_lengths as in make_batch() for
/// `sentences[rows[i]]`, `indices` = rows; tgt_in/tgt_out stay undefined and num_tgt_tokens = 0.
Batch make_source_batch(const std::vector<std::vector<int64_t>>& sentences,
                        const std::vector<size_t>& rows, c10::Device device);

/// Token-budget batches for training, as lists of positions into `examples`. Every example is in
/// exactly one batch. Each batch satisfies
///   size × max(padded src length, padded tgt length) ≤ max_tokens,
/// except that a single example over the budget still forms a batch of its own.
///
/// With `shuffle`: the examples are shuffled (std::mt19937_64 seeded with `seed`), sorted by
/// (tgt length, src length) within windows of about 100 batches' worth, cut into batches, and the
/// batch order is shuffled. The same (examples, max_tokens, seed) always gives the same batches.
/// Without `shuffle`: the same procedure without the two shuffles (deterministic, seed unused).
/// Throws std::invalid_argument when max_tokens <= 0.
std::vector<std::vector<size_t>> make_token_batches(const std::vector<Example>& examples,
                                                    int64_t max_tokens, bool shuffle,
                                                    uint64_t seed);

/// The same from each example's (source length, target length) alone (a memory-mapped corpus).
std::vector<std::vector<size_t>> make_token_batches(const std::vector<std::pair<uint32_t, uint32_t>>& lengths,
                                                    int64_t max_tokens, bool shuffle, uint64_t seed);

/// Batches for translation/validation, as lists of positions into `src_sentences`. Sentences are
/// sorted by source length, longest first (stable: equal lengths keep input order), and cut so
/// that size × (max src length + 1) ≤ max_tokens and, when max_sentences > 0,
/// size ≤ max_sentences (a single over-long sentence forms its own batch). The batches come
/// with the most sentences first (stable): a batch's largest tensors grow with its sentences
/// (a [rows, V] output distribution per step), and memory freed by a large batch is reused by
/// smaller ones, not the other way round. Every position appears exactly once, so results put
/// back with `out[batch[i]] = result[i]` restore the input order.
/// max_tokens <= 0 means no token limit; if both limits are off, all sentences form one batch.
std::vector<std::vector<size_t>> make_sentence_batches(
    const std::vector<std::vector<int64_t>>& src_sentences, int64_t max_tokens,
    int64_t max_sentences = 0);

}  // namespace nmt::data

#pragma once
/// @file translator.h
/// Translate many sentences: token-budget batches sorted by length, decoded with
/// search::decode, returned in input order.
#include <string>
#include <vector>

#include "nmt/data/vocab.h"
#include "nmt/search/search.h"

namespace nmt::search {

/// Decode pre-encoded source sentences (ids without EOS). batch_tokens bounds the source tokens
/// per batch. Returns one hypothesis per sentence, in input order; an empty sentence gives an
/// empty hypothesis.
std::vector<Hypothesis> translate_ids(models::Seq2SeqImpl& model,
                                      const std::vector<std::vector<int64_t>>& sentences,
                                      const SearchOptions& options, int64_t batch_tokens,
                                      c10::Device device);

/// translate_ids() with the `n` best hypotheses of each sentence, best first (see decode_n_best;
/// an empty sentence gives one empty hypothesis).
std::vector<std::vector<Hypothesis>> translate_ids_n_best(models::Seq2SeqImpl& model,
                                                          const std::vector<std::vector<int64_t>>& sentences,
                                                          const SearchOptions& options, int64_t batch_tokens,
                                                          c10::Device device, int64_t n);

/// Raw text in, detokenised text out (SentencePiece on both ends).
std::vector<std::string> translate_text(models::Seq2SeqImpl& model, const data::Vocab& src_vocab,
                                        const data::Vocab& tgt_vocab,
                                        const std::vector<std::string>& lines,
                                        const SearchOptions& options, int64_t batch_tokens,
                                        c10::Device device,
                                        std::vector<Hypothesis>* hypotheses = nullptr);

}  // namespace nmt::search

#pragma once
/// @file search.h
/// Greedy and batched beam search over the Seq2Seq start/step API. Knows nothing of model
/// types: the model is only asked for next-token log-probs, and its DecoderState is reordered
/// with `select`. Settings come from the config's SearchConfig (beam_size, length_penalty: GNMT
/// α, max_len_a/b); `keep_attention` fills Hypothesis::attention. SearchConfig::batch_tokens
/// is the Translator's (search/translator.h), not used here.
#include <cstdint>
#include <vector>

#include <ATen/Tensor.h>

#include "nmt/config.h"
#include "nmt/models/seq2seq.h"

namespace nmt::search {

struct Hypothesis {
  std::vector<int64_t> tokens;  ///< output ids, without BOS and EOS
  double log_prob = 0;          ///< Σ_t log p(y_t | y_<t, x), EOS included
  double score = 0;             ///< log_prob / GNMT length penalty (the ranking score)
  at::Tensor attention;         ///< [|tokens|+1, S] alignment per output step (if requested)
};

/// GNMT length penalty lp(n) = ((5 + n) / 6)^α.
double length_penalty(int64_t length, double alpha);

/// Maximum output length for each row of src [B, S]: floor(a·|x| + b), at least 1 (EOS).
std::vector<int64_t> max_lengths(const at::Tensor& src, const SearchConfig& options);

/// The beam bookkeeping, independent of any model: it receives the log-probs of the live rows
/// and says which rows survive with which next tokens (as OpenNMT-py's decode strategies).
/// Rows are grouped by sentence: row r belongs to live sentence r / K.
class BeamSearch {
 public:
  BeamSearch(int64_t batch_size, const SearchConfig& options, std::vector<int64_t> max_lengths,
             bool keep_attention = false);

  /// Tokens to feed at the first step: [B·K] kBos.
  at::Tensor initial_tokens() const;
  /// Rows to expand the initial [B] state to [B·K].
  at::Tensor initial_rows() const;

  struct Advance {
    at::Tensor rows;    ///< [R'] int64: rows of the current state to keep (select with these)
    at::Tensor tokens;  ///< [R'] int64: the next input token of each kept row
  };
  /// The model's step for the current live rows (R = live sentences × K): its log-probs or
  /// logits [R, V] and its attention [R, S] or undefined. Finishes hypotheses that end in EOS or
  /// reach their maximum length.
  Advance advance(const models::StepOutput& out);
  /// advance() with log-probs [R, V] given as such.
  Advance advance(const at::Tensor& log_probs, const at::Tensor& attention);

  bool done() const { return live_.empty(); }
  /// Best hypothesis per sentence, by score (call when done()).
  std::vector<Hypothesis> best() const;
  /// The `n` best finished hypotheses per sentence, best first (fewer when fewer finished; a
  /// sentence finishes once K hypotheses have, so n <= K always gets n).
  std::vector<std::vector<Hypothesis>> n_best(int64_t n) const;
  /// All finished hypotheses per sentence, best first.
  const std::vector<std::vector<Hypothesis>>& finished() const { return finished_; }

 private:
  struct Row {
    std::vector<int64_t> tokens;
    std::vector<at::Tensor> attention;
    double log_prob = 0;
  };
  void finish(int64_t sentence, const Row& row, int64_t token, double log_prob, const at::Tensor& att);

  SearchConfig options_;
  bool keep_attention_;
  int64_t K_;
  std::vector<int64_t> max_lengths_;
  std::vector<int64_t> live_;  ///< sentence ids still searching, in row-group order
  std::vector<Row> rows_;      ///< live_.size() × K rows
  std::vector<std::vector<Hypothesis>> finished_;
  int64_t step_ = 0;
};

/// Beam search for every row of src [B, S]; returns the best hypothesis per row.
std::vector<Hypothesis> beam_search(models::Seq2SeqImpl& model, const at::Tensor& src,
                                    const SearchConfig& options, bool keep_attention = false);

/// Greedy (argmax) decoding for every row of src [B, S].
std::vector<Hypothesis> greedy_search(models::Seq2SeqImpl& model, const at::Tensor& src,
                                      const SearchConfig& options, bool keep_attention = false);

/// beam_search, or greedy_search when beam_size == 1. Runs without gradients, in eval mode.
std::vector<Hypothesis> decode(models::Seq2SeqImpl& model, const at::Tensor& src,
                               const SearchConfig& options, bool keep_attention = false);

/// n-best lists: for every row of src [B, S] its `n` best hypotheses by score, best first, from
/// one beam search (the first equals decode()'s 1-best). Throws std::invalid_argument when n < 1
/// or n > beam_size. Runs without gradients, in eval mode.
std::vector<std::vector<Hypothesis>> decode_n_best(models::Seq2SeqImpl& model, const at::Tensor& src,
                                                   const SearchConfig& options, int64_t n,
                                                   bool keep_attention = false);

}  // namespace nmt::search

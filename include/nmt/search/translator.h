#pragma once
/// @file translator.h
/// One object for inference: a model, its two SentencePiece vocabularies, a device and the
/// search settings; raw sentences in, hypotheses (1-best or n-best, with alignments on request)
/// out. Sentences are grouped into token-budget batches sorted by length (SearchConfig::
/// batch_tokens source tokens each), decoded with search::decode / decode_n_best and returned in
/// input order. Used by `translate`, `eval -m`, `align`, `bench` and validation during training.
/// Knows nothing of checkpoints or model types (see cli/model_io.h for loading one).
#include <string>
#include <vector>

#include "nmt/config.h"
#include "nmt/data/vocab.h"
#include "nmt/models/seq2seq.h"
#include "nmt/precision.h"
#include "nmt/search/search.h"

namespace nmt::search {

class Translator {
 public:
  /// `model` must already live on `device`; the Translator shares it (no copy), so a model still
  /// being trained is translated with its current weights.
  Translator(models::Seq2Seq model, data::Vocab src_vocab, data::Vocab tgt_vocab, SearchConfig config,
             c10::Device device);

  /// Search settings (beam_size, length_penalty, max_len_a/b, batch_tokens); may be changed
  /// between calls.
  SearchConfig& config() { return config_; }
  const SearchConfig& config() const { return config_; }
  /// Fill Hypothesis::attention ([|tokens|+1, S]) of every hypothesis (default: off).
  void set_keep_attention(bool keep) { keep_attention_ = keep; }
  /// Decode with bf16 matrix products (AutocastGuard) or in fp32 (default).
  void set_precision(Precision precision) { precision_ = precision; }
  Precision precision() const { return precision_; }

  models::Seq2SeqImpl& model() const { return *model_; }
  const data::Vocab& src_vocab() const { return src_vocab_; }
  const data::Vocab& tgt_vocab() const { return tgt_vocab_; }
  c10::Device device() const { return device_; }

  /// The `n` best hypotheses of each pre-encoded source sentence (ids without EOS), best first
  /// (see decode_n_best; 1 <= n <= beam_size, else std::invalid_argument). An empty sentence
  /// gives one empty hypothesis. Runs in eval mode without gradients.
  std::vector<std::vector<Hypothesis>> translate_ids_n_best(const std::vector<std::vector<int64_t>>& sentences,
                                                            int64_t n) const;
  /// The best hypothesis of each pre-encoded sentence, in input order.
  std::vector<Hypothesis> translate_ids(const std::vector<std::vector<int64_t>>& sentences) const;

  /// Raw sentences in (SentencePiece-encoded here), the `n` best hypotheses of each out.
  std::vector<std::vector<Hypothesis>> translate_n_best(const std::vector<std::string>& lines, int64_t n) const;
  /// Raw sentences in, the best hypothesis of each out.
  std::vector<Hypothesis> translate(const std::vector<std::string>& lines) const;
  /// Raw sentences in, detokenised best translations out.
  std::vector<std::string> translate_text(const std::vector<std::string>& lines) const;

  /// Detokenised text of a hypothesis.
  std::string text(const Hypothesis& h) const { return tgt_vocab_.decode(h.tokens); }

 private:
  models::Seq2Seq model_;
  data::Vocab src_vocab_, tgt_vocab_;
  SearchConfig config_;
  c10::Device device_;
  bool keep_attention_ = false;
  Precision precision_ = Precision::kFp32;
};

}  // namespace nmt::search

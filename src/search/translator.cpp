#include "nmt/search/translator.h"

#include "nmt/data/batching.h"

namespace nmt::search {

Translator::Translator(models::Seq2Seq model, data::Vocab src_vocab, data::Vocab tgt_vocab, SearchConfig config,
                       c10::Device device)
    : model_(std::move(model)), src_vocab_(std::move(src_vocab)), tgt_vocab_(std::move(tgt_vocab)),
      config_(config), device_(device) {}

std::vector<std::vector<Hypothesis>> Translator::translate_ids_n_best(
    const std::vector<std::vector<int64_t>>& sentences, int64_t n) const {
  std::vector<std::vector<Hypothesis>> out(sentences.size(), std::vector<Hypothesis>(1));
  AutocastGuard autocast(precision_, device_);
  for (const auto& rows : data::make_sentence_batches(sentences, config_.batch_tokens, config_.batch_sentences)) {
    std::vector<size_t> nonempty;
    for (size_t r : rows)
      if (!sentences[r].empty()) nonempty.push_back(r);
    if (nonempty.empty()) continue;
    auto batch = data::make_source_batch(sentences, nonempty, device_);
    auto lists = decode_n_best(*model_, batch.src, config_, n, keep_attention_);
    for (size_t i = 0; i < nonempty.size(); ++i) out[nonempty[i]] = std::move(lists[i]);
  }
  return out;
}

std::vector<Hypothesis> Translator::translate_ids(const std::vector<std::vector<int64_t>>& sentences) const {
  std::vector<Hypothesis> out;
  out.reserve(sentences.size());
  for (auto& list : translate_ids_n_best(sentences, 1)) out.push_back(std::move(list.front()));
  return out;
}

std::vector<std::vector<Hypothesis>> Translator::translate_n_best(const std::vector<std::string>& lines,
                                                                  int64_t n) const {
  return translate_ids_n_best(src_vocab_.encode_batch(lines), n);
}

std::vector<Hypothesis> Translator::translate(const std::vector<std::string>& lines) const {
  return translate_ids(src_vocab_.encode_batch(lines));
}

std::vector<std::string> Translator::translate_text(const std::vector<std::string>& lines) const {
  std::vector<std::string> out;
  for (const auto& h : translate(lines)) out.push_back(text(h));
  return out;
}

}  // namespace nmt::search

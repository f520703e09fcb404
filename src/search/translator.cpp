#include "nmt/search/translator.h"

#include "nmt/data/batching.h"

namespace nmt::search {

std::vector<std::vector<Hypothesis>> translate_ids_n_best(models::Seq2SeqImpl& model,
                                                          const std::vector<std::vector<int64_t>>& sentences,
                                                          const SearchOptions& options, int64_t batch_tokens,
                                                          c10::Device device, int64_t n) {
  std::vector<std::vector<Hypothesis>> out(sentences.size(), std::vector<Hypothesis>(1));
  for (const auto& rows : data::make_sentence_batches(sentences, batch_tokens)) {
    std::vector<size_t> nonempty;
    for (size_t r : rows)
      if (!sentences[r].empty()) nonempty.push_back(r);
    if (nonempty.empty()) continue;
    auto batch = data::make_source_batch(sentences, nonempty, device);
    auto lists = decode_n_best(model, batch.src, options, n);
    for (size_t i = 0; i < nonempty.size(); ++i) out[nonempty[i]] = std::move(lists[i]);
  }
  return out;
}

std::vector<Hypothesis> translate_ids(models::Seq2SeqImpl& model,
                                      const std::vector<std::vector<int64_t>>& sentences,
                                      const SearchOptions& options, int64_t batch_tokens,
                                      c10::Device device) {
  std::vector<Hypothesis> out;
  for (auto& list : translate_ids_n_best(model, sentences, options, batch_tokens, device, 1))
    out.push_back(std::move(list.front()));
  return out;
}

std::vector<std::string> translate_text(models::Seq2SeqImpl& model, const data::Vocab& src_vocab,
                                        const data::Vocab& tgt_vocab,
                                        const std::vector<std::string>& lines,
                                        const SearchOptions& options, int64_t batch_tokens,
                                        c10::Device device, std::vector<Hypothesis>* hypotheses) {
  auto hyps = translate_ids(model, src_vocab.encode_batch(lines), options, batch_tokens, device);
  std::vector<std::string> out;
  out.reserve(hyps.size());
  for (const auto& h : hyps) out.push_back(tgt_vocab.decode(h.tokens));
  if (hypotheses) *hypotheses = std::move(hyps);
  return out;
}

}  // namespace nmt::search

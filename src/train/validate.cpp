#include "nmt/train/validate.h"

#include <algorithm>
#include <array>
#include <cmath>

#include <torch/torch.h>

#include "nmt/data/batching.h"
#include "nmt/eval/bleu.h"
#include "nmt/train/loss.h"

namespace nmt::train {

ValidationResult validate(const search::Translator& translator, const ValidationSet& set, bool with_bleu) {
  auto& model = translator.model();
  const auto device = translator.device();
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  ValidationResult result;
  double nll = 0, bound_nll = 0;
  bool has_bound = false;
  // Sums of the latent-alignment diagnostics; a field stays −1 when no batch defines it.
  std::array<double, 5> diag{-1, -1, -1, -1, -1};
  auto add = [](double& sum, const at::Tensor& t) {
    if (t.defined()) sum = std::max(sum, 0.0) + t.item<double>();
  };
  for (const auto& rows : data::make_token_batches(set.examples, translator.config().batch_tokens, false, 0)) {
    std::vector<const data::Example*> examples;
    for (size_t r : rows) examples.push_back(&set.examples[r]);
    auto batch = data::make_batch(examples, device);
    auto out = model.forward(batch);
    nll += token_loss(out, batch.tgt_out, 0.0).nll.item<double>();
    const auto& d = out.diagnostics;
    add(diag[0], d.kl);
    add(diag[1], d.q_entropy);
    add(diag[2], d.prior_entropy);
    add(diag[3], d.correct_q);
    add(diag[4], d.correct_prior);
    if (out.bound_nll.defined()) {
      bound_nll += out.bound_nll.item<double>();
      has_bound = true;
    }
    result.tokens += batch.num_tgt_tokens;
  }
  result.loss = result.tokens > 0 ? nll / static_cast<double>(result.tokens) : 0.0;
  result.perplexity = std::exp(result.loss);
  auto per_token = [&](double sum) { return sum < 0 || result.tokens == 0 ? -1.0 : sum / result.tokens; };
  result.kl = per_token(diag[0]);
  result.q_entropy = per_token(diag[1]);
  result.prior_entropy = per_token(diag[2]);
  result.accuracy_q = per_token(diag[3]);
  result.accuracy_prior = per_token(diag[4]);
  if (has_bound && result.tokens > 0) result.bound_perplexity = std::exp(bound_nll / static_cast<double>(result.tokens));
  if (with_bleu) {
    for (const auto& h : translator.translate_ids(set.src_ids)) result.hypotheses.push_back(translator.text(h));
    eval::BleuOptions bleu_options;  // sacreBLEU defaults: 13a, exp smoothing, cased
    bleu_options.force = true;
    result.bleu = eval::Bleu(bleu_options, {set.references}).corpus_score(result.hypotheses).score;
  }
  if (was_training) model.train();
  return result;
}

}  // namespace nmt::train

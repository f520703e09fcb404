#pragma once
/// @file validate.h
/// Validation: teacher-forced cross-entropy and perplexity, and BLEU of beam-search output.
#include <string>
#include <vector>

#include "nmt/data/batch.h"
#include "nmt/search/translator.h"

namespace nmt::train {

/// A validation set, encoded once.
struct ValidationSet {
  std::vector<data::Example> examples;       ///< encoded pairs (for cross-entropy)
  std::vector<std::vector<int64_t>> src_ids; ///< encoded sources (for decoding)
  std::vector<std::string> references;       ///< raw target lines (for BLEU)
};

struct ValidationResult {
  double loss = 0;        ///< mean cross-entropy per target token, nats (no label smoothing)
  double perplexity = 0;  ///< exp(loss)
  /// exp(−ELBO / tokens): the variational upper bound on the perplexity, for models with a
  /// latent alignment (variational attention); 0 for other models.
  double bound_perplexity = 0;
  /// Latent-alignment diagnostics per target token (AlignmentDiagnostics), or −1 when the
  /// model has none: KL(q ‖ p) and the entropies in nats; accuracies as fractions 0..1.
  double kl = -1, q_entropy = -1, prior_entropy = -1, accuracy_q = -1, accuracy_prior = -1;
  double bleu = 0;        ///< corpus BLEU (sacreBLEU defaults) of decoded output, 0..100
  int64_t tokens = 0;     ///< target tokens scored
  std::vector<std::string> hypotheses;  ///< detokenised output, in set order
};

/// Evaluate the translator's model on `set` (eval mode, no gradients; its training mode is
/// restored after): cross-entropy over batches of the translator's search batch_tokens, and,
/// unless `with_bleu` is false, BLEU of its translations.
ValidationResult validate(const search::Translator& translator, const ValidationSet& set, bool with_bleu = true);

}  // namespace nmt::train

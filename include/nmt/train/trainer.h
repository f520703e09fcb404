#pragma once
/// @file trainer.h
/// `nmt train`: prepare the model directory (resolved config, SentencePiece models), read and
/// encode the corpora, then optimise with Adam: gradient-norm clipping, learning-rate schedule,
/// periodic validation (cross-entropy, perplexity, beam-search BLEU), best checkpoint by the
/// configured metric, early stopping, and a wall-clock budget.
#include <string>
#include <vector>

#include "nmt/config.h"

namespace nmt::train {

/// Start a new run in config.train.model_dir. Throws std::runtime_error if that directory
/// already holds a checkpoint (use resume_training) or if a corpus cannot be read.
void train_new(const Config& config);

/// Continue the run in `model_dir` from last.pt with its stored config, with `overrides`
/// (section.key=value) applied, e.g. a larger train.max_time.
void resume_training(const std::string& model_dir, const std::vector<std::string>& overrides);

}  // namespace nmt::train

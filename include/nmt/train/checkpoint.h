#pragma once
/// @file checkpoint.h
/// A checkpoint is one self-contained file: model weights, optimizer state, training state,
/// the resolved config and the SentencePiece models, so `nmt translate -m DIR` needs nothing
/// else. Written atomically (temporary file, then rename).
#include <string>

#include <torch/optim/optimizer.h>

#include "nmt/config.h"
#include "nmt/data/vocab.h"
#include "nmt/models/seq2seq.h"

namespace nmt::train {

/// Where training stands; everything needed to resume a run exactly.
struct TrainingState {
  int64_t step = 0;            ///< updates done
  int64_t epoch = 1;           ///< current epoch, 1-based
  int64_t batch_in_epoch = 0;  ///< batches of the current epoch already consumed
  double best_metric = -1e30;  ///< best validation score so far (higher is better)
  int64_t best_step = 0;
  int64_t bad_validations = 0; ///< validations since the best one
  double lr_base = 0;          ///< current base learning rate (plateau decay)
  int64_t lr_bad_count = 0;
  double elapsed_seconds = 0;  ///< training wall-clock time spent so far
};

struct Checkpoint {
  Config config;
  data::Vocab src_vocab, tgt_vocab;
  models::Seq2Seq model;
  TrainingState state;
};

/// Save `ck` (and the optimizer's state when given) to `path` atomically.
void save_checkpoint(const std::string& path, const Checkpoint& ck, torch::optim::Optimizer* optimizer);

/// Load a checkpoint onto `device`. Throws std::runtime_error naming the file when it is
/// missing, truncated or not an nmt checkpoint.
Checkpoint load_checkpoint(const std::string& path, c10::Device device);

/// Restore the optimizer state saved in `path` (for --resume).
void load_optimizer_state(const std::string& path, torch::optim::Optimizer& optimizer, c10::Device device);

/// The checkpoint translate/eval use in a model directory: best.pt, else last.pt.
/// Throws std::runtime_error when `model_dir` holds neither.
std::string find_checkpoint(const std::string& model_dir);

}  // namespace nmt::train

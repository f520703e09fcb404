#pragma once
/// @file trainer.h
/// `nmt train`: prepare the model directory (resolved config, SentencePiece models), read and
/// encode the corpora, then optimise with Adam: gradient-norm clipping, learning-rate schedule,
/// periodic validation (cross-entropy, perplexity, beam-search BLEU), best checkpoint by the
/// configured metric, early stopping, and a wall-clock budget.
#include <string>

#include "nmt/config.h"
#include "nmt/io/checkpoint.h"
#include "nmt/train/distributed.h"

namespace nmt::train {

/// Start a new run in config.train.model_dir. Throws std::runtime_error if that directory
/// already holds a checkpoint (use resume_training) or if a corpus cannot be read.
/// With an active `env`, this process is one rank of a data-parallel run (see distributed.h):
/// rank 0 prepares the directory, validates, logs and writes checkpoints; throws
/// DistributedError when rendezvous fails or a rank is lost.
void train_new(const Config& config, const DistributedEnv& env = {});

/// `nmt preprocess`: the run's SentencePiece models (trained unless present) and the training
/// corpus's memory-mapped token file (data/token_file.h), built in config.train.model_dir ahead
/// of `nmt train` with the same config, which then reuses both. Throws std::runtime_error when a
/// corpus cannot be read.
void preprocess(const Config& config);

/// Continue the run in `model_dir` from `ck`, its last.pt as read by load_checkpoint (on the CPU),
/// whose config may carry overrides, e.g. a larger train.max_time. The optimizer state is read
/// from model_dir/last.pt. Throws std::runtime_error if a corpus cannot be read. Any number of
/// processes (`env`) may continue a run, whatever number wrote it.
void resume_training(io::Checkpoint ck, const std::string& model_dir, const DistributedEnv& env = {});

}  // namespace nmt::train

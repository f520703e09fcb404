#pragma once
/// @file update.h
/// The pieces of training that `nmt train` and `nmt bench` share, so that the benchmark times
/// exactly the update that training runs: the run's SentencePiece models, the Adam optimiser,
/// and one update (forward, loss, backward over accumulated batches, clipping, Adam step).
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nmt/config.h"
#include "nmt/data/batch.h"
#include "nmt/data/vocab.h"
#include "nmt/models/seq2seq.h"
#include "nmt/precision.h"
#include "nmt/train/adam.h"
#include "nmt/train/distributed.h"

namespace nmt::train {

/// Source and target vocabularies of a config: the SentencePiece models data.spm_src/spm_tgt
/// when given, else models trained on the training corpus into `dir` as `<name>.model` (joint
/// vocabulary) or `<name>_src.model` and `<name>_tgt.model`. With `reuse`, a model file that
/// already exists there is loaded instead of trained again. Throws std::runtime_error when a
/// corpus or model file cannot be read.
std::pair<data::Vocab, data::Vocab> prepare_vocabs(const Config& config, const std::string& dir,
                                                   const std::string& name, bool reuse);

/// Adam (Kingma & Ba 2015) over the model's parameters with train.lr, beta1/beta2, weight_decay
/// (the fused step of adam.h).
std::unique_ptr<FusedAdam> make_optimizer(models::Seq2SeqImpl& model, const TrainConfig& config);

/// Sums over this process's batches of one update.
struct UpdateStats {
  double loss = 0;         ///< label-smoothed cross-entropy, nats (auxiliary losses excluded)
  double nll = 0;          ///< −log p(y_t), nats
  int64_t tgt_tokens = 0;  ///< non-pad target tokens
  int64_t update_tgt_tokens = 0;  ///< target tokens of the whole update, over all ranks
};

/// This rank's share of a data-parallel update: its group and the reducer over the model's
/// parameters.
struct DataParallel {
  ProcessGroup& group;
  GradientReducer& reducer;
};

/// One optimiser update over `batches` (train.accum_steps of them, or fewer at an epoch's end):
/// the summed loss (label-smoothed cross-entropy + the model's aux_loss) of every batch divided
/// by the update's target-token count is back-propagated, the gradient L2 norm is clipped to
/// train.clip_norm (0 = off; the clipping factor enters Adam's step instead of a pass that
/// rescales the gradients), and Adam steps with learning rate `lr`. With `parallel`, the token
/// count and the gradients are summed over the ranks (each with its own `batches`, possibly
/// none), so N ranks make exactly the update of one process accumulating their N shares.
/// With `precision` bf16 the forward pass and loss run under autocast (precision.h); the backward
/// pass, the fp32 master weights and Adam's moments are untouched by it.
/// Throws DistributedError when a rank is lost.
UpdateStats train_update(models::Seq2SeqImpl& model, FusedAdam& optimizer,
                         const std::vector<data::Batch>& batches, const TrainConfig& config, double lr,
                         DataParallel* parallel = nullptr, Precision precision = Precision::kFp32);

}  // namespace nmt::train

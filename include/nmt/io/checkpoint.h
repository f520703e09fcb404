#pragma once
/// @file checkpoint.h
/// A checkpoint is one self-contained file: model weights, optimizer state, training state,
/// the resolved config and the SentencePiece models, so `nmt translate -m DIR` needs nothing
/// else. Written atomically (serialised in memory, then write_file_atomic: temporary file,
/// fsync, rename).
///
/// File format 2: the magic "NMTCKPT\n", a little-endian uint32 format version, a table of
/// parts (name, size, 64-bit checksum), the table's own checksum, then the parts' bytes
/// (`config`, `src_spm`, `tgt_spm`, `state`, `model`, `optimizer`, and `ema` when the run keeps
/// a moving average of its weights). Every byte of the file is
/// covered by a checksum, and all of them are verified before any part is parsed, so a changed
/// byte is an error naming the part instead of a crash inside SentencePiece or silently different
/// weights. Format 1 (a plain LibTorch archive, nmt before checksums) still loads, with a warning.
#include <cstdint>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include "nmt/config.h"
#include "nmt/data/vocab.h"
#include "nmt/models/seq2seq.h"

namespace nmt::io {

/// One point of a learning curve: after `step` updates and `seconds` of training time, the
/// loss (per target token, nats), perplexity and BLEU (-1: not measured).
struct CurveEntry {
  int64_t step = 0;
  double seconds = 0, loss = 0, perplexity = 0, bleu = -1;
};

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
  /// Step of the last validation whose effects (best, patience, plateau) this state includes;
  /// -1 before the first (a format-1 checkpoint, which was always written after one: `step`).
  int64_t validated_step = -1;
  /// Random generator states at the time of saving (empty when not stored, e.g. format 1):
  /// LibTorch's default CPU generator and one per CUDA device.
  torch::Tensor cpu_rng_state;
  std::vector<torch::Tensor> cuda_rng_states;
  /// The learning curves so far (MODEL_DIR/curves.png): one entry per training log line
  /// (train.log_every) and one per validation.
  std::vector<CurveEntry> train_curve, valid_curve;
};

/// The current states of LibTorch's default generators (CPU, and every CUDA device when present).
void capture_generators(TrainingState& state);
/// Restore the generator states captured in `state`. Returns false (and changes nothing) when
/// `state` holds none. Throws std::runtime_error when the CUDA device count differs.
bool restore_generators(const TrainingState& state);

/// 64-bit checksum of `size` bytes (word-wise multiply-rotate, FNV-style; any single changed
/// byte changes it).
uint64_t checksum64(const void* data, size_t size);

/// A digest of the model's weights: every parameter and buffer (name, shape, float bytes), in
/// registration order. Equal digests mean bitwise-equal weights (up to hash collisions).
uint64_t weights_digest(models::Seq2SeqImpl& model);

struct Checkpoint {
  Config config;
  data::Vocab src_vocab, tgt_vocab;
  models::Seq2Seq model;  ///< the trained weights (those the optimizer updates)
  /// The exponential moving average of the weights (train.ema_decay > 0, train/ema.h), which
  /// inference uses in place of `model` (inference_model()); null when the run keeps none.
  models::Seq2Seq ema;
  TrainingState state;

  /// The weights to translate with: `ema` when the checkpoint holds one, else `model`.
  const models::Seq2Seq& inference_model() const { return ema ? ema : model; }
};

/// Save `ck` (and the optimizer's state when given) to `path` atomically. Throws
/// std::runtime_error naming the file when it cannot be written (ENOSPC, EFBIG, ...); the previous
/// file at `path` is then untouched and no temporary file is left.
void save_checkpoint(const std::string& path, const Checkpoint& ck, torch::optim::Optimizer* optimizer);

/// Load a checkpoint onto `device`. Throws std::runtime_error naming the file when it is
/// missing, truncated or not an nmt checkpoint, when it was written in an unknown format version,
/// when a part's checksum does not match (naming the part), and when a LibTorch archive part
/// holds TorchScript that nmt never writes (naming the part and the line: LibTorch 1.13 crashes
/// importing some of it, so it is checked before LibTorch parses the archive), and when a
/// part's pickle holds an argument that runs past its end (naming the part, record and byte
/// offset: LibTorch would first allocate its stated length, up to 4 GiB), a storage larger than
/// its record, a tensor reaching past its storage, an opcode popping an empty stack or a memo
/// index as large as the pickle, and a zip record stating more bytes than its archive (LibTorch
/// 1.13 would read past the buffer, pop nothing, or allocate the stated size). Every part's
/// checksum is verified first,
/// reading the file once; the optimizer state is checked in 1 MiB pieces and not kept, and each
/// archive part's bytes are freed as soon as LibTorch has read them.
Checkpoint load_checkpoint(const std::string& path, c10::Device device);

/// Restore the optimizer state saved in `path` (for --resume), after verifying every checksum
/// (keeping only that part in memory).
/// Throws std::runtime_error as load_checkpoint does, when the file holds no optimizer state, and
/// naming the file and part 'optimizer' when that state does not load into `optimizer`.
void load_optimizer_state(const std::string& path, torch::optim::Optimizer& optimizer, c10::Device device);

/// Keeps `last_pt` (just written) as `step-<step>.pt` beside it (a hard link, so no copy), then
/// removes all but the newest `keep` such files. Throws std::runtime_error naming the file when
/// the link cannot be made.
void keep_numbered_checkpoint(const std::string& last_pt, int64_t step, int keep);

/// The element-wise mean of the weights (parameters and floating-point buffers) of `paths`,
/// accumulated in float64, in a copy of the last checkpoint (its config, vocabularies and
/// training state). Checkpoint averaging as in Vaswani et al. 2017 and Marian/fairseq. Throws
/// std::runtime_error naming the file whose model type, vocabulary sizes, parameter names or
/// shapes differ from the first one's, when one holds a moving average (`ema`) and another not,
/// or when `paths` is empty. By default what is averaged is what each checkpoint translates with
/// (inference_model()): the moving averages when they hold them (the result then holds the mean
/// as its `ema`), else the trained weights. With `trained_weights` the trained weights (`model`)
/// are averaged whether or not a moving average is kept, and the result holds none (its
/// train.ema_decay is 0): one checkpoint so averaged is that checkpoint without its average.
Checkpoint average_checkpoints(const std::vector<std::string>& paths, bool trained_weights = false);

/// The numbered checkpoints (step-<N>.pt) of a model directory, oldest first.
std::vector<std::string> numbered_checkpoints(const std::string& model_dir);

/// The checkpoint translate/eval use in a model directory: best.pt, else last.pt.
/// Throws std::runtime_error when `model_dir` holds neither.
std::string find_checkpoint(const std::string& model_dir);

}  // namespace nmt::io

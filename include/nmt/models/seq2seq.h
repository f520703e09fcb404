#pragma once
/// @file seq2seq.h
/// The interface every model implements, and the only one search and training see.
/// Decoding follows Marian's design: `start` encodes a source batch into an explicit
/// DecoderState; `step` consumes one target token per row and returns next-token log-probs;
/// `DecoderState::select` reorders the state's rows for surviving beam hypotheses.
#include <memory>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "nmt/config.h"
#include "nmt/data/batch.h"

namespace nmt::models {

/// Everything a decoder carries from one step to the next (hidden states, encoder memory,
/// attention caches). Rows are batch entries (sentence × beam).
class DecoderState {
 public:
  virtual ~DecoderState() = default;
  /// A new state whose row i is row `rows[i]` of this one. rows: [B'] int64 on the state's device.
  virtual std::unique_ptr<DecoderState> select(const at::Tensor& rows) const = 0;
  /// select(rows) for a state that is not needed afterwards (beam search between steps): this
  /// state may give up its tensors while the new one is built, so that the two never hold their
  /// caches at once; it is left valid only for destruction. The default calls select().
  virtual std::unique_ptr<DecoderState> reorder(const at::Tensor& rows) { return select(rows); }
};

/// Output of one decoding step: the next-token distribution as log-probs, or as the logits of a
/// softmax (models whose output layer is one: Transformer, ConvS2S, soft-attention RNN), so that
/// beam search can take the top candidates and log Σ exp of each row without writing its [B, V]
/// log-softmax (search/top_k.h). Exactly one of the two is defined; log_probs_of() gives log-probs.
struct StepOutput {
  at::Tensor log_probs;  ///< [B, V] log p(y_t | y_<t, x), or undefined when `logits` is set
  at::Tensor attention;  ///< [B, S] alignment over source positions (undefined if none)
  at::Tensor logits;     ///< [B, V] scores with log_softmax(logits) = log p(y_t | ...) (bf16 under autocast), or undefined
};

/// [B, V] log-probs of a step: out.log_probs, else the log_softmax of out.logits in fp32 at
/// least (a new tensor: out.logits is left as it was).
at::Tensor log_probs_of(const StepOutput& out);

/// Sums over real target tokens of a latent-alignment model's diagnostics (eval mode; Deng et
/// al. 2018, sections 5-6): how far q is from the prior, how peaked each is, and how often the
/// reference is the most probable token under each. Undefined for other models; q's fields are
/// undefined without an inference network.
struct AlignmentDiagnostics {
  at::Tensor kl;             ///< scalar Σ_t KL(q_t ‖ p_t), nats
  at::Tensor q_entropy;      ///< scalar Σ_t H(q_t), nats
  at::Tensor prior_entropy;  ///< scalar Σ_t H(p_t), nats
  at::Tensor correct_q;      ///< scalar count: argmax_v Σ_s q_ts p(v | z = s) is the reference
  at::Tensor correct_prior;  ///< scalar count: the same under the prior (the exact marginal)
};

/// An affine output layer and its input, whose logits hidden·weightᵀ + bias have log_softmax =
/// log p(y_t | y_<t, x). In bf16 autocast `weight` is already the bf16 operand (autocast_operand
/// of the fp32 parameter, differentiable); `bias` stays fp32.
struct OutputLayerInput {
  at::Tensor hidden;  ///< [B, T, E] the output layer's input (bf16 under autocast)
  at::Tensor weight;  ///< [V, E]
  at::Tensor bias;    ///< [V], or undefined for a layer without bias
  bool defined() const { return hidden.defined(); }
};

/// {hidden, autocast_operand(weight), bias}.
OutputLayerInput output_layer_input(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& bias);

/// Output of a teacher-forced pass over a whole batch.
struct ForwardOutput {
  /// [B, T, V] log p(y_t | y_<t, x) for every target position. In training mode a latent-
  /// alignment model may leave it undefined and give `nll` instead (variational attention), or
  /// return the term its token loss is taken of: log p(v | sampled z_t) (hard attention).
  at::Tensor log_probs;
  /// The output layer left to the loss instead of log_probs: set only in training mode with
  /// autograd recording and set_output_layer_for_loss(true) (Transformer, ConvS2S, soft-attention
  /// RNN); log_probs is then undefined, and train::token_loss computes the logits of the real
  /// target positions only, fused with the cross-entropy.
  OutputLayerInput output_layer;
  /// Scalar Σ over real target tokens of the model's own token loss, in nats, when the model
  /// computes it itself (variational attention: −E_q[log p(y_t | z_t)] in training, −log p(y_t)
  /// exact in eval mode); label smoothing never applies to it. Undefined otherwise: the loss is
  /// then the cross-entropy of log_probs.
  at::Tensor nll;
  at::Tensor attention;  ///< [B, T, S] alignment (undefined if the model has none)
  at::Tensor aux_loss;   ///< scalar added to the summed token loss (regularisers); may be undefined
  /// Latent-alignment models (variational attention) only, else undefined:
  at::Tensor bound_nll;  ///< scalar −ELBO summed over real target tokens (an upper bound on the NLL)
  at::Tensor posterior;  ///< [B, T, S] q(z_t | x, y), the inference network's alignment
  AlignmentDiagnostics diagnostics;  ///< eval mode
};

/// log_softmax over the last dimension of a model's output logits [..., V], in fp32 at least
/// (at_least_fp32). While autograd records nothing (decoding), fp32 CPU logits are overwritten
/// in place instead of a second [..., V] tensor being allocated: the caller must not read
/// `logits` afterwards. The values are those of at::log_softmax either way.
at::Tensor log_softmax_of_logits(at::Tensor logits);

/// A sequence-to-sequence model. Subclasses register their parameters as torch modules.
class Seq2SeqImpl : public torch::nn::Module {
 public:
  /// Teacher-forced pass: batch.src [B, S] and batch.tgt_in [B, T] → per-position log-probs.
  virtual ForwardOutput forward(const data::Batch& batch) = 0;
  /// Encode src [B, S] (EOS-terminated, kPad-padded) into the initial decoder state.
  virtual std::unique_ptr<DecoderState> start(const at::Tensor& src) = 0;
  /// Advance every row by one token: prev [B] int64 (kBos at the first step). Updates `state`.
  virtual StepOutput step(const at::Tensor& prev, DecoderState& state) = 0;
  /// int8 decoding (int8.h): true packs the linear layers' current weights (and a tied output
  /// layer's) in int8 and uses them in eval mode; false returns to fp32. Training mode always
  /// computes in fp32. Throws std::runtime_error when LibTorch has no int8 engine.
  virtual void set_int8(bool on);
  /// true: forward() in training mode, while autograd records, gives ForwardOutput::output_layer
  /// instead of log_probs where the model supports it, so that the loss forms no [B, T, V]
  /// logits or log-softmax (the trainer sets it; every other caller sees log_probs).
  void set_output_layer_for_loss(bool on) { output_layer_for_loss_ = on; }

 protected:
  /// Whether this forward() should give output_layer instead of log_probs (see
  /// set_output_layer_for_loss).
  bool output_layer_wanted() const;

 private:
  bool output_layer_for_loss_ = false;
};
using Seq2Seq = std::shared_ptr<Seq2SeqImpl>;

/// Build the model a config describes. Throws ConfigError for an unsupported combination.
Seq2Seq make_model(const ModelConfig& config, int64_t src_vocab, int64_t tgt_vocab);

}  // namespace nmt::models

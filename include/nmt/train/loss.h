#pragma once
/// @file loss.h
/// Token-level cross-entropy with label smoothing (Szegedy et al. 2016), padding ignored.
#include <ATen/Tensor.h>

#include "nmt/models/seq2seq.h"

namespace nmt::train {

struct LossOutput {
  at::Tensor loss;  ///< scalar: Σ over non-pad tokens of the (smoothed) cross-entropy, in nats
  at::Tensor nll;   ///< scalar: Σ over non-pad tokens of −log p(y_t) (unsmoothed, detached)
};

/// log_probs [B, T, V]; targets [B, T] int64 with kPad on padding; ε = label_smoothing.
/// Smoothed loss per token: (1−ε)·(−log p(y_t)) + ε·mean_v(−log p(v)) (as fairseq).
LossOutput sequence_loss(const at::Tensor& log_probs, const at::Tensor& targets, double label_smoothing);

/// sequence_loss(log_softmax(logits), targets, ε) computed from the logits [B, T, V] (any float
/// dtype: bf16 under autocast; the arithmetic is fp32) without a [B, T, V] log-softmax: the
/// forward pass keeps only the per-position log Σ_v exp(logit_v), and the backward pass writes
/// the gradient softmax − ((1−ε)·onehot(y) + ε/V) straight into a tensor of the logits' dtype,
/// rows in chunks that stay in cache. Equal to the unfused loss in value and gradient up to
/// rounding (LossFromLogits.* tests).
LossOutput sequence_loss_from_logits(const at::Tensor& logits, const at::Tensor& targets, double label_smoothing);

/// sequence_loss_from_logits of the logits hidden·weightᵀ + bias (layer.hidden [B, T, E],
/// layer.weight [V, E], layer.bias [V] or undefined), formed for the real (non-pad) target
/// positions only. On the CPU (fp32 or bf16 weight; the hidden states are cast to its dtype) the
/// padded rows are never multiplied, and the forward pass, after the product, goes through the
/// logits in blocks of 32 rows that stay in cache: row statistics (the fp32 bias added as the
/// logits are read), then the gradient of the loss sum with respect to the logits, written over
/// them with the bias gradient's sums (per block: the same for any thread count), as
/// Liger-Kernel's fused linear cross-entropy computes the gradient in the forward pass; the
/// backward pass is then the two gradient products, scaled by the incoming gradient. No [n, V]
/// tensor but that gradient is kept.
/// Padded positions get a zero gradient. Elsewhere the logits of every position, then
/// sequence_loss_from_logits. Equal to
/// sequence_loss(log_softmax(linear(...))) in value and gradient up to rounding
/// (LossFromOutputLayer.* tests). Throws c10::Error when the shapes do not make a layer or a
/// target lies outside [0, V).
LossOutput sequence_loss_from_output_layer(const models::OutputLayerInput& layer, const at::Tensor& targets,
                                           double label_smoothing);

}  // namespace nmt::train

namespace nmt::train {

/// The token loss of a forward pass: the model's own `nll` when it gives one (label smoothing
/// never applies to it), else sequence_loss_from_output_layer of its output_layer when it gives
/// that, else sequence_loss of its log_probs. The aux_loss is not included.
LossOutput token_loss(const models::ForwardOutput& out, const at::Tensor& targets, double label_smoothing);

}  // namespace nmt::train

#pragma once
/// @file attention_softmax.h
/// The softmax of scaled dot-product attention, softmax(scale·scores + bias) over the keys
/// (Vaswani et al. 2017, eq. 1), fused into one autograd operation for the CPU. Under bf16
/// autocast the scores come from a bf16 product and the probabilities go on to one, so the
/// unfused expression spends its time on casts (bf16 → fp32 → bf16) and on five passes over
/// [.., Q, S]. Here each row is read once and written once in the scores' dtype, with the
/// arithmetic in fp32, and the backward pass likewise.
#include <ATen/ATen.h>

namespace nmt::models {

/// softmax(scale·scores + bias, -1). scores: [..., Q, S] fp32 or bf16 (the result has its
/// dtype; other dtypes and devices: the unfused ATen expression, in fp32 at least). bias:
/// undefined or fp32/bf16 broadcastable to scores (0 or -inf: [N, 1, 1, S] padding, [Q, S]
/// causal), never differentiated. A row whose logits are all -inf gives zeros (ATen: NaN).
/// Differentiable in scores: d scores = scale·p ⊙ (g − Σ_s p_s g_s) per row, computed in fp32.
/// Values agree with the fp32 expression to fp32 rounding before the output's rounding to its dtype.
/// Throws c10::Error when bias does not broadcast to scores or requires grad.
at::Tensor attention_softmax(const at::Tensor& scores, double scale, const at::Tensor& bias);

}  // namespace nmt::models

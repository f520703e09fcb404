#pragma once
/// @file dropout.h
/// Inverted dropout (Srivastava et al. 2014, "Dropout: A Simple Way to Prevent Neural Networks
/// from Overfitting") with a cheaper mask on the CPU. ATen's at::dropout draws a double through
/// bernoulli_ for every element and keeps the mask for the backward pass (11% of a Transformer
/// update in the profile of `nmt bench`). Here one 64-bit draw of the default CPU generator keys
/// a counter-based hash that gives each element 16 random bits (as Philox does in ATen's GPU
/// dropout), in one vectorised, multi-threaded pass that also scales; the backward pass
/// recomputes the mask from the key, so no mask is stored.
#include <ATen/ATen.h>

namespace nmt::models {

/// `x` with each element zeroed with probability p′ and the others scaled by 1/(1 − p′), in
/// training; `x` itself when not training or when p′ = 0. p′ is `p` rounded to a multiple of
/// 2^-16 (|p′ − p| ≤ 2^-17), so E[output] = x exactly (p′ = 1, everything dropped, when
/// p > 1 − 2^-17). Any shape ([B, T, H], [B, H, T, S], ...).
/// The mask depends only on the key drawn from the default CPU generator (at::manual_seed and the
/// generator state in a checkpoint reproduce it) and each element's position in row-major order:
/// not on the dtype (fp32, bf16, fp16, fp64), the strides or the thread count. At most 2^33
/// elements. On other devices this is at::dropout (fused kernels there).
/// Throws c10::Error unless 0 ≤ p < 1.
at::Tensor dropout(const at::Tensor& x, double p, bool training);

/// x + dropout(y, p, training), the residual connection around a dropped-out sublayer: the same
/// mask and the same result bit for bit (the dropped-out y rounded to y's dtype, then added in
/// fp32) from the same generator state. With `bias` ([F] fp32, F = y's last dimension) the
/// branch is the sublayer's last product without its bias: x + dropout(y + bias), where y + bias
/// is summed in fp32 and rounded to y's dtype first (as the product with its bias would round
/// it). For fp32 CPU x and an fp32 or bf16 y of x's shape, both contiguous, it is one pass, and
/// so is its backward pass (x's gradient passed on, y's masked and written in y's dtype: no
/// separate cast of the gradient to bf16; the bias gradient summed in fp32 over fixed blocks of
/// rows, the same for any thread count); otherwise the separate operations.
/// Throws c10::Error unless 0 ≤ p < 1, or when the shapes do not add or bias is not [F].
at::Tensor dropout_add(const at::Tensor& x, const at::Tensor& y, double p, bool training,
                       const at::Tensor& bias = at::Tensor());

/// dropout(relu(y + bias), p, training), the first half of a position-wise feed-forward network
/// after a product without bias: y [..., F] (fp32 or bf16), bias [F] (fp32) → y's shape and
/// dtype, with y + bias and the scaling in fp32 and one rounding to y's dtype (the same values
/// as dropout(relu(y.to(fp32) + bias)).to(y's dtype), bit for bit, from the same generator
/// state). For contiguous CPU tensors in training it is one pass, and so is its backward pass,
/// which also sums the bias gradient (in fp32, in fixed blocks of rows: the same for any thread
/// count) and needs only the output: kept elements of a positive sum are those above 0.
/// Otherwise the separate operations. Throws c10::Error unless 0 ≤ p < 1 and bias is [F].
at::Tensor bias_relu_dropout(const at::Tensor& y, const at::Tensor& bias, double p, bool training);

/// The probabilities of scaled dot-product attention (Vaswani et al. 2017, eq. 1) and their
/// dropout: `probs` = softmax(scale·scores + bias) over the last dimension, computed in fp32, and
/// `dropped` = dropout(probs, p, training), the context product's operand.
struct AttentionProbs {
  at::Tensor dropped;  ///< [N, H, T, S]; probs itself when nothing is dropped
  at::Tensor probs;    ///< [N, H, T, S]
};

/// AttentionProbs of scores [N, H, T, S] (fp32 or bf16: the raw products Q·Kᵀ) and an additive
/// fp32 bias broadcastable to [N, H, T, S] with unit stride along S (−inf masks a key: padding
/// [N, 1, 1, S], causal [T, S]) or undefined. For contiguous CPU scores in training (p < 1 −
/// 2^-17) it is one pass, and so is its backward pass (the softmax's from the saved probs, with
/// the mask recomputed from its key and the scale applied), both in scores' dtype: no fp32
/// copies of bf16 scores, and dropped = dropout(probs) bit for bit from the same generator
/// state. Otherwise the separate ATen operations, probs and dropped in fp32 (the products cast
/// them under autocast). The exponentials differ from ATen's in the last bits.
/// Throws c10::Error unless 0 ≤ p < 1, or when bias does not broadcast to scores.
AttentionProbs attention_softmax_dropout(const at::Tensor& scores, double scale, const at::Tensor& bias, double p,
                                         bool training);

}  // namespace nmt::models

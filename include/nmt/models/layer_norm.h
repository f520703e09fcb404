#pragma once
/// @file layer_norm.h
/// Layer normalisation (Ba et al. 2016) that writes its result in the dtype of the matrix
/// product it feeds. Under bf16 autocast a pre-norm Transformer sublayer computes LN(x) in fp32
/// (autocast keeps layer_norm in fp32) and the product then casts it to bf16: one more pass over
/// [B, T, d] forward, and one more for the gradient's cast back. Here the row statistics and the
/// arithmetic are fp32 and the result is rounded once to bf16; the backward pass reads the bf16
/// gradient in place.
#include <utility>

#include <ATen/ATen.h>
#include <torch/nn/modules/normalization.h>

namespace nmt::models {

/// y = (x − μ) / √(σ² + eps) · weight + bias over the last dimension of x [..., D], μ and σ²
/// (biased) per row, in fp32, y rounded once to `out_dtype` (kFloat or kBFloat16), shape of x.
/// x, weight [D] and bias [D] are fp32 CPU tensors (x strided or not). Differentiable in all
/// three: the backward pass takes the gradient in out_dtype (or fp32) and gives fp32 gradients;
/// the weight and bias gradients are summed over fixed blocks of rows, so they do not depend on
/// the number of threads. Throws c10::Error for other devices, dtypes or shapes.
at::Tensor layer_norm_cast(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps,
                           at::ScalarType out_dtype);

/// {layer_norm_cast(x, ...), x} for a pre-norm residual block x + f(LN(x)): the second output is
/// x itself (an alias made by autograd) for the residual sum, so that both uses of x lead to one
/// backward pass, which adds the residual's gradient to x's gradient as it writes it (no
/// separate addition of the two by autograd). Same arguments, values and errors as
/// layer_norm_cast.
std::pair<at::Tensor, at::Tensor> layer_norm_cast_residual(const at::Tensor& x, const at::Tensor& weight,
                                                           const at::Tensor& bias, double eps,
                                                           at::ScalarType out_dtype);

/// norm(x) as the operand of a matrix product: under bf16 autocast on the CPU (nmt's
/// AutocastGuard), for fp32 x and an affine norm over the last dimension, layer_norm_cast to
/// bf16, the dtype the product would cast it to; elsewhere norm(x) itself.
at::Tensor layer_norm_for_product(torch::nn::LayerNorm& norm, const at::Tensor& x);

/// {layer_norm_for_product(norm, x), x to add the sublayer's output to}: where that is
/// layer_norm_cast, layer_norm_cast_residual (x's two gradients summed in the norm's backward
/// pass); elsewhere {norm(x), x}.
std::pair<at::Tensor, at::Tensor> layer_norm_for_residual(torch::nn::LayerNorm& norm, const at::Tensor& x);

}  // namespace nmt::models

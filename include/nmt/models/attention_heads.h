#pragma once
/// @file attention_heads.h
/// Splitting a fused projection into the heads of multi-head attention (Vaswani et al. 2017,
/// §3.2.2), with the projection's bias added in the same pass where the heads are copied.
///
/// Why: under bf16 autocast the attention products copy each head view into a contiguous
/// tensor anyway, so the split copies the heads itself, in one pass; adding the bias there
/// replaces `addmm` (the bias copied into the product's output first, then added to by the
/// product) with a plain product, and the bias gradient is summed in the backward pass that
/// writes the projection's gradient, instead of a separate `sum` over it and a cast.
#include <vector>

#include <ATen/ATen.h>

namespace nmt::models {

/// x [B, L, n·H·d_k] (the output of n projections made by one product, e.g. n = 3 for Q, K, V)
/// → n tensors [B, H, L, d_k], differentiable in x (and in bias):
///  - without bias and copy = false: views of x (for products that multiply views as they are,
///    batched_matmul.h);
///  - without bias and copy = true: contiguous copies;
///  - with bias ([n·H·d_k], any floating dtype; the projection's bias): contiguous copies of
///    x + bias, summed in fp32 and rounded once to x's dtype (the values of
///    (x.to(fp32) + bias).to(x's dtype), bit for bit); `copy` is then ignored.
/// Copies of a contiguous fp32 or bf16 CPU x are made in one pass on ATen's threads, and so is
/// the backward pass, which writes x's gradient [B, L, n·H·d_k] in x's dtype and sums the bias
/// gradient (fp32, in fixed blocks of rows: the same for any thread count); elsewhere the
/// separate ATen operations. An output whose gradient is undefined counts as zeros.
/// Throws c10::Error when x's last dimension is not n·heads·d_k for a whole d_k ≥ 1, or bias
/// is not [n·H·d_k].
std::vector<at::Tensor> split_heads(const at::Tensor& x, int64_t n, int64_t heads, bool copy,
                                    const at::Tensor& bias = at::Tensor());

}  // namespace nmt::models

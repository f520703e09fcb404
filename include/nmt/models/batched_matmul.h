#pragma once
/// @file batched_matmul.h
/// The batched matrix products of attention (scores Q·Kᵀ and context P·V per sentence and head)
/// as one BLAS gemm call per matrix, straight on the operands' strides.
///
/// Why: with a BLAS other than MKL (Debian's LibTorch uses OpenBLAS), ATen's `bmm` multiplies
/// the items of a batch one after another through `addmm`, paying a `select`, `resolve_conj` and
/// `as_strided` per item (about 30% of a Transformer update in `nmt bench`'s profile, with `bmm`
/// itself), and `matmul` first copies a permuted view (heads split off a projection) into a
/// contiguous tensor. Here each item is one `sgemm_` call whose leading dimension is the view's
/// row stride, and the items are split over ATen's threads.
#include <ATen/ATen.h>

namespace nmt::models {

/// a·b over equal leading batch dimensions: a [..., M, K], b [..., K, N] → [..., M, N]
/// (contiguous), e.g. [B, H, T, d_k]·[B, H, d_k, S] → [B, H, T, S]. Differentiable in both
/// operands (the backward pass is two such products: grad·bᵀ and aᵀ·grad).
///
/// The BLAS path is taken for fp32 CPU tensors outside autocast whose last two dimensions have
/// unit stride in one of them (any view made by permute/transpose/narrow of a contiguous
/// tensor; others are copied first), when the process's BLAS exports `sgemm_`
/// (has_blas_batched_matmul()). Everything else (other devices and dtypes, bf16 autocast,
/// broadcast batch dimensions, empty operands) is at::matmul, so the result never depends on
/// which path ran beyond floating-point rounding.
/// Throws c10::Error when the shapes do not multiply (as at::matmul does).
at::Tensor batched_matmul(const at::Tensor& a, const at::Tensor& b);

/// Whether batched_matmul() multiplies operands like `t` (its device, dtype and the autocast
/// state) by BLAS straight on their strides, so that views need no contiguous copy; false where
/// it would be at::matmul, which copies a permuted view first.
bool batched_matmul_takes_views(const at::Tensor& t);

/// Whether `sgemm_` was found in the process (Debian's OpenBLAS or reference BLAS, MKL), i.e.
/// whether batched_matmul() can take its BLAS path at all.
bool has_blas_batched_matmul();

}  // namespace nmt::models

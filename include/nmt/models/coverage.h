#pragma once
/// @file coverage.h
/// Coverage ("doubly stochastic") regularisation of attention (Xu et al. 2015, "Show, Attend
/// and Tell", section 4.2.1): encourages every source position to receive a total attention of
/// about one over the whole output, penalising Σ_i (1 − Σ_t α_ti)².
#include <ATen/Tensor.h>

namespace nmt::models {

/// Σ_b Σ_i (1 − Σ_t α_bti)² summed over real source positions i and real target steps t only.
/// attention [B, T, S]; src_mask [B, S] and tgt_mask [B, T] bool (true = real token).
/// Returns a scalar (unweighted: the caller multiplies by λ = model.coverage_penalty).
at::Tensor coverage_penalty(const at::Tensor& attention, const at::Tensor& src_mask,
                            const at::Tensor& tgt_mask);

}  // namespace nmt::models

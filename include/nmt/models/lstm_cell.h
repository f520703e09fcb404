#pragma once
/// @file lstm_cell.h
/// The element-wise part of an LSTM cell (Hochreiter & Schmidhuber 1997, with the forget gate of
/// Gers et al. 2000, as LibTorch's LSTMCell computes it) in one pass forward and one backward.
///
/// Why: LibTorch 1.13's cell runs it as about ten ATen operators (chunk, three sigmoid_, two tanh,
/// mul, add_, mul, ...) and as many again backward, each a pass over a small [B, H] tensor, at every
/// time step of the encoder and decoder.
#include <utility>

#include <ATen/ATen.h>

namespace nmt::models {

/// gates [B, 4·H]: the pre-activations of the input, forget, cell and output gates in this order
/// (x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh); c [B, H] the previous cell state → {h', c'} with
///   c' = σ(f)·c + σ(i)·tanh(g),   h' = σ(o)·tanh(c'),
/// both [B, H] in the type ATen's promotion gives (fp32 for bf16 gates and an fp32 state, as
/// under bf16 autocast). On the CPU for fp32 gates and state, bf16 gates with an fp32 or bf16
/// state: computed in fp32, one pass each way (the backward pass reads the activated gates
/// saved in the gates' type, and recomputes tanh(c')); elsewhere LibTorch's operators.
/// Differentiable in gates and c. Throws c10::Error when the shapes do not fit.
std::pair<at::Tensor, at::Tensor> lstm_cell_pointwise(const at::Tensor& gates, const at::Tensor& c);

}  // namespace nmt::models

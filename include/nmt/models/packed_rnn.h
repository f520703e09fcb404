#pragma once
/// @file packed_rnn.h
/// One bidirectional LSTM or GRU layer over a packed batch, computed as LibTorch's at::lstm /
/// at::gru compute it on the CPU (the same products and gate sums; the LSTM's element-wise part
/// fused, lstm_cell.h, equal to LibTorch's within float rounding) but with a backward pass
/// linear in the sequence length.
///
/// Why: LibTorch 1.13's packed layer projects the whole input once ([N, G·H] for N packed
/// tokens) and takes each time step's rows with `narrow`. The backward pass of every `narrow`
/// allocates a zero tensor of the full [N, G·H] and the autograd engine adds it to the running
/// sum: two passes over the whole projection per time step, O(N·S) per layer and direction (in
/// `nmt bench` of the Multi30k RNN, `fill_` and `add` of [1614, 1024] 164 times per batch).
/// Here the steps are one `split_with_sizes`, whose backward pass concatenates the step
/// gradients once.
#include <functional>
#include <vector>

#include <ATen/ATen.h>

namespace nmt::models {

/// A bidirectional layer over packed data x [N, I] (N = Σ batch_sizes; rows of each time step
/// contiguous, longest sequences first, as in a torch PackedSequence) with batch_sizes [S]
/// (int64, CPU, non-increasing) → [N, 2·H]: the forward direction's output in [:, :H], the
/// reverse direction's in [:, H:]. Both directions start from zero states.
/// `params` holds LibTorch's weights of one bidirectional layer: w_ih [G·H, I], w_hh [G·H, H],
/// b_ih [G·H], b_hh [G·H] of the forward direction, then the same four of the reverse one (G = 4
/// for LSTM with gates i, f, g, o; 3 for GRU with r, z, n). Differentiable in x and params.
/// Throws c10::Error when params does not hold 8 tensors or the shapes do not fit.
at::Tensor packed_bidirectional_layer(const at::Tensor& x, const at::Tensor& batch_sizes, at::TensorList params,
                                      bool lstm);

/// Every layer of a bidirectional multi-layer RNN over packed data x [N, I] → [N, 2·H]:
/// packed_bidirectional_layer() per layer, with `between` applied to the input of every layer
/// after the first (dropout). `weights` is the module's all_weights() (torch::nn::LSTM or GRU,
/// bidirectional, with biases): 8 tensors per layer, in layer order.
/// Throws c10::Error when weights.size() is not 8·layers.
at::Tensor packed_bidirectional_rnn(const at::Tensor& x, const at::Tensor& batch_sizes,
                                    const std::vector<at::Tensor>& weights, int64_t layers, bool lstm,
                                    const std::function<at::Tensor(const at::Tensor&)>& between);

}  // namespace nmt::models

#include "nmt/models/packed_rnn.h"

#include <vector>

#include "nmt/models/lstm_cell.h"

namespace nmt::models {
namespace {

/// The state of one direction: h (and c for LSTM), [b, H] for the b sequences still running.
struct State {
  at::Tensor h, c;
  State rows(int64_t n) const { return {h.narrow(0, 0, n), c.defined() ? c.narrow(0, 0, n) : c}; }
};

/// One cell step from the precomputed input projection gi [b, G·H] (x·w_ihᵀ + b_ih): LibTorch
/// 1.13's GRUCell arithmetic with pre_compute_input; the LSTM's gates as LibTorch sums them, and
/// its element-wise part in one pass (lstm_cell.h).
State cell(const at::Tensor& gi, const State& s, const at::Tensor& w_hh, const at::Tensor& b_hh, bool lstm) {
  if (lstm) {
    auto [h, c] = lstm_cell_pointwise(at::linear(s.h, w_hh, b_hh).add_(gi), s.c);
    return {h, c};
  }
  const auto igates = gi.unsafe_chunk(3, 1);
  const auto hgates = at::linear(s.h, w_hh, b_hh).unsafe_chunk(3, 1);
  const auto reset = hgates[0].add_(igates[0]).sigmoid_();
  const auto update = hgates[1].add_(igates[1]).sigmoid_();
  const auto candidate = igates[2].add(hgates[2].mul_(reset)).tanh_();
  return {(s.h - candidate).mul_(update).add_(candidate), at::Tensor()};
}

/// Zero states for n sequences.
State zeros(int64_t n, int64_t H, const at::TensorOptions& options, bool lstm) {
  return {at::zeros({n, H}, options), lstm ? at::zeros({n, H}, options) : at::Tensor()};
}

State concat(const State& a, const State& b) {
  return {at::cat({a.h, b.h}), a.c.defined() ? at::cat({a.c, b.c}) : at::Tensor()};
}

/// One direction over the steps (input projections per step, `sizes` rows each) → [N, H].
/// The states start as zeros of `options` (the layer input's: fp32 under bf16 autocast, as
/// LibTorch's zero states are, so that c and h stay fp32 while the gate products are bf16).
at::Tensor direction(const std::vector<at::Tensor>& steps, const std::vector<int64_t>& sizes, const at::Tensor& w_hh,
                     const at::Tensor& b_hh, bool lstm, bool reverse, const at::TensorOptions& options) {
  const int64_t S = static_cast<int64_t>(sizes.size()), H = w_hh.size(1);
  std::vector<at::Tensor> outputs(static_cast<size_t>(S));
  State s = zeros(reverse ? sizes.back() : sizes.front(), H, options, lstm);
  for (int64_t k = 0; k < S; ++k) {
    const int64_t t = reverse ? S - 1 - k : k;
    const int64_t rows = sizes[static_cast<size_t>(t)], have = s.h.size(0);
    // Forward: sequences that ended drop out at the end; reverse: sequences that start join there.
    if (rows < have) s = s.rows(rows);
    else if (rows > have) s = concat(s, zeros(rows - have, H, options, lstm));
    s = cell(steps[static_cast<size_t>(t)], s, w_hh, b_hh, lstm);
    outputs[static_cast<size_t>(t)] = s.h;
  }
  return at::cat(outputs, 0);
}

}  // namespace

at::Tensor packed_bidirectional_layer(const at::Tensor& x, const at::Tensor& batch_sizes, at::TensorList params,
                                      bool lstm) {
  TORCH_CHECK(params.size() == 8, "packed_bidirectional_layer: expected 8 weight tensors (w_ih, w_hh, b_ih, b_hh per "
              "direction), got ", params.size());
  TORCH_CHECK(x.dim() == 2 && batch_sizes.dim() == 1 && batch_sizes.numel() > 0,
              "packed_bidirectional_layer: expected packed data [N, I] and batch sizes [S]");
  const auto cpu_sizes = batch_sizes.to(at::kCPU, at::kLong).contiguous();
  const std::vector<int64_t> sizes(cpu_sizes.data_ptr<int64_t>(), cpu_sizes.data_ptr<int64_t>() + cpu_sizes.numel());
  std::vector<at::Tensor> outputs;
  for (int d = 0; d < 2; ++d) {
    const auto& w_ih = params[4 * d];
    const auto& w_hh = params[4 * d + 1];
    const auto& b_ih = params[4 * d + 2];
    const auto& b_hh = params[4 * d + 3];
    // All steps' input projections in one product; one split, whose backward is one concatenation.
    const auto steps = at::linear(x, w_ih, b_ih).split_with_sizes(sizes, 0);
    outputs.push_back(direction(steps, sizes, w_hh, b_hh, lstm, /*reverse=*/d == 1, x.options()));
  }
  return at::cat(outputs, -1);
}

at::Tensor packed_bidirectional_rnn(const at::Tensor& x, const at::Tensor& batch_sizes,
                                    const std::vector<at::Tensor>& weights, int64_t layers, bool lstm,
                                    const std::function<at::Tensor(const at::Tensor&)>& between) {
  TORCH_CHECK(layers > 0 && static_cast<int64_t>(weights.size()) == 8 * layers, "packed_bidirectional_rnn: expected 8 "
              "weight tensors per bidirectional layer (", layers, " layers), got ", weights.size());
  auto y = x;
  for (int64_t l = 0; l < layers; ++l) {
    if (l > 0) y = between(y);
    y = packed_bidirectional_layer(y, batch_sizes, at::TensorList(weights.data() + 8 * l, 8), lstm);
  }
  return y;
}

}  // namespace nmt::models

#pragma once
/// @file adam.h
/// Adam (Kingma & Ba 2015) in one pass over each parameter's elements: the update that
/// torch::optim::Adam makes (L2 weight decay added to the gradient, bias-corrected moments,
/// ε added to the corrected √v), with the same state, so that checkpoints load into either.
/// LibTorch's Adam runs eight tensor operations per parameter (and two temporaries), each a pass
/// over memory; here one loop reads the parameter, gradient and both moments once and writes
/// them back once, on all of ATen's threads.
#include <vector>

#include <torch/optim/adam.h>

namespace nmt::train {

/// torch::optim::Adam with a fused CPU step. Parameters that are fp32, contiguous, on the CPU,
/// with a dense gradient of the same layout are updated by the fused loop (amsgrad off); when
/// any parameter is not (CUDA, other dtypes, amsgrad), the whole step is LibTorch's.
/// Agrees with torch::optim::Adam to fp32 rounding (one fused expression instead of rounded
/// intermediate tensors), not bit for bit.
class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;

  /// One update (gradients as they are). `closure` as for torch::optim::Optimizer::step.
  at::Tensor step(LossClosure closure = nullptr) override;

  /// One update as if every gradient were multiplied by `grad_scale` first (e.g. the factor of
  /// gradient-norm clipping), without writing the scaled gradients. Gradients are left as they
  /// are on the fused path, scaled in place on LibTorch's.
  void step_scaled(double grad_scale);

  /// Drops every parameter's gradient, as PyTorch's zero_grad(set_to_none=True) (LibTorch 1.13's
  /// zero_grad only zeroes them): the next backward pass hands its gradient tensors to the
  /// parameters instead of adding them to zeros, a fill and an addition per parameter saved.
  /// A parameter that then gets no gradient keeps none, and `step` leaves it alone.
  void clear_gradients();

 private:
  /// Whether every parameter with a gradient can take the fused loop.
  bool fusable() const;
};

/// The global L2 norm of the gradients of `params` (those without a gradient left out), computed
/// as torch::nn::utils::clip_grad_norm_ computes it (the norm of the per-tensor norms), without
/// modifying the gradients; 0 when no parameter has a gradient.
double gradient_norm(const std::vector<at::Tensor>& params);

/// The factor that clips a gradient of L2 norm `norm` to `max_norm`: min(1, max_norm / (norm +
/// 1e-6)), as torch::nn::utils::clip_grad_norm_ multiplies by: 0 for an infinite norm, NaN for
/// a NaN norm (the update then spoils the weights, as LibTorch's would).
double clip_factor(double norm, double max_norm);

}  // namespace nmt::train

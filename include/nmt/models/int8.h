#pragma once
/// @file int8.h
/// int8 decoding: dynamic quantisation of the linear layers, as PyTorch's `quantize_dynamic`
/// (Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient
/// Integer-Arithmetic-Only Inference"). Each weight matrix is stored once in int8 with one
/// symmetric scale per output row (max |w| / 127); at each call the input is quantised per tensor
/// to uint8 from its own range, the product runs in integers through LibTorch's quantized engine
/// (FBGEMM, or oneDNN where FBGEMM is absent, as in Debian's LibTorch), and the output is fp32.
/// On CPUs without VNNI instructions the inputs use 7 bits (`reduce_range`), since their
/// 8-bit multiply-add saturates at 16 bits. For decoding only: training always uses fp32 weights.
#include <memory>
#include <string>

#include <torch/nn/modules/linear.h>

namespace nmt::models {

/// The quantized engine int8 decoding uses on this LibTorch ("fbgemm" or "onednn"), or "" when
/// it has neither (then pack_int8 throws).
std::string int8_engine();

/// Whether the CPU has 8-bit integer multiply-add with 32-bit accumulation (AVX512-VNNI,
/// AVX-VNNI or AMX-INT8, from /proc/cpuinfo). Without it int8 products are no faster than fp32
/// ones through OpenBLAS (README, int8 decoding).
bool int8_fast_on_this_cpu();

/// A weight matrix packed in int8 for one engine (opaque; defined in int8.cpp).
struct Int8Weights;

/// Packs weight [N, K] (floating point, any device: it is packed on the CPU) with bias [N]
/// (undefined: none). Throws std::runtime_error when this LibTorch has no int8 engine.
std::shared_ptr<const Int8Weights> pack_int8(const at::Tensor& weight, const at::Tensor& bias);

/// x [..., K] (CPU, fp32) → [..., N] fp32: x·Wᵀ + b with x quantised per tensor and W in int8.
at::Tensor int8_linear(const at::Tensor& x, const Int8Weights& weights);

/// The linear layer of `nmt`'s models: torch::nn::Linear (same parameters and names, so stored
/// checkpoints load unchanged) that can decode with int8 weights (set_int8). In training mode it
/// always computes in fp32.
class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  /// x [..., in] → [..., out].
  at::Tensor forward(const at::Tensor& x);
  /// true: from now on (in eval mode) multiply with int8 weights packed from the current ones;
  /// false: fp32 again. Throws as pack_int8.
  void set_int8(bool on);
  bool int8() const { return int8_ != nullptr; }

 private:
  std::shared_ptr<const Int8Weights> int8_;
};
TORCH_MODULE(Linear);

/// A tied output layer x·Eᵀ + b (E the target embedding, not a module of its own), with the
/// int8 path of LinearImpl.
class TiedProjection {
 public:
  /// x [..., E], weight [V, E], bias [V] → [..., V]; int8 when set and not `training`.
  at::Tensor operator()(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, bool training) const;
  /// As LinearImpl::set_int8, for these weight and bias.
  void set_int8(bool on, const at::Tensor& weight, const at::Tensor& bias);

 private:
  std::shared_ptr<const Int8Weights> int8_;
};

/// set_int8(on) on every models::Linear in `module` and its submodules.
void set_int8_linear_layers(torch::nn::Module& module, bool on);

}  // namespace nmt::models

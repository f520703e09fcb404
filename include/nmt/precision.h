#pragma once
/// @file precision.h
/// Mixed precision: bf16 matrix products with fp32 master weights, optimizer state, softmax,
/// log-softmax, layer norm, losses and reductions (LibTorch autocast; Micikevicius et al. 2018,
/// "Mixed Precision Training", with bf16 instead of fp16, which needs no loss scaling).
///
/// Under autocast the linear layers, matrix products (attention) and convolutions of every model
/// run in bf16; the models upcast attention scores and output logits to fp32 before (log-)softmax,
/// and the residual stream stays fp32 (a bf16 product added to it gives fp32), so layer norms
/// see fp32. LSTM/GRU layers and cells run as LibTorch's composite implementations, whose gate
/// products go through autocast (bf16); their states come out fp32.
#include <functional>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace nmt {

/// kInt8 is for decoding only: fp32 computation with the linear layers in int8 (models/int8.h).
enum class Precision { kFp32, kBf16, kInt8 };

/// "fp32", "bf16" or "int8".
const char* precision_name(Precision precision);

/// Matrix-product throughput in this process (its thread pools as set), GFLOP/s.
struct GemmCeilings {
  double fp32_gflops = 0;
  double bf16_gflops = 0;
};

/// Times n×n·n×n products on `device` in fp32 and in bf16, about `seconds` each (after a
/// warm-up product), and returns both rates.
GemmCeilings measure_gemm(c10::Device device, int64_t n = 512, double seconds = 0.1);

/// The CPU's bf16 matrix support from /proc/cpuinfo's flags: "amx_bf16", "avx512_bf16", or ""
/// when it has neither (bf16 products then run emulated, several times slower than fp32).
std::string cpu_bf16_feature();

/// The CPU's "model name" from /proc/cpuinfo ("unknown CPU" when unreadable).
std::string cpu_model_name();

/// A resolved precision and why it was chosen (logged by train and translate).
struct PrecisionChoice {
  Precision precision = Precision::kFp32;
  std::string reason;
};

/// Resolves a precision setting ("auto", "fp32" or "bf16"; ConfigError naming `key` otherwise).
/// "fp32"/"bf16" are taken as given. "auto" picks bf16 only when the probe shows bf16 products
/// faster than fp32 and, on CPU, `cpu_feature` (cpu_bf16_feature()) is non-empty; `probe` is
/// called only for "auto" on such a device. Tests inject both.
PrecisionChoice choose_precision(const std::string& setting, c10::Device device, const std::string& key,
                                 const std::string& cpu_feature, const std::function<GemmCeilings()>& probe);

/// choose_precision() with this machine's CPU flags and a 256×256 measure_gemm() probe.
PrecisionChoice choose_precision(const std::string& setting, c10::Device device, const std::string& key);

/// While alive and `precision` is kBf16, runs the matrix products on `device` in bf16 (autocast,
/// thread-local); restores the previous autocast state when destroyed. Does nothing for kFp32.
class AutocastGuard {
 public:
  AutocastGuard(Precision precision, c10::Device device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool was_enabled_ = false;
  int previous_dtype_ = 0;  ///< c10::ScalarType as int (no ATen header here)
};

/// Whether autocast is on for `device`'s type in this thread (inside an AutocastGuard for bf16).
bool autocast_enabled(c10::Device device);

/// `t` in fp32 when it is bf16 or fp16 (an autocast product); other tensors (fp32, fp64, integer,
/// undefined) as they are. The models apply it to attention scores and logits before (log-)softmax.
at::Tensor at_least_fp32(const at::Tensor& t);

/// `t` as autocast would pass it to a matrix product: in the autocast dtype (bf16) when autocast
/// is on for t's device and t is fp32, else `t` itself. Weights (leaf tensors that require grad)
/// go through autocast's cache, so a weight used in pieces (narrowed views) is cast once per
/// autocast region, and an activation several products read (the encoder output that every
/// decoder layer projects) can be cast once instead of by every product. Differentiable.
at::Tensor autocast_operand(const at::Tensor& t);

/// While alive, autocast is off on CPU and CUDA (for code that must compute in fp32, such as the
/// fused latent-alignment loss with its own backward); restores the previous state.
class AutocastSuspend {
 public:
  AutocastSuspend();
  ~AutocastSuspend();
  AutocastSuspend(const AutocastSuspend&) = delete;
  AutocastSuspend& operator=(const AutocastSuspend&) = delete;

 private:
  bool cpu_ = false, cuda_ = false;
};

}  // namespace nmt

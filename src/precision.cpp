#include "nmt/precision.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "nmt/config.h"

namespace nmt {
namespace {

// LibTorch 2.4 replaced the per-device autocast functions by ones taking the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool autocast_enabled(bool cuda) { return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU); }
void set_autocast(bool cuda, bool on) { at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on); }
at::ScalarType autocast_dtype(bool cuda) { return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU); }
void set_autocast_dtype(bool cuda, at::ScalarType t) { at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, t); }
#else
bool autocast_enabled(bool cuda) { return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
void set_autocast(bool cuda, bool on) { cuda ? at::autocast::set_enabled(on) : at::autocast::set_cpu_enabled(on); }
at::ScalarType autocast_dtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void set_autocast_dtype(bool cuda, at::ScalarType t) {
  cuda ? at::autocast::set_autocast_gpu_dtype(t) : at::autocast::set_autocast_cpu_dtype(t);
}
#endif

}  // namespace

bool autocast_enabled(c10::Device device) { return autocast_enabled(device.is_cuda()); }

namespace {

double gemm_rate(c10::Device device, at::ScalarType dtype, int64_t n, double seconds) {
  // Values from arange, not the random generator (whose state a resumed run must repeat).
  const auto options = at::TensorOptions().device(device).dtype(at::kFloat);
  auto a = at::arange(n * n, options).remainder_(7).sub_(3).mul_(0.1).view({n, n}).to(dtype);
  auto b = a.t().contiguous(), c = at::mm(a, b);  // warm-up
  c.sum().item<float>();
  using Clock = std::chrono::steady_clock;
  const auto begin = Clock::now();
  int64_t products = 0;
  double elapsed = 0;
  do {  // one product at a time: a slow (emulated) bf16 product at a large n takes seconds
    at::mm_out(c, a, b);
    ++products;
    c.sum().item<float>();  // waits for a GPU
    elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  } while (elapsed < seconds);
  return 2.0 * static_cast<double>(n) * n * n * products / elapsed / 1e9;
}

std::string cpuinfo_field(const std::string& name) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, name.size(), name) != 0) continue;
    const auto colon = line.find(':');
    if (colon != std::string::npos) return line.substr(colon + 1 + (colon + 1 < line.size() && line[colon + 1] == ' '));
  }
  return "";
}

std::string format_rate(double gflops) {
  std::ostringstream out;
  out.precision(0);
  out << std::fixed << gflops;
  return out.str();
}

}  // namespace

at::Tensor at_least_fp32(const at::Tensor& t) {
  if (!t.defined()) return t;
  const auto type = t.scalar_type();
  return type == at::kBFloat16 || type == at::kHalf ? t.to(at::kFloat) : t;
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::kBf16: return "bf16";
    case Precision::kInt8: return "int8";
    default: return "fp32";
  }
}

GemmCeilings measure_gemm(c10::Device device, int64_t n, double seconds) {
  at::NoGradGuard no_grad;
  return {gemm_rate(device, at::kFloat, n, seconds), gemm_rate(device, at::kBFloat16, n, seconds)};
}

std::string cpu_bf16_feature() {
  std::istringstream flags(cpuinfo_field("flags"));
  bool amx = false, avx512 = false;
  for (std::string flag; flags >> flag;) {
    amx = amx || flag == "amx_bf16";
    avx512 = avx512 || flag == "avx512_bf16";
  }
  return amx ? "amx_bf16" : avx512 ? "avx512_bf16" : "";
}

std::string cpu_model_name() {
  const auto name = cpuinfo_field("model name");
  return name.empty() ? "unknown CPU" : name;
}

PrecisionChoice choose_precision(const std::string& setting, c10::Device device, const std::string& key,
                                 const std::string& cpu_feature, const std::function<GemmCeilings()>& probe) {
  if (setting == "fp32") return {Precision::kFp32, key + ": fp32 as configured"};
  if (setting == "bf16") return {Precision::kBf16, key + ": bf16 as configured"};
  if (setting != "auto") throw ConfigError(key + ": expected auto | fp32 | bf16, got '" + setting + "'");
  if (device.is_cpu() && cpu_feature.empty())
    return {Precision::kFp32, key + " auto: fp32, this CPU has neither AMX nor AVX512-BF16"};
  const auto rates = probe();
  const std::string measured = "bf16 products " + format_rate(rates.bf16_gflops) + " GFLOP/s vs fp32 " +
                               format_rate(rates.fp32_gflops);
  const std::string unit = device.is_cpu() ? " (" + cpu_feature + ")" : " (" + device.str() + ")";
  if (rates.bf16_gflops > rates.fp32_gflops) return {Precision::kBf16, key + " auto: bf16" + unit + ", " + measured};
  return {Precision::kFp32, key + " auto: fp32" + unit + ", " + measured};
}

PrecisionChoice choose_precision(const std::string& setting, c10::Device device, const std::string& key) {
  return choose_precision(setting, device, key, device.is_cpu() ? cpu_bf16_feature() : std::string("cuda"),
                          [device] { return measure_gemm(device, 256, 0.05); });
}

AutocastGuard::AutocastGuard(Precision precision, c10::Device device) {
  if (precision != Precision::kBf16) return;
  active_ = true;
  cuda_ = device.is_cuda();
  was_enabled_ = autocast_enabled(cuda_);
  previous_dtype_ = static_cast<int>(autocast_dtype(cuda_));
  set_autocast(cuda_, true);
  set_autocast_dtype(cuda_, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // Casts of the weights are cached while autocast is on; drop them with the outermost guard.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(cuda_, was_enabled_);
  set_autocast_dtype(cuda_, static_cast<at::ScalarType>(previous_dtype_));
}

at::Tensor autocast_operand(const at::Tensor& t) {
  if (!t.defined() || t.scalar_type() != at::kFloat) return t;
  const bool cuda = t.is_cuda();
  if (!(cuda || t.is_cpu()) || !autocast_enabled(cuda)) return t;
  return at::autocast::cached_cast(autocast_dtype(cuda), t, cuda ? c10::DeviceType::CUDA : c10::DeviceType::CPU);
}

AutocastSuspend::AutocastSuspend() : cpu_(autocast_enabled(false)), cuda_(autocast_enabled(true)) {
  if (cpu_) set_autocast(false, false);
  if (cuda_) set_autocast(true, false);
}

AutocastSuspend::~AutocastSuspend() {
  if (cpu_) set_autocast(false, true);
  if (cuda_) set_autocast(true, true);
}

}  // namespace nmt

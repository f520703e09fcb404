#include "nmt/models/int8.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include "nmt/runtime.h"

namespace nmt::models {
namespace {

/// The first "flags" line of /proc/cpuinfo names a VNNI or AMX-INT8 instruction set.
bool cpu_has_vnni() {
  static const bool has = [] {
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("flags", 0) != 0) continue;
      line += ' ';
      for (const char* flag : {" avx512_vnni ", " avx_vnni ", " amx_int8 "})
        if (line.find(flag) != std::string::npos) return true;
      return false;
    }
    return false;
  }();
  return has;
}

/// Selects the engine once (process-wide, as LibTorch's setting is) and says which it is.
c10::QEngine select_engine() {
  static const c10::QEngine engine = [] {
    // Before packing creates the first primitive, for programs that skip nmt::tune_process.
    bound_onednn_primitive_cache();
    const auto supported = at::globalContext().supportedQEngines();
    auto has = [&](c10::QEngine e) { return std::find(supported.begin(), supported.end(), e) != supported.end(); };
    for (auto e : {c10::QEngine::FBGEMM, c10::QEngine::ONEDNN})
      if (has(e)) {
        at::globalContext().setQEngine(e);
        return e;
      }
    return c10::QEngine::NoQEngine;
  }();
  return engine;
}

c10::OperatorHandle op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

}  // namespace

struct Int8Weights {
  c10::IValue packed;         ///< LinearPackedParamsBase of the engine
  int64_t out_features = 0;
  bool reduce_range = false;  ///< 7-bit inputs
};

bool int8_fast_on_this_cpu() { return cpu_has_vnni(); }

std::string int8_engine() {
  switch (select_engine()) {
    case c10::QEngine::FBGEMM: return "fbgemm";
    case c10::QEngine::ONEDNN: return "onednn";
    default: return "";
  }
}

std::shared_ptr<const Int8Weights> pack_int8(const at::Tensor& weight, const at::Tensor& bias) {
  const auto engine = int8_engine();
  if (engine.empty())
    throw std::runtime_error("int8 decoding needs LibTorch's FBGEMM or oneDNN quantized engine; this LibTorch has neither");
  at::NoGradGuard no_grad;
  const auto w = weight.detach().to(at::kCPU, at::kFloat).contiguous();  // [N, K]
  const auto scales = (w.abs().amax(1) / 127.0).clamp_min(1e-8).to(at::kDouble);
  const auto q = at::quantize_per_channel(w, scales, at::zeros({w.size(0)}, at::kLong), 0, at::kQInt8);
  torch::jit::Stack stack{q, bias.defined() ? c10::optional<at::Tensor>(bias.detach().to(at::kCPU, at::kFloat).contiguous())
                                            : c10::optional<at::Tensor>()};
  op("quantized::linear_prepack").callBoxed(&stack);
  auto packed = std::make_shared<Int8Weights>();
  packed->packed = std::move(stack.at(0));
  packed->out_features = w.size(0);
  // FBGEMM's kernels assume 7-bit inputs (PyTorch's default for it); oneDNN needs them only
  // without VNNI.
  packed->reduce_range = engine == "fbgemm" || !cpu_has_vnni();
  return packed;
}

at::Tensor int8_linear(const at::Tensor& x, const Int8Weights& weights) {
  const auto rows = x.reshape({-1, x.size(-1)}).to(at::kFloat).contiguous();
  torch::jit::Stack stack{rows, weights.packed, weights.reduce_range};
  op("quantized::linear_dynamic").callBoxed(&stack);
  auto sizes = x.sizes().vec();
  sizes.back() = weights.out_features;
  return stack.at(0).toTensor().view(sizes);
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  if (int8_ && !is_training()) return int8_linear(x, *int8_);
  // at::linear, not torch::nn::LinearImpl::forward: LibTorch 1.13's F::linear multiplies by the
  // view weight.t() itself, and autocast, which caches only the bf16 casts of whole leaf
  // tensors, then cast every weight again in every call (each decoding step, each update).
  return at::linear(x, weight, bias);
}

void LinearImpl::set_int8(bool on) { int8_ = on ? pack_int8(weight, bias) : nullptr; }

at::Tensor TiedProjection::operator()(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                                      bool training) const {
  if (int8_ && !training) return int8_linear(x, *int8_);
  return at::linear(x, weight, bias);
}

void TiedProjection::set_int8(bool on, const at::Tensor& weight, const at::Tensor& bias) {
  int8_ = on ? pack_int8(weight, bias) : nullptr;
}

void set_int8_linear_layers(torch::nn::Module& module, bool on) {
  for (const auto& m : module.modules(/*include_self=*/true))
    if (auto* linear = dynamic_cast<LinearImpl*>(m.get())) linear->set_int8(on);
}

}  // namespace nmt::models

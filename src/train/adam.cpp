// Compiled with -fno-math-errno (sqrt need not set errno, so the loop below is vectorised) and
// -ffp-contract=off (the vector body and the scalar remainder round alike), without the
// precompiled header (CMakeLists.txt).
#include "nmt/train/adam.h"

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>

#include <ATen/Parallel.h>
#include <ATen/ATen.h>
#include <ATen/record_function.h>

#include "nmt/simd.h"

namespace nmt::train {
namespace {

/// The scalars of one parameter's update, rounded to fp32 as ATen rounds a Scalar operand.
struct Coefficients {
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float weight_decay;
  float grad_scale;
  float sqrt_bias_correction2;  // √(1 − β2^t)
  float eps;
  float neg_step_size;  // −lr / (1 − β1^t)
};

/// For i in [0, n): g = grad·scale + wd·p; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g·g;
/// p += −step·m / (√v / √(1−β2^t) + ε), the order of torch::optim::Adam's operations.
NMT_VECTOR_CLONES
void adam_range(float* __restrict p, const float* __restrict grad, float* __restrict m, float* __restrict v,
                int64_t n, const Coefficients& k) {
  const Coefficients c = k;  // locals: the compiler need not reload them through the reference
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] * c.grad_scale + c.weight_decay * p[i];
    const float mi = m[i] * c.beta1 + c.one_minus_beta1 * g;
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const float denom = __builtin_sqrtf(vi) / c.sqrt_bias_correction2 + c.eps;
    p[i] += c.neg_step_size * (mi / denom);
  }
}

/// The key of a parameter's entry in Optimizer::state_, as LibTorch's Adam makes it (a string
/// of the TensorImpl's address in LibTorch 1.x, the address itself in newer releases).
template <class Key>
Key state_key(c10::TensorImpl* impl) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream out;  // what c10::guts::to_string does
    out << impl;
    return out.str();
  } else {
    return impl;
  }
}

bool fusable_tensor(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.layout() == at::kStrided && t.scalar_type() == at::kFloat &&
         t.is_contiguous();
}

}  // namespace

bool FusedAdam::fusable() const {
  using Key = typename std::decay_t<decltype(state_)>::key_type;
  for (const auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
    for (const auto& p : group.params()) {
      const auto& grad = p.grad();
      if (!grad.defined()) continue;
      if (options.amsgrad() || !fusable_tensor(p) || !fusable_tensor(grad) || grad.sizes() != p.sizes()) return false;
      auto it = state_.find(state_key<Key>(p.unsafeGetTensorImpl()));
      if (it == state_.end()) continue;
      const auto& state = static_cast<const torch::optim::AdamParamState&>(*it->second);
      if (!fusable_tensor(state.exp_avg()) || !fusable_tensor(state.exp_avg_sq()) ||
          state.exp_avg().sizes() != p.sizes() || state.exp_avg_sq().sizes() != p.sizes())
        return false;
    }
  }
  return true;
}

at::Tensor FusedAdam::step(LossClosure closure) {
  if (!fusable()) return torch::optim::Adam::step(std::move(closure));
  at::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  step_scaled(1.0);
  return loss;
}

void FusedAdam::step_scaled(double grad_scale) {
  RECORD_USER_SCOPE("nmt::adam_step");
  at::NoGradGuard no_grad;
  if (!fusable()) {
    for (auto& group : param_groups_)
      for (auto& p : group.params())
        if (p.grad().defined() && grad_scale != 1.0) p.mutable_grad().mul_(grad_scale);
    torch::optim::Adam::step();
    return;
  }
  using Key = typename std::decay_t<decltype(state_)>::key_type;
  constexpr int64_t kGrain = 32768;  // elements per task
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamOptions&>(group.options());
    for (auto& p : group.params()) {
      const auto& grad = p.grad();
      if (!grad.defined()) continue;
      const Key key = state_key<Key>(p.unsafeGetTensorImpl());
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto fresh = std::make_unique<torch::optim::AdamParamState>();
        fresh->step(0);
        fresh->exp_avg(at::zeros_like(p, at::MemoryFormat::Contiguous));
        fresh->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Contiguous));
        it = state_.emplace(key, std::move(fresh)).first;
      }
      auto& state = static_cast<torch::optim::AdamParamState&>(*it->second);
      state.step(state.step() + 1);
      const auto [beta1, beta2] = options.betas();
      const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(state.step()));
      const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(state.step()));
      const Coefficients k{static_cast<float>(beta1),
                           static_cast<float>(1 - beta1),
                           static_cast<float>(beta2),
                           static_cast<float>(1 - beta2),
                           static_cast<float>(options.weight_decay()),
                           static_cast<float>(grad_scale),
                           static_cast<float>(std::sqrt(bias_correction2)),
                           static_cast<float>(options.eps()),
                           static_cast<float>(-options.lr() / bias_correction1)};
      float* w = p.data_ptr<float>();
      const float* g = grad.data_ptr<float>();
      float* m = state.exp_avg().data_ptr<float>();
      float* v = state.exp_avg_sq().data_ptr<float>();
      at::parallel_for(0, p.numel(), kGrain, [&](int64_t i0, int64_t i1) {
        adam_range(w + i0, g + i0, m + i0, v + i0, i1 - i0, k);
      });
    }
  }
}

void FusedAdam::clear_gradients() {
  for (auto& group : param_groups_)
    for (auto& p : group.params()) p.mutable_grad() = at::Tensor();
}

double gradient_norm(const std::vector<at::Tensor>& params) {
  RECORD_USER_SCOPE("nmt::gradient_norm");
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().norm(2));
  if (norms.empty()) return 0.0;
  return (norms.size() == 1 ? norms[0] : at::stack(norms).norm(2)).item<double>();
}

double clip_factor(double norm, double max_norm) {
  const double factor = max_norm / (norm + 1e-6);
  return std::isnan(factor) || factor < 1.0 ? factor : 1.0;
}

}  // namespace nmt::train

#include "nmt/models/layer_norm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include "nmt/precision.h"
#include "nmt/simd.h"

namespace nmt::models {
namespace {

using simd::f32x16;
using simd::kLanes;

constexpr int64_t kBlockRows = 32;  // rows per block of the weight and bias gradient sums

/// Rows [r0, r1) of x [N, D]: their mean and 1/√(σ² + eps) into mean[r], rstd[r], and
/// y = (x − μ)·rstd·weight + bias in Out (float or bf16 bits).
template <class Out>
NMT_INLINE void forward_rows(const float* x, const float* weight, const float* bias, Out* y, float* mean, float* rstd,
                             int64_t r0, int64_t r1, int64_t D, float eps) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * D;
    f32x16 sum = simd::splat(0.0f);
    for (int64_t j = 0; j < D; j += kLanes) sum += simd::load(xr + j, std::min(kLanes, D - j), 0.0f);
    const float mu = static_cast<float>(simd::lanes_sum(sum) / static_cast<double>(D));
    f32x16 squares = simd::splat(0.0f);
    for (int64_t j = 0; j < D; j += kLanes) {
      const f32x16 d = simd::load(xr + j, std::min(kLanes, D - j), mu) - mu;  // missing lanes: 0
      squares += d * d;
    }
    const float var = static_cast<float>(simd::lanes_sum(squares) / static_cast<double>(D));
    const float rs = 1.0f / std::sqrt(var + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (int64_t j = 0; j < D; j += kLanes) {
      const int64_t n = std::min(kLanes, D - j);
      const f32x16 v = (simd::load(xr + j, n, mu) - mu) * rs * simd::load(weight + j, n, 0.0f) + simd::load(bias + j, n, 0.0f);
      simd::store(y + r * D + j, v, n);
    }
  }
}

NMT_VECTOR_CLONES
void forward_fp32(const float* x, const float* w, const float* b, float* y, float* mean, float* rstd, int64_t r0,
                  int64_t r1, int64_t D, float eps) {
  forward_rows(x, w, b, y, mean, rstd, r0, r1, D, eps);
}

NMT_VECTOR_CLONES
void forward_bf16(const float* x, const float* w, const float* b, uint16_t* y, float* mean, float* rstd, int64_t r0,
                  int64_t r1, int64_t D, float eps) {
  forward_rows(x, w, b, y, mean, rstd, r0, r1, D, eps);
}

/// Rows [r0, r1) of the backward pass: with x̂ = (x − μ)·rstd and g = dy·weight,
/// dx = rstd·(g − mean(g) − x̂·mean(g·x̂)) (+ dres [N, D], the gradient of x's other use, when
/// not null); Σ dy·x̂ and Σ dy over the rows added to dweight[D] and dbias[D] (this block's sums).
template <class Grad>
NMT_INLINE void backward_rows(const Grad* dy, const float* x, const float* weight, const float* mean, const float* rstd,
                              const float* dres, float* dx, float* dweight, float* dbias, int64_t r0, int64_t r1,
                              int64_t D) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * D;
    const Grad* dyr = dy + r * D;
    const float mu = mean[r], rs = rstd[r];
    f32x16 sum_g = simd::splat(0.0f), sum_gx = simd::splat(0.0f);
    for (int64_t j = 0; j < D; j += kLanes) {
      const int64_t n = std::min(kLanes, D - j);
      const f32x16 d = simd::load(dyr + j, n, 0.0f);
      const f32x16 xhat = (simd::load(xr + j, n, mu) - mu) * rs;
      const f32x16 g = d * simd::load(weight + j, n, 0.0f);
      sum_g += g;
      sum_gx += g * xhat;
      simd::store(dweight + j, simd::load(dweight + j, n, 0.0f) + d * xhat, n);
      simd::store(dbias + j, simd::load(dbias + j, n, 0.0f) + d, n);
    }
    const float mean_g = static_cast<float>(simd::lanes_sum(sum_g) / static_cast<double>(D));
    const float mean_gx = static_cast<float>(simd::lanes_sum(sum_gx) / static_cast<double>(D));
    for (int64_t j = 0; j < D; j += kLanes) {
      const int64_t n = std::min(kLanes, D - j);
      const f32x16 xhat = (simd::load(xr + j, n, mu) - mu) * rs;
      const f32x16 g = simd::load(dyr + j, n, 0.0f) * simd::load(weight + j, n, 0.0f);
      const f32x16 d = (g - mean_g - xhat * mean_gx) * rs;
      simd::store(dx + r * D + j, dres ? d + simd::load(dres + r * D + j, n, 0.0f) : d, n);
    }
  }
}

NMT_VECTOR_CLONES
void backward_fp32(const float* dy, const float* x, const float* w, const float* mean, const float* rstd,
                   const float* dres, float* dx, float* dw, float* db, int64_t r0, int64_t r1, int64_t D) {
  backward_rows(dy, x, w, mean, rstd, dres, dx, dw, db, r0, r1, D);
}

NMT_VECTOR_CLONES
void backward_bf16(const uint16_t* dy, const float* x, const float* w, const float* mean, const float* rstd,
                   const float* dres, float* dx, float* dw, float* db, int64_t r0, int64_t r1, int64_t D) {
  backward_rows(dy, x, w, mean, rstd, dres, dx, dw, db, r0, r1, D);
}

int64_t rows_per_task(int64_t D) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, D)); }

/// {LN(x)} or, with `residual`, {LN(x), x}: x returned as well (autograd makes it an alias), so
/// that the gradient of x's other use comes to this backward pass, which adds it to dx as it
/// writes it.
struct LayerNormCast : torch::autograd::Function<LayerNormCast> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in,
                                                const at::Tensor& weight, const at::Tensor& bias, double eps,
                                                at::ScalarType out_dtype, bool residual) {
    RECORD_USER_SCOPE("nmt::layer_norm_cast");
    const auto x = x_in.contiguous();
    const int64_t D = x.size(-1), N = x.numel() / std::max<int64_t>(1, D);
    auto y = at::empty(x.sizes(), x.options().dtype(out_dtype));
    auto mean = at::empty({N}, x.options()), rstd = at::empty({N}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* w = weight.data_ptr<float>();
    const float* b = bias.data_ptr<float>();
    float* mp = mean.data_ptr<float>();
    float* rp = rstd.data_ptr<float>();
    const auto e = static_cast<float>(eps);
    if (out_dtype == at::kBFloat16) {
      auto* yp = reinterpret_cast<uint16_t*>(y.data_ptr<at::BFloat16>());
      at::parallel_for(0, N, rows_per_task(D), [&](int64_t r0, int64_t r1) { forward_bf16(xp, w, b, yp, mp, rp, r0, r1, D, e); });
    } else {
      float* yp = y.data_ptr<float>();
      at::parallel_for(0, N, rows_per_task(D), [&](int64_t r0, int64_t r1) { forward_fp32(xp, w, b, yp, mp, rp, r0, r1, D, e); });
    }
    ctx->save_for_backward({x, weight, mean, rstd});
    if (residual) return {y, x_in};
    return {y};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_USER_SCOPE("nmt::layer_norm_cast_backward");
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& weight = saved[1];
    at::Tensor dres;  // the gradient of the residual alias, added to dx
    if (grads.size() > 1 && grads[1].defined()) dres = grads[1].to(at::kFloat).contiguous();
    auto dy = grads[0];
    if (!dy.defined()) return {dres, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    if (dy.scalar_type() != at::kBFloat16 && dy.scalar_type() != at::kFloat) dy = dy.to(at::kFloat);
    dy = dy.contiguous();
    const int64_t D = x.size(-1), N = x.numel() / std::max<int64_t>(1, D);
    auto dx = at::empty_like(x);
    const int64_t blocks = (N + kBlockRows - 1) / kBlockRows;
    auto partial = at::zeros({2, std::max<int64_t>(1, blocks), D}, x.options());  // [Σ dy·x̂ | Σ dy] per block
    const float* xp = x.data_ptr<float>();
    const float* w = weight.data_ptr<float>();
    const float* mp = saved[2].data_ptr<float>();
    const float* rp = saved[3].data_ptr<float>();
    float* dxp = dx.data_ptr<float>();
    const float* drp = dres.defined() ? dres.data_ptr<float>() : nullptr;
    float* dw = partial.data_ptr<float>();
    float* db = dw + std::max<int64_t>(1, blocks) * D;
    const bool bf16 = dy.scalar_type() == at::kBFloat16;
    const void* dyp = bf16 ? static_cast<const void*>(dy.data_ptr<at::BFloat16>()) : dy.data_ptr<float>();
    const int64_t grain = std::max<int64_t>(1, rows_per_task(D) / kBlockRows);
    at::parallel_for(0, blocks, grain, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t r0 = k * kBlockRows, r1 = std::min(N, r0 + kBlockRows);
        if (bf16)
          backward_bf16(static_cast<const uint16_t*>(dyp), xp, w, mp, rp, drp, dxp, dw + k * D, db + k * D, r0, r1, D);
        else
          backward_fp32(static_cast<const float*>(dyp), xp, w, mp, rp, drp, dxp, dw + k * D, db + k * D, r0, r1, D);
      }
    });
    auto sums = partial.sum(1);  // [2, D], over the blocks in a fixed order
    return {dx, sums[0], sums[1], at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

/// Throws c10::Error unless layer_norm_cast computes these.
void check_layer_norm_cast(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           at::ScalarType out_dtype) {
  TORCH_CHECK(x.is_cpu() && x.scalar_type() == at::kFloat && x.dim() >= 1, "layer_norm_cast: x must be an fp32 CPU tensor, got ",
              x.toString(), " of ", x.dim(), " dimensions");
  const int64_t D = x.size(-1);
  for (const auto* t : {&weight, &bias})
    TORCH_CHECK(t->defined() && t->is_cpu() && t->scalar_type() == at::kFloat && t->dim() == 1 && t->size(0) == D &&
                    t->is_contiguous(),
                "layer_norm_cast: weight and bias must be contiguous fp32 CPU tensors [", D, "]");
  TORCH_CHECK(out_dtype == at::kFloat || out_dtype == at::kBFloat16, "layer_norm_cast: out_dtype must be fp32 or bf16, got ",
              out_dtype);
}

/// Whether layer_norm_for_product takes layer_norm_cast for norm and x.
bool casts(torch::nn::LayerNorm& norm, const at::Tensor& x) {
  const auto& o = norm->options;
  return x.is_cpu() && x.scalar_type() == at::kFloat && autocast_enabled(x.device()) && o.elementwise_affine() &&
         o.normalized_shape().size() == 1 && x.dim() >= 1 && x.size(-1) == o.normalized_shape()[0] &&
         norm->weight.scalar_type() == at::kFloat;
}
}  // namespace

at::Tensor layer_norm_cast(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, double eps,
                           at::ScalarType out_dtype) {
  check_layer_norm_cast(x, weight, bias, out_dtype);
  return LayerNormCast::apply(x, weight, bias, eps, out_dtype, false)[0];
}

std::pair<at::Tensor, at::Tensor> layer_norm_cast_residual(const at::Tensor& x, const at::Tensor& weight,
                                                           const at::Tensor& bias, double eps,
                                                           at::ScalarType out_dtype) {
  check_layer_norm_cast(x, weight, bias, out_dtype);
  auto out = LayerNormCast::apply(x, weight, bias, eps, out_dtype, true);
  return {out[0], out[1]};
}

at::Tensor layer_norm_for_product(torch::nn::LayerNorm& norm, const at::Tensor& x) {
  if (!casts(norm, x)) return norm(x);
  return layer_norm_cast(x, norm->weight, norm->bias, norm->options.eps(), at::kBFloat16);
}

std::pair<at::Tensor, at::Tensor> layer_norm_for_residual(torch::nn::LayerNorm& norm, const at::Tensor& x) {
  if (!casts(norm, x)) return {norm(x), x};
  return layer_norm_cast_residual(x, norm->weight, norm->bias, norm->options.eps(), at::kBFloat16);
}

}  // namespace nmt::models

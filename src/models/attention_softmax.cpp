#include "nmt/models/attention_softmax.h"

#include <algorithm>
#include <limits>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include "nmt/precision.h"
#include "nmt/simd.h"

namespace nmt::models {
namespace {

using simd::f32x16;
using simd::kLanes;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

/// Where row r's bias starts: bias expanded to the scores' shape [.., Q, S], its last stride 1.
struct BiasRows {
  const float* data = nullptr;             ///< null: no bias
  std::vector<int64_t> sizes, strides;     ///< of the leading dimensions (all but S)
  const float* row(int64_t r) const {
    int64_t offset = 0;
    for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
      offset += (r % sizes[d]) * strides[d];
      r /= sizes[d];
    }
    return data + offset;
  }
};

/// One row: out = softmax(scale·x + b), through the fp32 scratch `e` [S].
template <class T>
NMT_INLINE void softmax_row(const T* x, const float* b, T* out, float* e, int64_t S, float scale) {
  f32x16 max = simd::splat(kNegInf);
  for (int64_t c = 0; c < S; c += kLanes) {
    const auto n = std::min(kLanes, S - c);
    f32x16 z = simd::load(x + c, n, kNegInf) * scale;
    if (b) z += simd::load(b + c, n, 0.0f);
    simd::store(e + c, z, n);
    max = z > max ? z : max;
  }
  float m = kNegInf;
  for (int64_t l = 0; l < kLanes; ++l) m = max[l] > m ? max[l] : m;
  if (m == kNegInf) {  // every key masked
    for (int64_t c = 0; c < S; c += kLanes) simd::store(out + c, simd::splat(0.0f), std::min(kLanes, S - c));
    return;
  }
  f32x16 sum = {};
  for (int64_t c = 0; c < S; c += kLanes) {
    const auto n = std::min(kLanes, S - c);
    f32x16 p = simd::exp_nonpositive(simd::load(e + c, n, kNegInf) - m);
    sum += p;
    simd::store(e + c, p, n);
  }
  const float inverse = static_cast<float>(1.0 / simd::lanes_sum(sum));
  for (int64_t c = 0; c < S; c += kLanes) {
    const auto n = std::min(kLanes, S - c);
    simd::store(out + c, simd::load(e + c, n, 0.0f) * inverse, n);
  }
}

/// One row of the backward pass: dx = scale·p ⊙ (g − Σ p g).
template <class T>
NMT_INLINE void softmax_backward_row(const T* p, const T* g, T* dx, int64_t S, float scale) {
  f32x16 dot = {};
  for (int64_t c = 0; c < S; c += kLanes) {
    const auto n = std::min(kLanes, S - c);
    dot += simd::load(p + c, n, 0.0f) * simd::load(g + c, n, 0.0f);
  }
  const auto total = static_cast<float>(simd::lanes_sum(dot));
  for (int64_t c = 0; c < S; c += kLanes) {
    const auto n = std::min(kLanes, S - c);
    simd::store(dx + c, simd::load(p + c, n, 0.0f) * (simd::load(g + c, n, 0.0f) - total) * scale, n);
  }
}

NMT_VECTOR_CLONES
void forward_fp32(const float* x, const BiasRows& bias, float* out, int64_t r0, int64_t r1, int64_t S, float scale) {
  std::vector<float> e(static_cast<size_t>(S));
  for (int64_t r = r0; r < r1; ++r)
    softmax_row(x + r * S, bias.data ? bias.row(r) : nullptr, out + r * S, e.data(), S, scale);
}
NMT_VECTOR_CLONES
void forward_bf16(const uint16_t* x, const BiasRows& bias, uint16_t* out, int64_t r0, int64_t r1, int64_t S,
                  float scale) {
  std::vector<float> e(static_cast<size_t>(S));
  for (int64_t r = r0; r < r1; ++r)
    softmax_row(x + r * S, bias.data ? bias.row(r) : nullptr, out + r * S, e.data(), S, scale);
}
NMT_VECTOR_CLONES
void backward_fp32(const float* p, const float* g, float* dx, int64_t r0, int64_t r1, int64_t S, float scale) {
  for (int64_t r = r0; r < r1; ++r) softmax_backward_row(p + r * S, g + r * S, dx + r * S, S, scale);
}
NMT_VECTOR_CLONES
void backward_bf16(const uint16_t* p, const uint16_t* g, uint16_t* dx, int64_t r0, int64_t r1, int64_t S,
                   float scale) {
  for (int64_t r = r0; r < r1; ++r) softmax_backward_row(p + r * S, g + r * S, dx + r * S, S, scale);
}

int64_t row_grain(int64_t S) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, S)); }

template <class T>
T* data_as(const at::Tensor& t) {
  if constexpr (std::is_same_v<T, float>) return t.data_ptr<float>();
  else return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
}

struct AttentionSoftmax : torch::autograd::Function<AttentionSoftmax> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& scores, double scale,
                            const at::Tensor& bias) {
    const auto x = scores.contiguous();
    const int64_t S = x.size(-1), R = S == 0 ? 0 : x.numel() / S;
    auto out = at::empty_like(x);
    BiasRows rows;
    at::Tensor expanded;
    if (bias.numel() > 0) {  // an empty tensor stands for none (autograd's apply takes no undefined one)
      expanded = bias.to(at::kFloat).expand(x.sizes());
      if (expanded.stride(-1) != 1) expanded = expanded.contiguous();
      rows.data = expanded.data_ptr<float>();
      for (int64_t d = 0; d + 1 < x.dim(); ++d) {
        rows.sizes.push_back(x.size(d));
        rows.strides.push_back(expanded.stride(d));
      }
    }
    const auto s = static_cast<float>(scale);
    at::parallel_for(0, R, row_grain(S), [&](int64_t r0, int64_t r1) {
      if (x.scalar_type() == at::kFloat) forward_fp32(data_as<float>(x), rows, data_as<float>(out), r0, r1, S, s);
      else forward_bf16(data_as<uint16_t>(x), rows, data_as<uint16_t>(out), r0, r1, S, s);
    });
    ctx->save_for_backward({out});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto p = ctx->get_saved_variables()[0];
    const auto g = grads[0].to(p.scalar_type()).contiguous();
    const auto s = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const int64_t S = p.size(-1), R = S == 0 ? 0 : p.numel() / S;
    auto dx = at::empty_like(p);
    at::parallel_for(0, R, row_grain(S), [&](int64_t r0, int64_t r1) {
      if (p.scalar_type() == at::kFloat)
        backward_fp32(data_as<float>(p), data_as<float>(g), data_as<float>(dx), r0, r1, S, s);
      else
        backward_bf16(data_as<uint16_t>(p), data_as<uint16_t>(g), data_as<uint16_t>(dx), r0, r1, S, s);
    });
    return {dx, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor attention_softmax(const at::Tensor& scores, double scale, const at::Tensor& bias) {
  TORCH_CHECK(!bias.defined() || !bias.requires_grad(), "attention_softmax: the bias is a mask, not differentiated");
  const auto type = scores.scalar_type();
  if (!scores.device().is_cpu() || (type != at::kFloat && type != at::kBFloat16) || scores.dim() == 0) {
    auto z = at_least_fp32(scores) * scale;
    return at::softmax(bias.defined() ? z + bias : z, -1);
  }
  if (bias.defined()) {
    TORCH_CHECK(bias.dim() <= scores.dim(), "attention_softmax: bias ", bias.sizes(), " does not broadcast to scores ",
                scores.sizes());
    for (int64_t d = 1; d <= bias.dim(); ++d)
      TORCH_CHECK(bias.size(-d) == 1 || bias.size(-d) == scores.size(-d), "attention_softmax: bias ", bias.sizes(),
                  " does not broadcast to scores ", scores.sizes());
  }
  return AttentionSoftmax::apply(scores, scale, bias.defined() ? bias : at::empty({0}, scores.options().dtype(at::kFloat)));
}

}  // namespace nmt::models

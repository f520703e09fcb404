#include "nmt/search/top_k.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "nmt/simd.h"

namespace nmt::search {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

/// Puts (v, i) into the descending list vals/ids of `filled` ≤ k entries if it belongs there;
/// of equal values the earlier one stays ahead.
NMT_INLINE void insert(float v, int64_t i, float* vals, int64_t* ids, int64_t k, int64_t& filled) {
  if (filled == k && !(v > vals[k - 1])) return;
  int64_t at = filled < k ? filled++ : k - 1;
  while (at > 0 && v > vals[at - 1]) {
    vals[at] = vals[at - 1];
    ids[at] = ids[at - 1];
    --at;
  }
  vals[at] = v;
  ids[at] = i;
}

/// One row x[0..V) in two vectorised passes: (1) per lane its two largest entries, so the
/// row maximum m and a lower bound t on the k-th largest entry (the k-th largest of those 2W
/// entries; -inf when k > 2W); (2) Σ exp(x − m), and the entries ≥ t, the only candidates,
/// inserted one by one. Writes the k log-probs to vals, their positions to ids.
template <int W, class T>
NMT_INLINE void row_top_k(const T* x, int64_t V, int64_t k, float* vals, int64_t* ids) {
  using F = simd::f32v<W>;
  F first = simd::splat<F>(kNegInf), second = simd::splat<F>(kNegInf);
  for (int64_t c = 0; c < V; c += W) {
    const F v = simd::load<W>(x + c, std::min<int64_t>(W, V - c), kNegInf);
    second = v > second ? (v > first ? first : v) : second;
    first = simd::maximum(first, v);
  }
  float top[2 * W];
  std::memcpy(top, &first, sizeof first);
  std::memcpy(top + W, &second, sizeof second);
  std::sort(top, top + 2 * W, std::greater<float>());
  const float m = top[0];
  if (m == kNegInf) {  // no finite logit: every log-prob is -inf (log_softmax would give NaN)
    for (int64_t j = 0; j < k; ++j) {
      vals[j] = kNegInf;
      ids[j] = j;
    }
    return;
  }
  const float bound = k <= 2 * W ? top[k - 1] : kNegInf;
  int64_t filled = 0;
  F sum = {};
  for (int64_t c = 0; c < V; c += W) {
    const int64_t n = std::min<int64_t>(W, V - c);
    const F v = simd::load<W>(x + c, n, kNegInf);
    sum += simd::exp_nonpositive(v - m);
    const simd::i32v<W> candidate = v >= simd::splat<F>(bound);
    if (simd::any_lane(candidate))
      for (int64_t l = 0; l < n; ++l)
        if (candidate[l]) insert(v[l], c + l, vals, ids, k, filled);
  }
  const float log_sum = static_cast<float>(std::log(simd::lanes_sum(sum)));
  for (int64_t j = 0; j < k; ++j) vals[j] = vals[j] - m - log_sum;
}

/// Rows [r0, r1) of row_top_k.
template <int W, class T>
NMT_INLINE void rows_top_k(const T* x, int64_t r0, int64_t r1, int64_t V, int64_t k, float* vals, int64_t* ids) {
  for (int64_t r = r0; r < r1; ++r) row_top_k<W>(x + r * V, V, k, vals + r * k, ids + r * k);
}

NMT_VECTOR_CLONES
void rows_fp32(const float* x, int64_t r0, int64_t r1, int64_t V, int64_t k, float* vals, int64_t* ids) {
  NMT_BY_LANES(rows_top_k, x, r0, r1, V, k, vals, ids);
}

NMT_VECTOR_CLONES
void rows_bf16(const uint16_t* x, int64_t r0, int64_t r1, int64_t V, int64_t k, float* vals, int64_t* ids) {
  NMT_BY_LANES(rows_top_k, x, r0, r1, V, k, vals, ids);
}

}  // namespace

RowTopK top_k_log_softmax(const at::Tensor& logits, int64_t k) {
  TORCH_CHECK(logits.dim() == 2, "top_k_log_softmax: expected [R, V] logits, got ", logits.sizes());
  TORCH_CHECK(k >= 1, "top_k_log_softmax: k must be >= 1, got ", k);
  const int64_t R = logits.size(0), V = logits.size(1);
  k = std::min(k, V);
  const auto type = logits.scalar_type();
  if (!logits.device().is_cpu() || (type != at::kFloat && type != at::kBFloat16) || V == 0) {
    auto [values, indices] = at::log_softmax(logits.to(at::kFloat), 1).topk(k, 1);
    return {values, indices};
  }
  const auto x = logits.contiguous();
  auto values = at::empty({R, k}, x.options().dtype(at::kFloat));
  auto indices = at::empty({R, k}, x.options().dtype(at::kLong));
  float* vals = values.data_ptr<float>();
  int64_t* ids = indices.data_ptr<int64_t>();
  const int64_t grain = simd::rows_per_task(V);
  if (type == at::kFloat) {
    const float* src = x.data_ptr<float>();
    at::parallel_for(0, R, grain, [&](int64_t r0, int64_t r1) { rows_fp32(src, r0, r1, V, k, vals, ids); });
  } else {
    const auto* src = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
    at::parallel_for(0, R, grain, [&](int64_t r0, int64_t r1) { rows_bf16(src, r0, r1, V, k, vals, ids); });
  }
  return {values, indices};
}

RowTopK step_top_k(const models::StepOutput& out, int64_t k) {
  if (!out.log_probs.defined()) return top_k_log_softmax(out.logits, k);
  auto [values, indices] = out.log_probs.topk(std::min(k, out.log_probs.size(1)), 1);
  return {values.to(at::kFloat), indices};
}

}  // namespace nmt::search

#include "nmt/models/dropout.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include "nmt/models/bias_gradient.h"
#include "nmt/precision.h"
#include "nmt/simd.h"

namespace nmt::models {
namespace {

constexpr int64_t kLevels = 65536;  // 16 bits per element
constexpr int64_t kGrain = 16384;   // elements per task

/// 32-bit integer hash (Wellons' "lowbias32", a bijection of the 32-bit integers with low bias),
/// on one value or lane by lane (U: uint32_t or a vector of them).
template <class U>
NMT_INLINE U mix32(U x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}

/// The mask's key: two 32-bit words of one draw of the default CPU generator.
struct MaskKey {
  uint32_t k1 = 0, k2 = 0;
};

/// Element i's 16 random bits: one half of the pair hash mix32(mix32(⌊i/2⌋ ⊕ k1) + k2), the
/// low half for even i, the high half for odd i. Counter-based (as Philox in ATen's GPU
/// dropout), so any thread computes any element, and the backward pass recomputes the forward
/// pass's mask instead of storing it; one hash serves two elements (the multiplications are most
/// of the cost). The key enters both rounds, so two masks of different keys are not shifted
/// copies of one sequence.
NMT_INLINE uint32_t pair_hash(uint32_t pair, MaskKey key) { return mix32(mix32(pair ^ key.k1) + key.k2); }
NMT_INLINE uint32_t element_bits(uint64_t i, MaskKey key) {
  return (pair_hash(static_cast<uint32_t>(i >> 1), key) >> (16 * (i & 1))) & 0xffffu;
}

/// Calls op(i, n, keep) over [i0, i1) in chunks of n ≤ W elements, keep (W lanes) lane l holding
/// element i + l's factor: scale where its bits are ≥ threshold, else 0. 2W elements (W pair
/// hashes) at a time; odd ends one element at a time.
template <int W, class Op>
NMT_INLINE void for_each_mask_chunk(int64_t i0, int64_t i1, MaskKey key, uint32_t threshold, float scale, Op op) {
  using F = simd::f32v<W>;
  using U = simd::u32v<W>;
  auto one = [&](int64_t i) NMT_LAMBDA_INLINE {
    op(i, 1, simd::splat<F>(element_bits(static_cast<uint64_t>(i), key) >= threshold ? scale : 0.0f));
  };
  int64_t i = i0;
  if (i < i1 && (i & 1)) one(i++);
  const U lane = reinterpret_cast<U>(simd::lane_indices<W>());
  const F kept = simd::splat<F>(scale), dropped = simd::splat<F>(0.0f);
  for (; i + 2 * W <= i1; i += 2 * W) {
    const U h = mix32(mix32((lane + static_cast<uint32_t>(i >> 1)) ^ key.k1) + key.k2);
    const F even = (h & 0xffffu) >= threshold ? kept : dropped;  // elements i, i+2, ..., i+2W−2
    const F odd = (h >> 16) >= threshold ? kept : dropped;       // elements i+1, i+3, ..., i+2W−1
    if constexpr (W == 16) {
      op(i, W, __builtin_shufflevector(even, odd, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
      op(i + W, W, __builtin_shufflevector(even, odd, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31));
    } else {
      static_assert(W == 8, "8 or 16 lanes");
      op(i, W, __builtin_shufflevector(even, odd, 0, 8, 1, 9, 2, 10, 3, 11));
      op(i + W, W, __builtin_shufflevector(even, odd, 4, 12, 5, 13, 6, 14, 7, 15));
    }
  }
  for (; i < i1; ++i) one(i);
}

/// dst[i] = src[i]·factor for i in [i0, i1), the product in fp32 and rounded to Dst (bf16 to
/// nearest even).
template <int W, class Src, class Dst>
NMT_INLINE void mask_lanes(const Src* src, Dst* dst, int64_t i0, int64_t i1, MaskKey key, uint32_t threshold,
                           float scale) {
  for_each_mask_chunk<W>(i0, i1, key, threshold, scale, [&](int64_t i, int64_t n, simd::f32v<W> keep) NMT_LAMBDA_INLINE {
    simd::store(dst + i, simd::load<W>(src + i, n, 0.0f) * keep, n);
  });
}

/// v rounded to T and back: bf16 to nearest even (as simd::store), fp32 as it is.
template <class F>
NMT_INLINE F round_to(F v, const float*) {
  return v;
}
template <class F>
NMT_INLINE F round_to(F v, const uint16_t*) {
  using U = simd::u32v<simd::kWidthOf<F>>;
  const auto u = reinterpret_cast<U>(v);
  const U rounded = simd::bf16_rounding_sum(u) & 0xffff0000u;
  return reinterpret_cast<F>((u & 0x7fffffffu) > 0x7f800000u ? u : rounded);  // NaN stays NaN
}

/// out[i] = x[i] + round_T(y[i]·factor) for i in [i0, i1): the residual connection's sum with
/// the dropped-out branch, rounded as dropout() would round it in y's dtype.
template <int W, class T>
NMT_INLINE void add_mask_lanes(const float* x, const T* y, float* out, int64_t i0, int64_t i1, MaskKey key,
                               uint32_t threshold, float scale) {
  for_each_mask_chunk<W>(i0, i1, key, threshold, scale, [&](int64_t i, int64_t n, simd::f32v<W> keep) NMT_LAMBDA_INLINE {
    simd::store(out + i, simd::load<W>(x + i, n, 0.0f) + round_to(simd::load<W>(y + i, n, 0.0f) * keep, y), n);
  });
}

/// Lanes [i, i + n) of a row-major [·, F] tensor's bias: bias[column], bias[column + 1], ...,
/// wrapping at the end of a row; advances column (the column of element i) by n.
template <int W>
NMT_INLINE simd::f32v<W> bias_lanes(const float* bias, int64_t F, int64_t& column, int64_t n) {
  simd::f32v<W> b;
  if (column + n <= F) {
    b = simd::load<W>(bias + column, n, 0.0f);
    column += n;
  } else {  // the chunk crosses the end of a row
    b = simd::splat<simd::f32v<W>>(0.0f);
    for (int64_t l = 0; l < n; ++l, ++column) b[l] = bias[column < F ? column : (column -= F)];
  }
  if (column == F) column = 0;
  return b;
}

/// out[i] = x[i] + round_T(round_T(y[i] + bias[i mod F])·factor) for i in [i0, i1).
template <int W, class T>
NMT_INLINE void add_bias_mask_lanes(const float* x, const T* y, const float* bias, float* out, int64_t F, int64_t i0,
                                    int64_t i1, MaskKey key, uint32_t threshold, float scale) {
  int64_t column = i0 % F;  // of element i in the calls below, which cover [i0, i1) in order
  for_each_mask_chunk<W>(i0, i1, key, threshold, scale, [&](int64_t i, int64_t n, simd::f32v<W> keep) NMT_LAMBDA_INLINE {
    const auto branch = round_to(simd::load<W>(y + i, n, 0.0f) + bias_lanes<W>(bias, F, column, n), y);
    simd::store(out + i, simd::load<W>(x + i, n, 0.0f) + round_to(branch * keep, y), n);
  });
}

/// sums[F] += the rows [r0, r1) of a row-major [·, F] tensor (fp32 sums).
template <int W, class T>
NMT_INLINE void add_column_sums(const T* x, float* sums, int64_t F, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t j = 0; j < F; j += W) {
      const int64_t n = std::min<int64_t>(W, F - j);
      simd::store(sums + j, simd::load<W>(sums + j, n, 0.0f) + simd::load<W>(x + r * F + j, n, 0.0f), n);
    }
}

/// The same for other dtypes, one element at a time in Acc.
template <class T, class Acc>
void mask_range(const T* src, T* dst, int64_t i0, int64_t i1, MaskKey key, uint32_t threshold, Acc scale) {
  for (int64_t i = i0; i < i1; ++i) {
    const Acc keep = element_bits(static_cast<uint64_t>(i), key) >= threshold ? scale : Acc(0);
    dst[i] = static_cast<T>(static_cast<Acc>(src[i]) * keep);
  }
}

// The fp32 and bf16 loops are compiled for AVX-512, AVX2 and the baseline (NMT_VECTOR_CLONES).
// The residual sums must not fuse y·factor + x into one multiply-add: rounded twice, as the two
// separate operations round, the fused pass equals x + dropout(y) bit for bit.
#if defined(__GNUC__) && !defined(__clang__)
#define NMT_NO_FP_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define NMT_NO_FP_CONTRACT
#endif
NMT_VECTOR_CLONES
void mask_bf16(const uint16_t* src, uint16_t* dst, int64_t i0, int64_t i1, MaskKey key, uint32_t threshold,
               float scale) {
  NMT_BY_LANES(mask_lanes, src, dst, i0, i1, key, threshold, scale);
}

NMT_VECTOR_CLONES
void mask_fp32(const float* src, float* dst, int64_t i0, int64_t i1, MaskKey key, uint32_t threshold, float scale) {
  NMT_BY_LANES(mask_lanes, src, dst, i0, i1, key, threshold, scale);
}

NMT_VECTOR_CLONES
void mask_fp32_to_bf16(const float* src, uint16_t* dst, int64_t i0, int64_t i1, MaskKey key, uint32_t threshold,
                       float scale) {
  NMT_BY_LANES(mask_lanes, src, dst, i0, i1, key, threshold, scale);
}

NMT_VECTOR_CLONES NMT_NO_FP_CONTRACT
void add_mask_fp32(const float* x, const float* y, float* out, int64_t i0, int64_t i1, MaskKey key,
                   uint32_t threshold, float scale) {
  NMT_BY_LANES(add_mask_lanes, x, y, out, i0, i1, key, threshold, scale);
}

NMT_VECTOR_CLONES NMT_NO_FP_CONTRACT
void add_mask_bf16(const float* x, const uint16_t* y, float* out, int64_t i0, int64_t i1, MaskKey key,
                   uint32_t threshold, float scale) {
  NMT_BY_LANES(add_mask_lanes, x, y, out, i0, i1, key, threshold, scale);
}

NMT_VECTOR_CLONES NMT_NO_FP_CONTRACT
void add_bias_mask_fp32(const float* x, const float* y, const float* bias, float* out, int64_t F, int64_t i0,
                        int64_t i1, MaskKey key, uint32_t threshold, float scale) {
  NMT_BY_LANES(add_bias_mask_lanes, x, y, bias, out, F, i0, i1, key, threshold, scale);
}

NMT_VECTOR_CLONES NMT_NO_FP_CONTRACT
void add_bias_mask_bf16(const float* x, const uint16_t* y, const float* bias, float* out, int64_t F, int64_t i0,
                        int64_t i1, MaskKey key, uint32_t threshold, float scale) {
  NMT_BY_LANES(add_bias_mask_lanes, x, y, bias, out, F, i0, i1, key, threshold, scale);
}

// Rows [r0, r1) of [·, F] of the backward pass with a bias: dy = round_T(dout·factor), then dy
// (as rounded, while in cache) added to dbias[F] (this block's sums).
template <int W, class T>
NMT_INLINE void bias_mask_backward_rows(const float* dout, T* dy, float* dbias, int64_t F, int64_t r0, int64_t r1,
                                        MaskKey key, uint32_t threshold, float scale) {
  mask_lanes<W>(dout, dy, r0 * F, r1 * F, key, threshold, scale);
  add_column_sums<W>(dy, dbias, F, r0, r1);
}

NMT_VECTOR_CLONES
void bias_mask_backward_fp32(const float* dout, float* dy, float* dbias, int64_t F, int64_t r0, int64_t r1,
                             MaskKey key, uint32_t threshold, float scale) {
  NMT_BY_LANES(bias_mask_backward_rows, dout, dy, dbias, F, r0, r1, key, threshold, scale);
}

NMT_VECTOR_CLONES
void bias_mask_backward_bf16(const float* dout, uint16_t* dy, float* dbias, int64_t F, int64_t r0, int64_t r1,
                             MaskKey key, uint32_t threshold, float scale) {
  NMT_BY_LANES(bias_mask_backward_rows, dout, dy, dbias, F, r0, r1, key, threshold, scale);
}

/// out[i] = round_T(max(y[i] + bias[i mod F], 0)·factor) for i in [i0, i1).
template <int W, class T>
NMT_INLINE void bias_relu_mask_lanes(const T* y, const float* bias, T* out, int64_t F, int64_t i0, int64_t i1,
                                     MaskKey key, uint32_t threshold, float scale) {
  const auto zero = simd::splat<simd::f32v<W>>(0.0f);
  int64_t column = i0 % F;  // of element i in the calls below, which cover [i0, i1) in order
  for_each_mask_chunk<W>(i0, i1, key, threshold, scale, [&](int64_t i, int64_t n, simd::f32v<W> keep) NMT_LAMBDA_INLINE {
    const auto b = bias_lanes<W>(bias, F, column, n);
    // maximum(0, v): NaN stays NaN, as at::relu keeps it (maximum(v, 0) would give 0).
    simd::store(out + i, simd::maximum(zero, simd::load<W>(y + i, n, 0.0f) + b) * keep, n);
  });
}

/// Rows [r0, r1) of the backward pass: dy = dout·factor where out > 0, else 0 (written in T),
/// and the fp32 dy added to dbias[F] (this block's sums).
template <int W, class T>
NMT_INLINE void bias_relu_mask_backward_rows(const T* dout, const T* out, T* dy, float* dbias, int64_t F, int64_t r0,
                                             int64_t r1, float scale) {
  using U = simd::u32v<W>;
  const auto factor = simd::splat<simd::f32v<W>>(scale);
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t j = 0; j < F; j += W) {
      const int64_t n = std::min<int64_t>(W, F - j), i = r * F + j;
      // out > 0 (positive, not NaN) from the bits without a comparison, which GCC 12 either
      // fails on here or leaves scalar: u − 1 and 0x7f800000 − u both have the top bit clear
      // exactly when 0 < u ≤ +∞.
      const auto u = reinterpret_cast<U>(simd::load<W>(out + i, n, 0.0f));
      const auto negative = reinterpret_cast<simd::i32v<W>>((u - 1u) | (0x7f800000u - u)) >> 31;  // all ones or 0
      const auto g = reinterpret_cast<U>(simd::load<W>(dout + i, n, 0.0f) * factor);
      const auto d = reinterpret_cast<simd::f32v<W>>(g & ~reinterpret_cast<U>(negative));
      simd::store(dy + i, d, n);
      simd::store(dbias + j, simd::load<W>(dbias + j, n, 0.0f) + d, n);
    }
  }
}

NMT_VECTOR_CLONES
void bias_relu_mask_fp32(const float* y, const float* bias, float* out, int64_t F, int64_t i0, int64_t i1, MaskKey key,
                         uint32_t threshold, float scale) {
  NMT_BY_LANES(bias_relu_mask_lanes, y, bias, out, F, i0, i1, key, threshold, scale);
}

NMT_VECTOR_CLONES
void bias_relu_mask_bf16(const uint16_t* y, const float* bias, uint16_t* out, int64_t F, int64_t i0, int64_t i1,
                         MaskKey key, uint32_t threshold, float scale) {
  NMT_BY_LANES(bias_relu_mask_lanes, y, bias, out, F, i0, i1, key, threshold, scale);
}

NMT_VECTOR_CLONES
void bias_relu_mask_backward_fp32(const float* dout, const float* out, float* dy, float* dbias, int64_t F, int64_t r0,
                                  int64_t r1, float scale) {
  NMT_BY_LANES(bias_relu_mask_backward_rows, dout, out, dy, dbias, F, r0, r1, scale);
}

NMT_VECTOR_CLONES
void bias_relu_mask_backward_bf16(const uint16_t* dout, const uint16_t* out, uint16_t* dy, float* dbias, int64_t F,
                                  int64_t r0, int64_t r1, float scale) {
  NMT_BY_LANES(bias_relu_mask_backward_rows, dout, out, dy, dbias, F, r0, r1, scale);
}

/// Scratch rows of S floats padded to whole vectors of any width, so that the passes over them
/// load and store whole vectors (a partial vector goes lane by lane, and attention's rows are
/// short: mostly one partial vector at Multi30k's lengths).
int64_t padded_row(int64_t S) { return (S + simd::kLanes - 1) / simd::kLanes * simd::kLanes; }

/// Row `s` [S] of attention scores → p [S] = softmax(scale·s + bias) (bias [S] or null), in
/// fp32 with one rounding to T; z [padded_row(S)] is scratch.
template <int W, class T>
NMT_INLINE void softmax_row(const T* s, const float* bias, T* p, float* z, int64_t S, float scale) {
  using F = simd::f32v<W>;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  F max = simd::splat<F>(kNegInf);
  for (int64_t c = 0; c < S; c += W) {
    const int64_t n = std::min<int64_t>(W, S - c);
    F v = simd::load<W>(s + c, n, kNegInf) * scale;  // missing lanes −inf
    if (bias) v += simd::load<W>(bias + c, n, 0.0f);
    simd::store(z + c, v, W);
    max = simd::maximum(max, v);
  }
  const float m = simd::lanes_max(max);
  F total = {};
  for (int64_t c = 0; c < S; c += W) {
    const F e = simd::exp_nonpositive(simd::load<W>(z + c, W, 0.0f) - m);  // missing lanes: e^−inf = 0
    simd::store(z + c, e, W);
    total += e;
  }
  const float inverse = static_cast<float>(1.0 / simd::lanes_sum(total));
  for (int64_t c = 0; c < S; c += W) {
    const int64_t n = std::min<int64_t>(W, S - c);
    simd::store(p + c, simd::load<W>(z + c, W, 0.0f) * inverse, n);
  }
}

/// The softmax's gradient for rows [r0, r1) of S: dp = factor·d_dropped (+ d_probs), then
/// ds = scale·p·(dp − Σ p·dp), written in T. factor [(r1 − r0)·S] holds each element's dropout
/// factor (1 without dropout); d_probs may be null; dp [padded_row(S)] is scratch.
template <int W, class T>
NMT_INLINE void softmax_backward_rows(const T* p, const T* d_dropped, const T* d_probs, const float* factor, T* ds,
                                      float* dp, int64_t r0, int64_t r1, int64_t S, float scale) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t row = r * S;
    const float* f = factor + (r - r0) * S;
    simd::f32v<W> dot = {};
    for (int64_t c = 0; c < S; c += W) {
      const int64_t n = std::min<int64_t>(W, S - c);
      simd::f32v<W> g = simd::load<W>(d_dropped + row + c, n, 0.0f) * simd::load<W>(f + c, n, 0.0f);
      if (d_probs) g += simd::load<W>(d_probs + row + c, n, 0.0f);
      simd::store(dp + c, g, W);  // missing lanes 0
      dot += simd::load<W>(p + row + c, n, 0.0f) * g;
    }
    const auto total = static_cast<float>(simd::lanes_sum(dot));
    for (int64_t c = 0; c < S; c += W) {
      const int64_t n = std::min<int64_t>(W, S - c);
      simd::store(ds + row + c, simd::load<W>(p + row + c, n, 0.0f) * (simd::load<W>(dp + c, W, 0.0f) - total) * scale, n);
    }
  }
}

/// Rows [r0, r1) of the attention softmax: probs, and dropped (when threshold > 0) masked from
/// the rounded probs as dropout() masks them. `bias_row(r)` gives row r's bias or null.
template <int W, class T, class BiasRow>
NMT_INLINE void attention_softmax_rows(const T* scores, T* probs, T* dropped, float* z, int64_t r0, int64_t r1,
                                       int64_t S, float scale, BiasRow bias_row, MaskKey key, uint32_t threshold,
                                       float keep) {
  for (int64_t r = r0; r < r1; ++r) softmax_row<W>(scores + r * S, bias_row(r), probs + r * S, z, S, scale);
  if (threshold > 0) mask_lanes<W>(probs, dropped, r0 * S, r1 * S, key, threshold, keep);
}

/// Where row r = (n·H + h)·T + t of [N, H, T, S] finds its bias: base + n·s0 + h·s1 + t·s2.
struct BiasRows {
  const float* base = nullptr;
  int64_t H = 1, T = 1, s0 = 0, s1 = 0, s2 = 0;
  const float* operator()(int64_t r) const {
    return base ? base + (r / (H * T)) * s0 + ((r / T) % H) * s1 + (r % T) * s2 : nullptr;
  }
};

NMT_VECTOR_CLONES
void attention_softmax_fp32(const float* scores, float* probs, float* dropped, float* z, int64_t r0, int64_t r1,
                            int64_t S, float scale, BiasRows bias, MaskKey key, uint32_t threshold, float keep) {
  NMT_BY_LANES(attention_softmax_rows, scores, probs, dropped, z, r0, r1, S, scale, bias, key, threshold, keep);
}

NMT_VECTOR_CLONES
void attention_softmax_bf16(const uint16_t* scores, uint16_t* probs, uint16_t* dropped, float* z, int64_t r0,
                            int64_t r1, int64_t S, float scale, BiasRows bias, MaskKey key, uint32_t threshold,
                            float keep) {
  NMT_BY_LANES(attention_softmax_rows, scores, probs, dropped, z, r0, r1, S, scale, bias, key, threshold, keep);
}

/// factor[i − i0] for i in [i0, i1): the dropout factor of element i (1 when threshold is 0).
/// (A template, like the other helpers with vector lambdas, so that the lambda is compiled
/// within each clone of its caller.)
template <int W, class F>
NMT_INLINE void mask_factors(F* factor, int64_t i0, int64_t i1, MaskKey key, uint32_t threshold, float keep) {
  if (threshold == 0) {
    std::fill(factor, factor + (i1 - i0), 1.0f);
    return;
  }
  for_each_mask_chunk<W>(i0, i1, key, threshold, keep,
                         [&](int64_t i, int64_t n, simd::f32v<W> k) NMT_LAMBDA_INLINE { simd::store(factor + (i - i0), k, n); });
}

/// Rows [r0, r1) of the attention softmax's backward pass: the dropout factors, then the gradient.
template <int W, class T>
NMT_INLINE void attention_softmax_backward_rows(const T* p, const T* d_dropped, const T* d_probs, T* ds, float* factor,
                                                float* dp, int64_t r0, int64_t r1, int64_t S, float scale,
                                                MaskKey key, uint32_t threshold, float keep) {
  mask_factors<W>(factor, r0 * S, r1 * S, key, threshold, keep);
  softmax_backward_rows<W>(p, d_dropped, d_probs, factor, ds, dp, r0, r1, S, scale);
}

NMT_VECTOR_CLONES
void attention_softmax_backward_fp32(const float* p, const float* d_dropped, const float* d_probs, float* ds,
                                     float* factor, float* dp, int64_t r0, int64_t r1, int64_t S, float scale,
                                     MaskKey key, uint32_t threshold, float keep) {
  NMT_BY_LANES(attention_softmax_backward_rows, p, d_dropped, d_probs, ds, factor, dp, r0, r1, S, scale, key, threshold,
               keep);
}

NMT_VECTOR_CLONES
void attention_softmax_backward_bf16(const uint16_t* p, const uint16_t* d_dropped, const uint16_t* d_probs,
                                     uint16_t* ds, float* factor, float* dp, int64_t r0, int64_t r1, int64_t S,
                                     float scale, MaskKey key, uint32_t threshold, float keep) {
  NMT_BY_LANES(attention_softmax_backward_rows, p, d_dropped, d_probs, ds, factor, dp, r0, r1, S, scale, key, threshold,
               keep);
}

/// The factor of kept elements, 1/(1 − p′) with p′ = threshold / 2^16.
double keep_scale(int64_t threshold) {
  return static_cast<double>(kLevels) / static_cast<double>(kLevels - threshold);
}

/// `in` with each element times 1/(1 − p′) where its 16 bits are ≥ threshold, else times 0.
at::Tensor apply_mask(const at::Tensor& in, MaskKey key, int64_t threshold) {
  auto x = in.contiguous();
  auto out = at::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t n = x.numel();
  TORCH_CHECK(n <= (int64_t{1} << 33), "dropout: at most 2^33 elements, got ", n);
  const auto t = static_cast<uint32_t>(threshold);
  const double scale = keep_scale(threshold);
  if (x.scalar_type() == at::kBFloat16) {
    const auto* src = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
    auto* dst = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
    at::parallel_for(0, n, kGrain, [&](int64_t i0, int64_t i1) { mask_bf16(src, dst, i0, i1, key, t, float(scale)); });
  } else if (x.scalar_type() == at::kFloat) {
    const float* src = x.data_ptr<float>();
    float* dst = out.data_ptr<float>();
    at::parallel_for(0, n, kGrain, [&](int64_t i0, int64_t i1) { mask_fp32(src, dst, i0, i1, key, t, float(scale)); });
  } else {
    AT_DISPATCH_FLOATING_TYPES_AND(at::kHalf, x.scalar_type(), "nmt_dropout", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const scalar_t* src = x.data_ptr<scalar_t>();
      scalar_t* dst = out.data_ptr<scalar_t>();
      at::parallel_for(0, n, kGrain, [&](int64_t i0, int64_t i1) {
        mask_range(src, dst, i0, i1, key, t, static_cast<acc_t>(scale));
      });
    });
  }
  return out;
}

MaskKey key_of(uint64_t draw) { return {static_cast<uint32_t>(draw), static_cast<uint32_t>(draw >> 32)}; }

/// One 64-bit draw of the default CPU generator: the key of one mask.
uint64_t draw_key() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
}

/// Dropout with a recomputed mask: saves only the key, not the [..] mask.
struct MaskedDropout : torch::autograd::Function<MaskedDropout> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t threshold) {
    RECORD_USER_SCOPE("nmt::masked_dropout");
    const uint64_t draw = draw_key();
    ctx->saved_data["key"] = static_cast<int64_t>(draw);
    ctx->saved_data["threshold"] = threshold;
    return apply_mask(x, key_of(draw), threshold);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_USER_SCOPE("nmt::masked_dropout_backward");
    const auto draw = static_cast<uint64_t>(ctx->saved_data["key"].toInt());
    return {apply_mask(grads[0], key_of(draw), ctx->saved_data["threshold"].toInt()), at::Tensor()};
  }
};

/// x + dropout(y (+ bias)) in one pass (x fp32, y fp32 or bf16, both contiguous, one shape;
/// bias fp32 [F] for y's last dimension F, or [0] for none: LibTorch 1.13's Function takes no
/// undefined input); the backward pass gives x the gradient itself and y the masked gradient in
/// y's dtype, also in one pass, which with a bias also sums its gradient in blocks of rows.
struct DropoutAdd : torch::autograd::Function<DropoutAdd> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y,
                            const at::Tensor& bias, int64_t threshold) {
    RECORD_USER_SCOPE("nmt::dropout_add");
    const uint64_t draw = draw_key();
    ctx->saved_data["key"] = static_cast<int64_t>(draw);
    ctx->saved_data["threshold"] = threshold;
    ctx->saved_data["bf16"] = y.scalar_type() == at::kBFloat16;
    ctx->saved_data["bias"] = bias.numel();
    const MaskKey key = key_of(draw);
    const auto t = static_cast<uint32_t>(threshold);
    const auto scale = static_cast<float>(keep_scale(threshold));
    auto out = at::empty_like(x, at::MemoryFormat::Contiguous);
    const float* xp = x.data_ptr<float>();
    float* op = out.data_ptr<float>();
    const bool bf16 = y.scalar_type() == at::kBFloat16;
    const void* yp = y.data_ptr();
    const auto* y16 = static_cast<const uint16_t*>(yp);
    const auto* y32 = static_cast<const float*>(yp);
    const int64_t F = bias.numel();
    const float* b = F > 0 ? bias.data_ptr<float>() : nullptr;
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t i0, int64_t i1) {
      if (b && bf16) add_bias_mask_bf16(xp, y16, b, op, F, i0, i1, key, t, scale);
      else if (b) add_bias_mask_fp32(xp, y32, b, op, F, i0, i1, key, t, scale);
      else if (bf16) add_mask_bf16(xp, y16, op, i0, i1, key, t, scale);
      else add_mask_fp32(xp, y32, op, i0, i1, key, t, scale);
    });
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_USER_SCOPE("nmt::dropout_add_backward");
    const auto draw = static_cast<uint64_t>(ctx->saved_data["key"].toInt());
    const int64_t threshold = ctx->saved_data["threshold"].toInt(), F = ctx->saved_data["bias"].toInt();
    const bool bf16 = ctx->saved_data["bf16"].toBool();
    const auto& dout = grads[0];
    const MaskKey key = key_of(draw);
    const auto t = static_cast<uint32_t>(threshold);
    const auto scale = static_cast<float>(keep_scale(threshold));
    if (F == 0 && (!bf16 || dout.scalar_type() != at::kFloat))
      return {dout, apply_mask(dout, key, threshold), at::Tensor(), at::Tensor()};  // autograd casts it if needed
    const auto g = dout.to(at::kFloat).contiguous();
    auto dbranch = at::empty(g.sizes(), g.options().dtype(bf16 ? at::kBFloat16 : at::kFloat));
    const float* src = g.data_ptr<float>();
    void* dst = dbranch.data_ptr();
    if (F == 0) {
      at::parallel_for(0, g.numel(), kGrain, [&](int64_t i0, int64_t i1) {
        mask_fp32_to_bf16(src, static_cast<uint16_t*>(dst), i0, i1, key, t, scale);
      });
      return {dout, dbranch, at::Tensor(), at::Tensor()};
    }
    auto dbias = blockwise_bias_gradient(g.numel() / F, F, g.options(), [&](int64_t r0, int64_t r1, float* db) {
      if (bf16) bias_mask_backward_bf16(src, static_cast<uint16_t*>(dst), db, F, r0, r1, key, t, scale);
      else bias_mask_backward_fp32(src, static_cast<float*>(dst), db, F, r0, r1, key, t, scale);
    });
    return {dout, dbranch, dbias, at::Tensor()};
  }
};

/// dropout(relu(y + bias)) in one pass (y fp32 or bf16 [N, F], contiguous; bias fp32 [F]); the
/// backward pass reads the output instead of recomputing the mask.
struct BiasReluDropout : torch::autograd::Function<BiasReluDropout> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& y, const at::Tensor& bias,
                            int64_t threshold) {
    RECORD_USER_SCOPE("nmt::bias_relu_dropout");
    const MaskKey key = key_of(threshold > 0 ? draw_key() : 0);  // p = 0 draws nothing, as dropout()
    const auto t = static_cast<uint32_t>(threshold);
    const auto scale = static_cast<float>(keep_scale(threshold));
    const int64_t F = bias.numel();
    auto out = at::empty_like(y, at::MemoryFormat::Contiguous);
    const float* b = bias.data_ptr<float>();
    if (y.scalar_type() == at::kBFloat16) {
      const auto* yp = reinterpret_cast<const uint16_t*>(y.data_ptr<at::BFloat16>());
      auto* op = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
      at::parallel_for(0, y.numel(), kGrain, [&](int64_t i0, int64_t i1) { bias_relu_mask_bf16(yp, b, op, F, i0, i1, key, t, scale); });
    } else {
      const float* yp = y.data_ptr<float>();
      float* op = out.data_ptr<float>();
      at::parallel_for(0, y.numel(), kGrain, [&](int64_t i0, int64_t i1) { bias_relu_mask_fp32(yp, b, op, F, i0, i1, key, t, scale); });
    }
    ctx->saved_data["scale"] = static_cast<double>(scale);
    ctx->save_for_backward({out});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_USER_SCOPE("nmt::bias_relu_dropout_backward");
    const auto out = ctx->get_saved_variables()[0];
    const auto dout = grads[0].to(out.scalar_type()).contiguous();
    const auto scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const int64_t F = out.size(-1), N = out.numel() / std::max<int64_t>(1, F);
    auto dy = at::empty_like(out);
    const bool bf16 = out.scalar_type() == at::kBFloat16;
    const void* dout_p = dout.data_ptr();
    const void* out_p = out.data_ptr();
    void* dy_p = dy.data_ptr();
    auto dbias = blockwise_bias_gradient(N, F, out.options(), [&](int64_t r0, int64_t r1, float* db) {
      if (bf16)
        bias_relu_mask_backward_bf16(static_cast<const uint16_t*>(dout_p), static_cast<const uint16_t*>(out_p),
                                     static_cast<uint16_t*>(dy_p), db, F, r0, r1, scale);
      else
        bias_relu_mask_backward_fp32(static_cast<const float*>(dout_p), static_cast<const float*>(out_p),
                                     static_cast<float*>(dy_p), db, F, r0, r1, scale);
    });
    return {dy, dbias, at::Tensor()};
  }
};

/// softmax(scale·scores + bias) and its dropout in one pass over rows (scores fp32 or bf16
/// [N, H, T, S], contiguous; bias a view expanded to [N, H, T, S] with unit stride along S, or
/// [0] for none: LibTorch 1.13's Function takes no undefined input). Outputs {probs} without
/// dropout, {probs, dropped} with it; the backward pass recomputes the mask from its key.
struct AttentionSoftmaxDropout : torch::autograd::Function<AttentionSoftmaxDropout> {
  /// Rows per block of the loops: the backward pass keeps a block's dropout factors in cache.
  static int64_t block_rows(int64_t S) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(1, S)); }

  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& scores,
                                                const at::Tensor& bias, double scale, int64_t threshold) {
    RECORD_USER_SCOPE("nmt::attention_softmax_dropout");
    const uint64_t draw = threshold > 0 ? draw_key() : 0;  // p = 0 draws nothing, as dropout()
    const MaskKey key = key_of(draw);
    const auto t = static_cast<uint32_t>(threshold);
    const auto keep = static_cast<float>(keep_scale(threshold));
    const int64_t S = scores.size(3), rows = scores.numel() / std::max<int64_t>(1, S);
    BiasRows bias_rows;
    if (bias.numel() > 0)
      bias_rows = {bias.data_ptr<float>(), scores.size(1), scores.size(2), bias.stride(0), bias.stride(1), bias.stride(2)};
    auto probs = at::empty_like(scores, at::MemoryFormat::Contiguous);
    auto dropped = threshold > 0 ? at::empty_like(probs) : probs;
    const auto s = static_cast<float>(scale);
    const bool bf16 = scores.scalar_type() == at::kBFloat16;
    at::parallel_for(0, rows, simd::rows_per_task(S), [&](int64_t r0, int64_t r1) {
      std::vector<float> z(static_cast<size_t>(padded_row(S)));
      for (int64_t a = r0; a < r1; a += block_rows(S)) {
        const int64_t b = std::min(r1, a + block_rows(S));
        if (bf16)
          attention_softmax_bf16(reinterpret_cast<const uint16_t*>(scores.data_ptr<at::BFloat16>()),
                                 reinterpret_cast<uint16_t*>(probs.data_ptr<at::BFloat16>()),
                                 reinterpret_cast<uint16_t*>(dropped.data_ptr<at::BFloat16>()), z.data(), a, b, S, s,
                                 bias_rows, key, t, keep);
        else
          attention_softmax_fp32(scores.data_ptr<float>(), probs.data_ptr<float>(), dropped.data_ptr<float>(), z.data(),
                                 a, b, S, s, bias_rows, key, t, keep);
      }
    });
    ctx->saved_data["key"] = static_cast<int64_t>(draw);
    ctx->saved_data["threshold"] = threshold;
    ctx->saved_data["scale"] = scale;
    ctx->save_for_backward({probs});
    if (threshold == 0) return {probs};
    return {probs, dropped};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_USER_SCOPE("nmt::attention_softmax_dropout_backward");
    const auto probs = ctx->get_saved_variables()[0];
    const int64_t threshold = ctx->saved_data["threshold"].toInt();
    const auto type = probs.scalar_type();
    auto as_probs = [&](const at::Tensor& g) { return g.defined() ? g.to(type).contiguous() : g; };
    const auto d_probs = as_probs(grads[0]);
    // Without dropout, probs is also the product's operand: its one gradient is d_dropped.
    const auto d_dropped = threshold > 0 ? as_probs(grads[1]) : d_probs;
    torch::autograd::variable_list out(4);
    if (!d_dropped.defined() && !d_probs.defined()) return out;
    const MaskKey key = key_of(static_cast<uint64_t>(ctx->saved_data["key"].toInt()));
    const auto t = static_cast<uint32_t>(threshold);
    const auto keep = static_cast<float>(keep_scale(threshold));
    const auto s = static_cast<float>(ctx->saved_data["scale"].toDouble());
    // Gradients that did not arrive are zeros (one of the two outputs unused).
    const auto dd = d_dropped.defined() ? d_dropped : at::zeros_like(probs);
    const bool extra = threshold > 0 && d_probs.defined();
    const int64_t S = probs.size(3), rows = probs.numel() / std::max<int64_t>(1, S);
    auto ds = at::empty_like(probs);
    const bool bf16 = type == at::kBFloat16;
    at::parallel_for(0, rows, simd::rows_per_task(S), [&](int64_t r0, int64_t r1) {
      std::vector<float> factor(static_cast<size_t>(block_rows(S) * S)), dp(static_cast<size_t>(padded_row(S)));
      for (int64_t a = r0; a < r1; a += block_rows(S)) {
        const int64_t b = std::min(r1, a + block_rows(S));
        if (bf16) {
          auto bits = [](const at::Tensor& x) { return reinterpret_cast<uint16_t*>(x.data_ptr<at::BFloat16>()); };
          attention_softmax_backward_bf16(bits(probs), bits(dd), extra ? bits(d_probs) : nullptr, bits(ds),
                                          factor.data(), dp.data(), a, b, S, s, key, t, keep);
        } else {
          attention_softmax_backward_fp32(probs.data_ptr<float>(), dd.data_ptr<float>(),
                                          extra ? d_probs.data_ptr<float>() : nullptr, ds.data_ptr<float>(),
                                          factor.data(), dp.data(), a, b, S, s, key, t, keep);
        }
      }
    });
    out[0] = ds;
    return out;
  }
};

/// The threshold of p: element bits below it are dropped (p·2^16 rounded).
int64_t threshold_of(double p) {
  TORCH_CHECK(p >= 0 && p < 1, "dropout probability must be in [0, 1), got ", p);
  return std::llround(p * kLevels);
}

}  // namespace

at::Tensor dropout(const at::Tensor& x, double p, bool training) {
  const int64_t threshold = threshold_of(p);  // drop iff the element's 16 bits < threshold
  if (!training) return x;
  if (!x.device().is_cpu()) return p > 0 ? at::dropout(x, p, true) : x;
  if (threshold == 0) return x;
  if (threshold == kLevels) return x * 0.0;  // p > 1 − 2^-17: everything dropped
  return MaskedDropout::apply(x, threshold);
}

at::Tensor dropout_add(const at::Tensor& x, const at::Tensor& y, double p, bool training, const at::Tensor& bias) {
  const int64_t threshold = threshold_of(p);
  TORCH_CHECK(!bias.defined() || (y.dim() >= 1 && bias.dim() == 1 && bias.size(0) == y.size(-1)), "dropout_add: bias of ",
              bias.defined() ? bias.sizes() : at::IntArrayRef{}, " for y of ", y.sizes(), ": expected [",
              y.dim() >= 1 ? y.size(-1) : 0, "]");
  const bool fused = training && threshold > 0 && threshold < kLevels && x.device().is_cpu() && y.device().is_cpu() &&
                     x.scalar_type() == at::kFloat && (y.scalar_type() == at::kFloat || y.scalar_type() == at::kBFloat16) &&
                     x.sizes() == y.sizes() && x.is_contiguous() && y.is_contiguous() && x.numel() <= (int64_t{1} << 33) &&
                     (!bias.defined() || (bias.device().is_cpu() && bias.scalar_type() == at::kFloat &&
                                          bias.is_contiguous() && bias.numel() > 0));
  if (!fused) {
    const auto branch = bias.defined() ? (y.to(at::kFloat) + bias).to(y.scalar_type()) : y;
    return x + models::dropout(branch, p, training);
  }
  return DropoutAdd::apply(x, y, bias.defined() ? bias : at::empty({0}, x.options()), threshold);
}

at::Tensor bias_relu_dropout(const at::Tensor& y, const at::Tensor& bias, double p, bool training) {
  const int64_t threshold = threshold_of(p);
  TORCH_CHECK(y.dim() >= 1 && bias.dim() == 1 && bias.size(0) == y.size(-1), "bias_relu_dropout: bias of ", bias.sizes(),
              " for y of ", y.sizes(), ": expected [", y.dim() >= 1 ? y.size(-1) : 0, "]");
  const bool fused = training && threshold < kLevels && y.device().is_cpu() && bias.device().is_cpu() &&
                     (y.scalar_type() == at::kFloat || y.scalar_type() == at::kBFloat16) &&
                     bias.scalar_type() == at::kFloat && y.is_contiguous() && bias.is_contiguous() && y.numel() > 0 &&
                     y.numel() <= (int64_t{1} << 33);
  if (!fused) return models::dropout(at::relu(y.to(bias.scalar_type()) + bias), p, training).to(y.scalar_type());
  return BiasReluDropout::apply(y, bias, threshold);
}

AttentionProbs attention_softmax_dropout(const at::Tensor& scores, double scale, const at::Tensor& bias, double p,
                                         bool training) {
  const int64_t threshold = threshold_of(p);
  TORCH_CHECK(scores.dim() == 4, "attention_softmax_dropout: scores of ", scores.sizes(), ": expected [N, H, T, S]");
  const auto expanded = bias.defined() ? bias.expand(scores.sizes()) : bias;  // throws if it does not broadcast
  const bool fused = training && threshold < kLevels && scores.device().is_cpu() &&
                     (scores.scalar_type() == at::kFloat || scores.scalar_type() == at::kBFloat16) &&
                     scores.is_contiguous() && scores.numel() > 0 && scores.numel() <= (int64_t{1} << 33) &&
                     (!bias.defined() || (bias.device().is_cpu() && bias.scalar_type() == at::kFloat &&
                                          expanded.stride(3) == 1));
  if (!fused) {
    auto z = at_least_fp32(scores) * scale;
    auto probs = at::softmax(bias.defined() ? z.add_(bias) : z, -1);
    return {models::dropout(probs, p, training), probs};
  }
  const auto none = at::empty({0}, scores.options().dtype(at::kFloat));
  auto out = AttentionSoftmaxDropout::apply(scores, bias.defined() ? expanded : none, scale, threshold);
  return {out.size() > 1 ? out[1] : out[0], out[0]};
}

}  // namespace nmt::models

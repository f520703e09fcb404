#pragma once
/// @file simd.h
/// Helpers for the few hand-written CPU loops (dropout masks, the log-softmax top-k of beam
/// search, the loss from logits, Bahdanau scores, the LSTM cell): a function attribute that compiles a loop for AVX-512, AVX2
/// and the baseline and picks one at load time, bf16 ↔ fp32 conversions by bit operations,
/// and 16-lane fp32 vectors (GCC vector extensions) with loads, stores, e^x, tanh and
/// the logistic function.
#include <algorithm>
#include <cstdint>
#include <cstring>

// GCC's target_clones: the function is compiled once per target and the widest one the CPU
// has is chosen when the library is loaded. Elsewhere the function is compiled once.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NMT_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), optimize("tree-vectorize")))
#else
#define NMT_VECTOR_CLONES
#endif

// For the helpers of such a function: inlined into each clone, so that they are compiled for
// its target too (called out of line, they would run with the baseline's instructions).
#if defined(__GNUC__)
#define NMT_INLINE inline __attribute__((always_inline))
#else
#define NMT_INLINE inline
#endif

// For a lambda that takes or returns vectors and runs inside such a function (the per-chunk
// operations of the dropout loops): out of line, GCC compiles a lambda once, for the baseline
// target, and an AVX-512 clone then passes it vectors in registers that the baseline code does
// not read (what GCC's -Wpsabi note warns of): seen on 2026-12-07 as masks of garbage in a bf16
// backward pass. Forced inline, it is compiled within each clone. Placed after the parameters.
#if defined(__GNUC__)
#define NMT_LAMBDA_INLINE __attribute__((always_inline))
#else
#define NMT_LAMBDA_INLINE
#endif

namespace nmt::simd {

/// The fp32 value of bf16 bits `h` (exact).
NMT_INLINE float bf16_bits_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// fp32 bits u (one value or lane by lane) plus the increment of bf16's round to nearest even:
/// the top 16 bits of the result are u rounded to bf16 (NaN left to the caller).
template <class U>
NMT_INLINE U bf16_rounding_sum(U u) {
  return u + 0x7fffu + ((u >> 16) & 1u);
}

/// The bf16 bits of `f`, rounded to nearest even as c10::BFloat16 does; NaN stays NaN.
NMT_INLINE uint16_t float_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const uint16_t rounded = static_cast<uint16_t>(bf16_rounding_sum(u) >> 16);
  return (u & 0x7fffffffu) > 0x7f800000u ? uint16_t{0x7fc0} : rounded;
}

// GCC/Clang vector extensions: 16 fp32 lanes, one AVX-512 register (two AVX2 ones, four SSE
// ones in the other clones of NMT_VECTOR_CLONES).
using f32x16 = float __attribute__((vector_size(64)));
using i32x16 = int32_t __attribute__((vector_size(64)));
using u32x16 = uint32_t __attribute__((vector_size(64)));
using u16x16 = uint16_t __attribute__((vector_size(32)));
constexpr int64_t kLanes = 16;

NMT_INLINE f32x16 splat(float v) { return f32x16{} + v; }
/// 0, 1, ..., 15: each lane's index.
NMT_INLINE i32x16 lane_indices() { return i32x16{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}; }
/// Lane-wise maximum.
NMT_INLINE f32x16 maximum(f32x16 a, f32x16 b) { return a > b ? a : b; }

/// Rows of `row_length` elements per task of at::parallel_for in the row loops (about 64k
/// elements, at least one row).
inline int64_t rows_per_task(int64_t row_length) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, row_length));
}

NMT_INLINE float to_float(float v) { return v; }
NMT_INLINE float to_float(uint16_t bf16) { return bf16_bits_to_float(bf16); }

/// Elements p[0..n) as fp32 lanes (n ≤ 16), the missing lanes `pad`.
NMT_INLINE f32x16 load(const float* p, int64_t n, float pad) {
  f32x16 v;
  if (n == kLanes) {
    std::memcpy(&v, p, sizeof v);
  } else {
    v = splat(pad);
    for (int64_t i = 0; i < n; ++i) v[i] = p[i];
  }
  return v;
}
NMT_INLINE f32x16 load(const uint16_t* p, int64_t n, float pad) {
  if (n < kLanes) {
    f32x16 v = splat(pad);
    for (int64_t i = 0; i < n; ++i) v[i] = to_float(p[i]);
    return v;
  }
  u16x16 h;
  std::memcpy(&h, p, sizeof h);
  return reinterpret_cast<f32x16>(__builtin_convertvector(h, u32x16) << 16);  // bf16 is fp32's top half
}

/// Stores the first n ≤ 16 lanes of v at p (bf16: rounded to nearest even, as float_to_bf16_bits).
NMT_INLINE void store(float* p, f32x16 v, int64_t n) {
  if (n == kLanes) {
    std::memcpy(p, &v, sizeof v);
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = v[i];
  }
}
NMT_INLINE void store(uint16_t* p, f32x16 v, int64_t n) {
  if (n < kLanes) {
    for (int64_t i = 0; i < n; ++i) p[i] = float_to_bf16_bits(v[i]);
    return;
  }
  const u32x16 u = reinterpret_cast<u32x16>(v);
  const u32x16 rounded = bf16_rounding_sum(u) >> 16;
  const u32x16 bits = (u & 0x7fffffffu) > 0x7f800000u ? u32x16{} + 0x7fc0u : rounded;  // NaN stays NaN
  const u16x16 h = __builtin_convertvector(bits, u16x16);
  std::memcpy(p, &h, sizeof h);
}

/// e^x for x ≤ 0, lane by lane: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by Cephes' degree-6
/// polynomial for expf (about 1 ulp), times 2^n built in the exponent bits. 0 below -87.3
/// (where e^x leaves the normal floats), which no sum that holds a row maximum's e^0 = 1
/// notices.
NMT_INLINE f32x16 exp_nonpositive(f32x16 x) {
  const f32x16 lo = splat(-87.3f);
  const i32x16 underflow = x < lo;
  x = underflow ? lo : x;
  const f32x16 n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest: 1.5·2^23
  const f32x16 r = (x - n * 0.693359375f) + n * 2.12194440e-4f;           // Cody-Waite: ln 2 in two parts
  f32x16 p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const i32x16 bits = (__builtin_convertvector(n, i32x16) + 127) << 23;
  const f32x16 result = p * reinterpret_cast<f32x16>(bits);
  return underflow ? splat(0.0f) : result;
}

/// tanh(x) lane by lane, after Cephes' tanhf: an odd polynomial below |x| = 0.625, (1 − e)/(1 + e)
/// with e = e^{−2|x|} above it (no cancellation there, as e ≤ 0.29); a few ulp. ±1 at ±∞, NaN
/// stays NaN.
NMT_INLINE f32x16 tanh(f32x16 x) {
  const u32x16 sign = reinterpret_cast<u32x16>(x) & 0x80000000u;
  const f32x16 a = reinterpret_cast<f32x16>(reinterpret_cast<u32x16>(x) & 0x7fffffffu);  // |x|
  const f32x16 e = exp_nonpositive(-2.0f * a);
  const f32x16 large = (1.0f - e) / (1.0f + e);
  const f32x16 z = a * a;
  f32x16 p = splat(-5.70498872745e-3f);
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const f32x16 small = p * z * a + a;
  const f32x16 r = a < 0.625f ? small : large;
  return reinterpret_cast<f32x16>(reinterpret_cast<u32x16>(r) | sign);
}

/// The logistic function 1/(1 + e^{−x}) lane by lane, from e = e^{−|x|}: 1/(1 + e) for x ≥ 0,
/// e/(1 + e) below (no overflow, about 2 ulp). NaN stays NaN.
NMT_INLINE f32x16 sigmoid(f32x16 x) {
  const f32x16 a = reinterpret_cast<f32x16>(reinterpret_cast<u32x16>(x) & 0x7fffffffu);  // |x|
  const f32x16 e = exp_nonpositive(-a);
  const f32x16 r = 1.0f / (1.0f + e);
  const f32x16 y = x < 0.0f ? e * r : r;
  return x != x ? x : y;  // NaN lanes: exp_nonpositive clamps them
}

/// Whether some lane of a comparison's result is set.
NMT_INLINE bool any_lane(i32x16 m) {
  int32_t any = 0;
  for (int64_t l = 0; l < kLanes; ++l) any |= m[l];
  return any != 0;
}

/// The largest lane; NaN lanes are passed over (−∞ when every lane is NaN or −∞).
NMT_INLINE float lanes_max(f32x16 v) {
  float m = -__builtin_inff();
  for (int64_t l = 0; l < kLanes; ++l) m = v[l] > m ? v[l] : m;
  return m;
}

/// Σ of the lanes, in double.
NMT_INLINE double lanes_sum(f32x16 v) {
  double total = 0;
  for (int64_t l = 0; l < kLanes; ++l) total += v[l];
  return total;
}

}  // namespace nmt::simd

#pragma once
/// @file simd.h
/// Helpers for the few hand-written CPU loops (dropout masks, the log-softmax top-k of beam
/// search, the loss from logits, Bahdanau scores, the LSTM cell): a function attribute that compiles a loop for AVX-512, AVX2
/// and the baseline and picks one at load time, bf16 ↔ fp32 conversions by bit operations,
/// and fp32 vectors of 16 or 8 lanes (GCC vector extensions) with loads, stores, e^x, tanh and
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

// GCC/Clang vector extensions of W fp32 lanes: W = 16 is one AVX-512 register, W = 8 one AVX2
// register. In an AVX2 clone GCC 12 splits 16-lane arithmetic into two halves but lowers a
// 16-lane comparison or select lane by lane (122 instructions for one compare-and-select loop
// against 15 at 8 lanes). So the kernels that compare or select (dropout masks, ReLU, softmax,
// the loss, top-k, and all that use exp_nonpositive, tanh or sigmoid) are templates over W and
// run at the width vector_lanes() names: 16 where the CPU has AVX-512, 8 elsewhere (README "A
// seventh session"). Layer norm stays at 16 lanes: plain arithmetic in fp32 (its bf16 store's
// NaN select runs where bf16 is used, on CPUs with AVX-512).
// Each width is spelled out: GCC 12 drops a vector_size that depends on a template parameter
// (`float __attribute__((vector_size(4 * W)))` in a template is a plain float).
template <int W>
struct Lanes;
template <>
struct Lanes<16> {
  using f32 = float __attribute__((vector_size(64)));
  using i32 = int32_t __attribute__((vector_size(64)));
  using u32 = uint32_t __attribute__((vector_size(64)));
  using u16 = uint16_t __attribute__((vector_size(32)));
};
template <>
struct Lanes<8> {
  using f32 = float __attribute__((vector_size(32)));
  using i32 = int32_t __attribute__((vector_size(32)));
  using u32 = uint32_t __attribute__((vector_size(32)));
  using u16 = uint16_t __attribute__((vector_size(16)));
};
template <int W>
using f32v = typename Lanes<W>::f32;
template <int W>
using i32v = typename Lanes<W>::i32;
template <int W>
using u32v = typename Lanes<W>::u32;
/// The number of lanes of a vector type of 32-bit lanes.
template <class V>
constexpr int kWidthOf = static_cast<int>(sizeof(V) / 4);

using f32x16 = f32v<16>;
using i32x16 = i32v<16>;
using u32x16 = u32v<16>;
using u16x16 = Lanes<16>::u16;
constexpr int64_t kLanes = 16;

/// The width the kernels run at: 16 on a CPU with AVX-512F, else 8; the CPU is asked once, on
/// the first call. set_vector_lanes() changes it (tests compare the two widths on one CPU).
inline int& vector_lanes_setting() {
  static int lanes = [] {
#if defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 16 : 8;
#else
    return 8;
#endif
  }();
  return lanes;
}
inline int vector_lanes() { return vector_lanes_setting(); }
/// Sets the kernels' width; `lanes` must be 8 or 16 (either runs on any CPU, as GCC lowers the
/// wider vectors where the target lacks them; only the speed differs). Not thread-safe: for tests.
inline void set_vector_lanes(int lanes) { vector_lanes_setting() = lanes == 16 ? 16 : 8; }

// kernel<16>(args...) or kernel<8>(args...), by vector_lanes(). Inside an NMT_VECTOR_CLONES
// function both instantiations are compiled for the clone's target.
#define NMT_BY_LANES(kernel, ...) \
  (::nmt::simd::vector_lanes() == 16 ? kernel<16>(__VA_ARGS__) : kernel<8>(__VA_ARGS__))

template <class F = f32x16>
NMT_INLINE F splat(float v) {
  return F{} + v;
}
/// 0, 1, ..., W − 1: each lane's index.
template <int W = 16>
NMT_INLINE i32v<W> lane_indices() {
  i32v<W> v;
  for (int l = 0; l < W; ++l) v[l] = l;
  return v;
}
/// Lane-wise maximum.
template <class F>
NMT_INLINE F maximum(F a, F b) {
  return a > b ? a : b;
}

/// Rows of `row_length` elements per task of at::parallel_for in the row loops (about 64k
/// elements, at least one row).
inline int64_t rows_per_task(int64_t row_length) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, row_length));
}

NMT_INLINE float to_float(float v) { return v; }
NMT_INLINE float to_float(uint16_t bf16) { return bf16_bits_to_float(bf16); }

/// Elements p[0..n) as W fp32 lanes (n ≤ W), the missing lanes `pad`.
template <int W = 16>
NMT_INLINE f32v<W> load(const float* p, int64_t n, float pad) {
  f32v<W> v;
  if (n == W) {
    std::memcpy(&v, p, sizeof v);
  } else {
    v = splat<f32v<W>>(pad);
    for (int64_t i = 0; i < n; ++i) v[i] = p[i];
  }
  return v;
}
template <int W = 16>
NMT_INLINE f32v<W> load(const uint16_t* p, int64_t n, float pad) {
  if (n < W) {
    f32v<W> v = splat<f32v<W>>(pad);
    for (int64_t i = 0; i < n; ++i) v[i] = to_float(p[i]);
    return v;
  }
  typename Lanes<W>::u16 h;
  std::memcpy(&h, p, sizeof h);
  return reinterpret_cast<f32v<W>>(__builtin_convertvector(h, u32v<W>) << 16);  // bf16 is fp32's top half
}

/// Stores the first n ≤ W lanes of v at p (bf16: rounded to nearest even, as float_to_bf16_bits).
template <class F>
NMT_INLINE void store(float* p, F v, int64_t n) {
  if (n == kWidthOf<F>) {
    std::memcpy(p, &v, sizeof v);
  } else {
    for (int64_t i = 0; i < n; ++i) p[i] = v[i];
  }
}
template <class F>
NMT_INLINE void store(uint16_t* p, F v, int64_t n) {
  constexpr int W = kWidthOf<F>;
  if (n < W) {
    for (int64_t i = 0; i < n; ++i) p[i] = float_to_bf16_bits(v[i]);
    return;
  }
  const auto u = reinterpret_cast<u32v<W>>(v);
  const u32v<W> rounded = bf16_rounding_sum(u) >> 16;
  const u32v<W> bits = (u & 0x7fffffffu) > 0x7f800000u ? u32v<W>{} + 0x7fc0u : rounded;  // NaN stays NaN
  const auto h = __builtin_convertvector(bits, typename Lanes<W>::u16);
  std::memcpy(p, &h, sizeof h);
}

/// e^x for x ≤ 0, lane by lane: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by Cephes' degree-6
/// polynomial for expf (about 1 ulp), times 2^n built in the exponent bits. 0 below -87.3
/// (where e^x leaves the normal floats), which no sum that holds a row maximum's e^0 = 1
/// notices.
template <class F>
NMT_INLINE F exp_nonpositive(F x) {
  using I = i32v<kWidthOf<F>>;
  const F lo = splat<F>(-87.3f);
  const I underflow = x < lo;
  x = underflow ? lo : x;
  const F n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest: 1.5·2^23
  const F r = (x - n * 0.693359375f) + n * 2.12194440e-4f;           // Cody-Waite: ln 2 in two parts
  F p = splat<F>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const I bits = (__builtin_convertvector(n, I) + 127) << 23;
  const F result = p * reinterpret_cast<F>(bits);
  return underflow ? splat<F>(0.0f) : result;
}

/// tanh(x) lane by lane, after Cephes' tanhf: an odd polynomial below |x| = 0.625, (1 − e)/(1 + e)
/// with e = e^{−2|x|} above it (no cancellation there, as e ≤ 0.29); a few ulp. ±1 at ±∞, NaN
/// stays NaN.
template <class F>
NMT_INLINE F tanh(F x) {
  using U = u32v<kWidthOf<F>>;
  const U sign = reinterpret_cast<U>(x) & 0x80000000u;
  const F a = reinterpret_cast<F>(reinterpret_cast<U>(x) & 0x7fffffffu);  // |x|
  const F e = exp_nonpositive(-2.0f * a);
  const F large = (1.0f - e) / (1.0f + e);
  const F z = a * a;
  F p = splat<F>(-5.70498872745e-3f);
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const F small = p * z * a + a;
  const F r = a < 0.625f ? small : large;
  return reinterpret_cast<F>(reinterpret_cast<U>(r) | sign);
}

/// The logistic function 1/(1 + e^{−x}) lane by lane, from e = e^{−|x|}: 1/(1 + e) for x ≥ 0,
/// e/(1 + e) below (no overflow, about 2 ulp). NaN stays NaN.
template <class F>
NMT_INLINE F sigmoid(F x) {
  using U = u32v<kWidthOf<F>>;
  const F a = reinterpret_cast<F>(reinterpret_cast<U>(x) & 0x7fffffffu);  // |x|
  const F e = exp_nonpositive(-a);
  const F r = 1.0f / (1.0f + e);
  const F y = x < 0.0f ? e * r : r;
  return x != x ? x : y;  // NaN lanes: exp_nonpositive clamps them
}

/// Whether some lane of a comparison's result is set.
template <class I>
NMT_INLINE bool any_lane(I m) {
  int32_t any = 0;
  for (int l = 0; l < kWidthOf<I>; ++l) any |= m[l];
  return any != 0;
}

/// The largest lane; NaN lanes are passed over (−∞ when every lane is NaN or −∞).
template <class F>
NMT_INLINE float lanes_max(F v) {
  float m = -__builtin_inff();
  for (int l = 0; l < kWidthOf<F>; ++l) m = v[l] > m ? v[l] : m;
  return m;
}

/// Σ of the lanes, in double.
template <class F>
NMT_INLINE double lanes_sum(F v) {
  double total = 0;
  for (int l = 0; l < kWidthOf<F>; ++l) total += v[l];
  return total;
}

}  // namespace nmt::simd

#pragma once
/// @file simd.h
/// Helpers for the few hand-written CPU loops (dropout masks, the log-softmax top-k of beam
/// search): a function attribute that compiles a loop for AVX-512, AVX2 and the baseline and
/// picks one at load time, and bf16 ↔ fp32 conversions by bit operations, which vectorise.
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

namespace nmt::simd {

/// The fp32 value of bf16 bits `h` (exact).
NMT_INLINE float bf16_bits_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// The bf16 bits of `f`, rounded to nearest even as c10::BFloat16 does; NaN stays NaN.
NMT_INLINE uint16_t float_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const uint16_t rounded = static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  return (u & 0x7fffffffu) > 0x7f800000u ? uint16_t{0x7fc0} : rounded;
}

}  // namespace nmt::simd

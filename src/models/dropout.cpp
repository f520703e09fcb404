#include "nmt/models/dropout.h"

#include <cmath>
#include <cstdint>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/autograd.h>

#include "nmt/simd.h"

namespace nmt::models {
namespace {

constexpr int64_t kLevels = 65536;  // 16 bits per element

/// 32-bit integer hash (Wellons' "lowbias32", a bijection of the 32-bit integers with low bias).
inline uint32_t mix32(uint32_t x) {
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

/// Element i's 16 random bits: mix32(mix32(i ⊕ k1) + k2), counter-based (as Philox in ATen's
/// GPU dropout), so any thread computes any element, and the backward pass recomputes the
/// forward pass's mask instead of storing it. The key enters both rounds, so two masks of
/// different keys are not shifted copies of one sequence.
inline uint32_t element_bits(uint32_t i, MaskKey key) { return mix32(mix32(i ^ key.k1) + key.k2) >> 16; }

/// dst[i] = store(load(src[i])·scale) where element i's bits are ≥ threshold, else the same
/// times 0, for i in [i0, i1); Acc is the type the product is taken in.
template <class T, class Acc, class Load, class Store>
inline void mask_range(const T* src, T* dst, int64_t i0, int64_t i1, MaskKey key, uint32_t threshold, Acc scale,
                       Load load, Store store) {
  for (int64_t i = i0; i < i1; ++i) {
    const Acc keep = element_bits(static_cast<uint32_t>(i), key) >= threshold ? scale : Acc(0);
    dst[i] = store(load(src[i]) * keep);
  }
}

// The fp32 and bf16 loops are compiled for AVX-512, AVX2 and the baseline (NMT_VECTOR_CLONES).
NMT_VECTOR_CLONES
void mask_bf16(const uint16_t* src, uint16_t* dst, int64_t i0, int64_t i1, MaskKey key, uint32_t threshold,
               float scale) {
  mask_range(src, dst, i0, i1, key, threshold, scale, simd::bf16_bits_to_float, simd::float_to_bf16_bits);
}

NMT_VECTOR_CLONES
void mask_fp32(const float* src, float* dst, int64_t i0, int64_t i1, MaskKey key, uint32_t threshold, float scale) {
  mask_range(src, dst, i0, i1, key, threshold, scale, [](float v) { return v; }, [](float v) { return v; });
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
  TORCH_CHECK(n <= (int64_t{1} << 32), "dropout: at most 2^32 elements, got ", n);
  const auto t = static_cast<uint32_t>(threshold);
  const double scale = keep_scale(threshold);
  constexpr int64_t kGrain = 16384;  // elements per task
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
        mask_range(src, dst, i0, i1, key, t, static_cast<acc_t>(scale), [](scalar_t v) { return static_cast<acc_t>(v); },
                   [](acc_t v) { return static_cast<scalar_t>(v); });
      });
    });
  }
  return out;
}

MaskKey key_of(uint64_t draw) { return {static_cast<uint32_t>(draw), static_cast<uint32_t>(draw >> 32)}; }

/// Dropout with a recomputed mask: saves only the key, not the [..] mask.
struct MaskedDropout : torch::autograd::Function<MaskedDropout> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t threshold) {
    uint64_t draw = 0;
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      draw = at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
    }
    ctx->saved_data["key"] = static_cast<int64_t>(draw);
    ctx->saved_data["threshold"] = threshold;
    return apply_mask(x, key_of(draw), threshold);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto draw = static_cast<uint64_t>(ctx->saved_data["key"].toInt());
    return {apply_mask(grads[0], key_of(draw), ctx->saved_data["threshold"].toInt()), at::Tensor()};
  }
};

}  // namespace

at::Tensor dropout(const at::Tensor& x, double p, bool training) {
  TORCH_CHECK(p >= 0 && p < 1, "dropout probability must be in [0, 1), got ", p);
  if (!training) return x;
  if (!x.device().is_cpu()) return p > 0 ? at::dropout(x, p, true) : x;
  const int64_t threshold = std::llround(p * kLevels);  // drop iff the element's 16 bits < threshold
  if (threshold == 0) return x;
  if (threshold == kLevels) return x * 0.0;  // p > 1 − 2^-17: everything dropped
  return MaskedDropout::apply(x, threshold);
}

}  // namespace nmt::models

#pragma once
/// @file bias_gradient.h
/// The bias gradient of a fused pass over rows, summed so that it does not depend on the thread
/// count: for the hand-written passes that add a bias in the forward pass and sum its gradient in
/// the same pass as their backward (dropout.h, attention_heads.h).
#include <algorithm>
#include <cstdint>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "nmt/simd.h"

namespace nmt::models {

/// The bias gradient [F] (fp32) of N rows of F: block(r0, r1, sums) adds rows [r0, r1) to
/// sums [F] (zeros on entry) and writes whatever else its pass writes. The rows go in blocks of
/// 32 to ATen's threads, each block into its own sums, which are then added in block order: the
/// result is the same for any thread count. `options` gives the device.
template <class Block>
at::Tensor blockwise_bias_gradient(int64_t N, int64_t F, const at::TensorOptions& options, Block block) {
  constexpr int64_t kBlockRows = 32;
  const int64_t blocks = std::max<int64_t>(1, (N + kBlockRows - 1) / kBlockRows);
  auto partial = at::zeros({blocks, F}, options.dtype(at::kFloat));
  float* sums = partial.data_ptr<float>();
  const int64_t grain = std::max<int64_t>(1, simd::rows_per_task(F) / kBlockRows);
  at::parallel_for(0, blocks, grain, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) block(k * kBlockRows, std::min(N, (k + 1) * kBlockRows), sums + k * F);
  });
  return partial.sum(0);
}

}  // namespace nmt::models

#include "nmt/models/dropout.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace nmt::models {

at::Tensor dropout(const at::Tensor& x, double p, bool training) {
  TORCH_CHECK(p >= 0 && p < 1, "dropout probability must be in [0, 1), got ", p);
  if (!training) return x;
  if (!x.device().is_cpu()) return p > 0 ? at::dropout(x, p, true) : x;
  constexpr int64_t kLevels = 65536;  // 16 bits per element
  const int64_t threshold = std::llround(p * kLevels);  // drop iff the element's 16 bits < threshold
  if (threshold == 0) return x;
  if (threshold == kLevels) return x * 0.0;  // p > 1 − 2^-17: everything dropped
  const int64_t n = x.numel();
  // Every bit of each 64-bit draw (random_ over the whole int64 range), read as four int16 lanes.
  auto bits = at::empty({(n + 3) / 4}, x.options().dtype(at::kLong))
                  .random_(std::numeric_limits<int64_t>::lowest(), c10::optional<int64_t>());
  auto lanes = bits.view(at::kShort).narrow(0, 0, n).view(x.sizes());
  // A lane v in [−2^15, 2^15) stands for the unsigned draw v + 2^15: kept iff that is ≥ threshold.
  auto noise = lanes.ge(threshold - kLevels / 2).to(x.scalar_type());
  noise.mul_(static_cast<double>(kLevels) / static_cast<double>(kLevels - threshold));
  return x * noise;
}

}  // namespace nmt::models

#include "nmt/models/coverage.h"

#include <ATen/ATen.h>

namespace nmt::models {

at::Tensor coverage_penalty(const at::Tensor& attention, const at::Tensor& src_mask,
                            const at::Tensor& tgt_mask) {
  auto received = (attention * tgt_mask.unsqueeze(-1).to(attention.scalar_type())).sum(1);  // [B, S]
  auto deficit = (1 - received).pow(2) * src_mask.to(attention.scalar_type());
  return deficit.sum();
}

}  // namespace nmt::models

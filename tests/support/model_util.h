#pragma once
// Fixtures shared by the model tests.
#include <vector>

#include <torch/torch.h>

#include "nmt/data/batching.h"

namespace nmt::testing {

/// Three pairs of different lengths, so the batch has padding on both sides.
inline std::vector<data::Example> examples() {
  return {{{5, 6, 7, 8, 9}, {10, 11, 12}, 0}, {{6, 7}, {13, 14, 15, 16, 17}, 1}, {{9}, {18}, 2}};
}

inline data::Batch batch_of(const std::vector<data::Example>& ex) {
  std::vector<const data::Example*> ptrs;
  for (auto& e : ex) ptrs.push_back(&e);
  return data::make_batch(ptrs, torch::kCPU);
}

}  // namespace nmt::testing

#pragma once
/// @file top_k.h
/// The k most probable tokens of each row of a softmax, from its logits, without writing the
/// [R, V] log-softmax: beam search needs only 2K of each row's V log-probs and the row's log-sum-exp.
#include <cstdint>

#include <ATen/Tensor.h>

#include "nmt/models/seq2seq.h"

namespace nmt::search {

/// The k largest entries of each row, largest first.
struct RowTopK {
  at::Tensor values;   ///< [R, k] fp32
  at::Tensor indices;  ///< [R, k] int64 positions in the row
};

/// The k largest entries of log_softmax(logits) per row, equal to
/// `at::log_softmax(logits.to(at::kFloat), 1).topk(k, 1)` within fp32 rounding (about 1e-6
/// nats; of equal entries the lower index comes first). logits: [R, V] of any floating dtype on
/// any device; k is clipped to V. On the CPU, fp32 and bf16 logits are read in place in two
/// vectorised passes per row (max with the top-k candidates, then Σ exp(x − max)), rows spread
/// over ATen's threads, so no fp32 copy or [R, V] output is made; elsewhere this is the
/// expression above. -inf logits are allowed (a row must have a finite one).
/// Throws c10::Error unless logits is 2-D and k ≥ 1.
RowTopK top_k_log_softmax(const at::Tensor& logits, int64_t k);

/// The k most probable next tokens of each row of a model's step, largest log-prob first:
/// top_k_log_softmax of its logits, or topk of its log-probs (values fp32). k is clipped to V.
RowTopK step_top_k(const models::StepOutput& out, int64_t k);

}  // namespace nmt::search

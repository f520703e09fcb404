#include "nmt/train/loss.h"

#include <ATen/ATen.h>

#include "nmt/data/batch.h"

namespace nmt::train {

LossOutput sequence_loss(const at::Tensor& log_probs, const at::Tensor& targets, double eps) {
  auto mask = targets.ne(data::kPad).to(log_probs.scalar_type());          // [B, T]
  auto nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1);      // [B, T]
  auto token_loss = nll;
  if (eps > 0) token_loss = (1.0 - eps) * nll - eps * log_probs.mean(-1);
  return {(token_loss * mask).sum(), (nll * mask).sum().detach()};
}

LossOutput token_loss(const models::ForwardOutput& out, const at::Tensor& targets, double label_smoothing) {
  if (out.nll.defined()) return {out.nll, out.nll.detach()};
  return sequence_loss(out.log_probs, targets, label_smoothing);
}

}  // namespace nmt::train

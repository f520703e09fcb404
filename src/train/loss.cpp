#include "nmt/train/loss.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "nmt/data/batch.h"

namespace nmt::train {

LossOutput sequence_loss(const at::Tensor& log_probs, const at::Tensor& targets, double eps) {
  auto mask = targets.ne(data::kPad).to(log_probs.scalar_type());          // [B, T]
  auto nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1);      // [B, T]
  auto token_loss = nll;
  if (eps > 0) token_loss = (1.0 - eps) * nll - eps * log_probs.mean(-1);
  return {(token_loss * mask).sum(), (nll * mask).sum().detach()};
}

namespace {

/// Rows of [N, V] per chunk: 32 rows of 8,000 fp32 logits are 1 MB, which stays in cache
/// between the chunk's operations.
int64_t chunk_rows(int64_t vocab) { return std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, vocab)); }

/// Σ over real positions of the smoothed cross-entropy of logits [N, V]: the forward pass keeps
/// lse [N] = log Σ_v exp(x_v), so that the backward pass needs no [N, V] of its own.
struct FusedCrossEntropy : torch::autograd::Function<FusedCrossEntropy> {
  /// Returns {smoothed loss sum, nll sum (not differentiable)}.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& logits,
                                                const at::Tensor& targets, double eps) {
    const int64_t N = logits.size(0), V = logits.size(1), step = chunk_rows(V);
    auto f32 = logits.options().dtype(at::kFloat);
    auto lse = at::empty({N}, f32), sum = at::empty({N}, f32), picked = at::empty({N}, f32);
    for (int64_t r = 0; r < N; r += step) {
      const int64_t n = std::min(step, N - r);
      auto x = logits.narrow(0, r, n).to(at::kFloat);  // [n, V]
      lse.narrow(0, r, n).copy_(at::logsumexp(x, 1));
      if (eps > 0) sum.narrow(0, r, n).copy_(x.sum(1));
      picked.narrow(0, r, n).copy_(x.gather(1, targets.narrow(0, r, n).unsqueeze(1)).squeeze(1));
    }
    auto mask = targets.ne(data::kPad).to(at::kFloat);  // [N]
    auto nll = lse - picked;                             // −log p(y)
    // −mean_v log p(v) = lse − mean_v x_v.
    auto token = eps > 0 ? (1.0 - eps) * nll + eps * (lse - sum / static_cast<double>(V)) : nll;
    ctx->save_for_backward({logits, targets, lse, mask});
    ctx->saved_data["eps"] = eps;
    auto nll_sum = (nll * mask).sum();
    ctx->mark_non_differentiable({nll_sum});
    return {(token * mask).sum(), nll_sum};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &logits = saved[0], &targets = saved[1], &lse = saved[2], &mask = saved[3];
    const double eps = ctx->saved_data["eps"].toDouble();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    const int64_t N = logits.size(0), V = logits.size(1), step = chunk_rows(V);
    auto scale = (mask * grads[0].to(at::kFloat)).unsqueeze(1);  // [N, 1]: dL/dloss on real positions, 0 on padding
    auto grad = at::empty_like(logits, at::MemoryFormat::Contiguous);
    for (int64_t r = 0; r < N; r += step) {
      const int64_t n = std::min(step, N - r);
      // softmax − (1−ε)·onehot(y) − ε/V, times the row's scale.
      auto g = logits.narrow(0, r, n).to(at::kFloat).sub_(lse.narrow(0, r, n).unsqueeze(1)).exp_();
      if (eps > 0) g.sub_(eps / static_cast<double>(V));
      g.scatter_add_(1, targets.narrow(0, r, n).unsqueeze(1), at::full({n, 1}, -(1.0 - eps), g.options()));
      grad.narrow(0, r, n).copy_(g.mul_(scale.narrow(0, r, n)));
    }
    return {grad, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

LossOutput sequence_loss_from_logits(const at::Tensor& logits, const at::Tensor& targets, double eps) {
  const int64_t V = logits.size(-1);
  auto flat = logits.reshape({-1, V});
  // Autograd records the loss; its own arithmetic is fp32 whatever autocast says.
  auto out = FusedCrossEntropy::apply(flat, targets.reshape({-1}).contiguous(), eps);
  return {out[0], out[1].detach()};
}

LossOutput token_loss(const models::ForwardOutput& out, const at::Tensor& targets, double label_smoothing) {
  if (out.nll.defined()) return {out.nll, out.nll.detach()};
  if (out.logits.defined()) return sequence_loss_from_logits(out.logits, targets, label_smoothing);
  return sequence_loss(out.log_probs, targets, label_smoothing);
}

}  // namespace nmt::train

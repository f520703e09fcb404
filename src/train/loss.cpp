#include "nmt/train/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include "nmt/data/batch.h"
#include "nmt/simd.h"

namespace nmt::train {

LossOutput sequence_loss(const at::Tensor& log_probs, const at::Tensor& targets, double eps) {
  auto mask = targets.ne(data::kPad).to(log_probs.scalar_type());          // [B, T]
  auto nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1);      // [B, T]
  auto token_loss = nll;
  if (eps > 0) token_loss = (1.0 - eps) * nll - eps * log_probs.mean(-1);
  return {(token_loss * mask).sum(), (nll * mask).sum().detach()};
}

namespace {

/// Per row of fp32 or bf16 logits x [V] (CPU, contiguous), in vectorised passes: the row's
/// log Σ exp, Σ x and x[target].
template <class T>
NMT_INLINE void row_statistics(const T* x, int64_t V, int64_t target, float& lse, float& sum, float& picked) {
  using simd::f32x16;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  f32x16 max = simd::splat(kNegInf), total = {};
  for (int64_t c = 0; c < V; c += simd::kLanes) {
    const auto n = std::min(simd::kLanes, V - c);
    const f32x16 v = simd::load(x + c, n, kNegInf);
    max = simd::maximum(max, v);
    total += n == simd::kLanes ? v : simd::load(x + c, n, 0.0f);  // the tail's missing lanes add 0
  }
  float m = kNegInf;
  for (int64_t l = 0; l < simd::kLanes; ++l) m = max[l] > m ? max[l] : m;
  f32x16 exps = {};
  for (int64_t c = 0; c < V; c += simd::kLanes)
    exps += simd::exp_nonpositive(simd::load(x + c, std::min(simd::kLanes, V - c), kNegInf) - m);
  lse = m + static_cast<float>(std::log(simd::lanes_sum(exps)));
  sum = static_cast<float>(simd::lanes_sum(total));
  picked = simd::to_float(x[target]);
}

/// One row of the gradient: g = scale·(exp(x − lse) − ε/V − (1 − ε)·onehot(target)).
template <class T>
NMT_INLINE void row_gradient(const T* x, T* g, int64_t V, int64_t target, float lse, float uniform, float gold,
                             float scale) {
  for (int64_t c = 0; c < V; c += simd::kLanes) {
    const auto n = std::min(simd::kLanes, V - c);
    const auto p = simd::exp_nonpositive(simd::load(x + c, n, -std::numeric_limits<float>::infinity()) - lse);
    auto d = (p - uniform) * scale;
    if (target >= c && target < c + n) d[target - c] = (p[target - c] - uniform - gold) * scale;
    simd::store(g + c, d, n);
  }
}

NMT_VECTOR_CLONES
void statistics_fp32(const float* x, const int64_t* targets, int64_t r0, int64_t r1, int64_t V, float* lse,
                     float* sum, float* picked) {
  for (int64_t r = r0; r < r1; ++r) row_statistics(x + r * V, V, targets[r], lse[r], sum[r], picked[r]);
}
NMT_VECTOR_CLONES
void statistics_bf16(const uint16_t* x, const int64_t* targets, int64_t r0, int64_t r1, int64_t V, float* lse,
                     float* sum, float* picked) {
  for (int64_t r = r0; r < r1; ++r) row_statistics(x + r * V, V, targets[r], lse[r], sum[r], picked[r]);
}
NMT_VECTOR_CLONES
void gradient_fp32(const float* x, float* g, const int64_t* targets, const float* lse, const float* scale,
                   int64_t r0, int64_t r1, int64_t V, float uniform, float gold) {
  for (int64_t r = r0; r < r1; ++r)
    row_gradient(x + r * V, g + r * V, V, targets[r], lse[r], uniform, gold, scale[r]);
}
NMT_VECTOR_CLONES
void gradient_bf16(const uint16_t* x, uint16_t* g, const int64_t* targets, const float* lse, const float* scale,
                   int64_t r0, int64_t r1, int64_t V, float uniform, float gold) {
  for (int64_t r = r0; r < r1; ++r)
    row_gradient(x + r * V, g + r * V, V, targets[r], lse[r], uniform, gold, scale[r]);
}

/// Whether the vectorised row loops take `logits` (else the chunked ATen expressions below).
bool row_kernels_apply(const at::Tensor& logits) {
  const auto type = logits.scalar_type();
  return logits.device().is_cpu() && logits.is_contiguous() && (type == at::kFloat || type == at::kBFloat16);
}

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
    if (row_kernels_apply(logits)) {
      // The row loops read x[target] unchecked (the ATen path's gather checks it).
      TORCH_CHECK(N == 0 || (targets.min().item<int64_t>() >= 0 && targets.max().item<int64_t>() < V),
                  "sequence_loss_from_logits: a target id lies outside the vocabulary of ", V);
      const int64_t* y = targets.data_ptr<int64_t>();
      float *l = lse.data_ptr<float>(), *s = sum.data_ptr<float>(), *p = picked.data_ptr<float>();
      at::parallel_for(0, N, simd::rows_per_task(V), [&](int64_t r0, int64_t r1) {
        if (logits.scalar_type() == at::kFloat)
          statistics_fp32(logits.data_ptr<float>(), y, r0, r1, V, l, s, p);
        else
          statistics_bf16(reinterpret_cast<const uint16_t*>(logits.data_ptr<at::BFloat16>()), y, r0, r1, V, l, s, p);
      });
    } else {
      for (int64_t r = 0; r < N; r += step) {
        const int64_t n = std::min(step, N - r);
        auto x = logits.narrow(0, r, n).to(at::kFloat);  // [n, V]
        lse.narrow(0, r, n).copy_(at::logsumexp(x, 1));
        if (eps > 0) sum.narrow(0, r, n).copy_(x.sum(1));
        picked.narrow(0, r, n).copy_(x.gather(1, targets.narrow(0, r, n).unsqueeze(1)).squeeze(1));
      }
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
    if (row_kernels_apply(logits)) {
      const auto row_scale = scale.squeeze(1).contiguous();
      const int64_t* y = targets.data_ptr<int64_t>();
      const float *l = lse.data_ptr<float>(), *sc = row_scale.data_ptr<float>();
      const auto uniform = static_cast<float>(eps / static_cast<double>(V)), gold = static_cast<float>(1.0 - eps);
      at::parallel_for(0, N, simd::rows_per_task(V), [&](int64_t r0, int64_t r1) {
        if (logits.scalar_type() == at::kFloat)
          gradient_fp32(logits.data_ptr<float>(), grad.data_ptr<float>(), y, l, sc, r0, r1, V, uniform, gold);
        else
          gradient_bf16(reinterpret_cast<const uint16_t*>(logits.data_ptr<at::BFloat16>()),
                        reinterpret_cast<uint16_t*>(grad.data_ptr<at::BFloat16>()), y, l, sc, r0, r1, V, uniform, gold);
      });
      return {grad, at::Tensor(), at::Tensor()};
    }
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

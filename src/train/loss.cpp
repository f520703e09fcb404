#include "nmt/train/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include "nmt/data/batch.h"
#include "nmt/models/bias_gradient.h"
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

/// Lanes [c, c + n) of a row of logits x [V] plus the bias [V] (if any), in fp32; missing lanes
/// are `fill`.
template <int W, class T>
NMT_INLINE simd::f32v<W> load_logits(const T* x, const float* bias, int64_t c, int64_t n, float fill) {
  const simd::f32v<W> v = simd::load<W>(x + c, n, fill);
  return bias ? v + simd::load<W>(bias + c, n, 0.0f) : v;
}

/// Per row of fp32 or bf16 logits x [V] (CPU, contiguous) plus the bias [V] if not null, in
/// vectorised passes: the row's log Σ exp, Σ x and x[target]. Each pass runs over the full
/// vectors first and the tail once after them: a tail test inside the loop (a vector chosen by a
/// scalar condition, a lane written at a variable index) made GCC keep the vectors in memory in
/// the AVX2 clone (the loss's own work took about 1.5× as long). With kKeep, e [V] receives
/// exp(x + bias − max) of every logit. Returns Σ exp(x + bias − max).
template <int W, bool kKeep = false, class T>
NMT_INLINE double row_statistics(const T* x, const float* bias, int64_t V, int64_t target, float& lse, float& sum,
                                 float& picked, float* e = nullptr) {
  using F = simd::f32v<W>;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int64_t full = V - V % W, tail = V - full;
  F max = simd::splat<F>(kNegInf), total = {};
  for (int64_t c = 0; c < full; c += W) {
    const F v = load_logits<W>(x, bias, c, W, 0.0f);
    max = simd::maximum(max, v);
    total += v;
  }
  if (tail > 0) {
    max = simd::maximum(max, load_logits<W>(x, bias, full, tail, kNegInf));
    total += load_logits<W>(x, bias, full, tail, 0.0f);  // the missing lanes add 0
  }
  const float m = simd::lanes_max(max);
  F exps = {};
  for (int64_t c = 0; c < full; c += W) {
    const F p = simd::exp_nonpositive(load_logits<W>(x, bias, c, W, 0.0f) - m);
    if constexpr (kKeep) simd::store(e + c, p, W);
    exps += p;
  }
  if (tail > 0) {
    const F p = simd::exp_nonpositive(load_logits<W>(x, bias, full, tail, kNegInf) - m);  // missing lanes: 0
    if constexpr (kKeep) simd::store(e + full, p, tail);
    exps += p;
  }
  const double z = simd::lanes_sum(exps);
  lse = m + static_cast<float>(std::log(z));
  sum = static_cast<float>(simd::lanes_sum(total));
  picked = simd::to_float(x[target]) + (bias ? bias[target] : 0.0f);
  return z;
}

/// Lanes [c, c + n) of one row of the gradient (see row_gradient); `hit` marks the target's lane.
template <int W, class T>
NMT_INLINE void gradient_lanes(const T* x, const float* bias, T* g, float* colsum, int64_t c, int64_t n,
                               simd::i32v<W> hit, float lse, float uniform, float gold, float scale) {
  using F = simd::f32v<W>;
  const auto p = simd::exp_nonpositive(load_logits<W>(x, bias, c, n, -std::numeric_limits<float>::infinity()) - lse);
  const F d = (p - uniform - (hit ? simd::splat<F>(gold) : simd::splat<F>(0.0f))) * scale;
  simd::store(g + c, d, n);
  if (colsum) simd::store(colsum + c, simd::load<W>(colsum + c, n, 0.0f) + simd::load<W>(g + c, n, 0.0f), n);
}

/// One row of the gradient: g = scale·(exp(x + bias − lse) − ε/V − (1 − ε)·onehot(target)),
/// and, when `colsum` is not null, g as stored (rounded to T) added to colsum [V].
template <int W, class T>
NMT_INLINE void row_gradient(const T* x, const float* bias, T* g, float* colsum, int64_t V, int64_t target, float lse,
                             float uniform, float gold, float scale) {
  const int64_t full = V - V % W, tail = V - full;
  const simd::i32v<W> lane = simd::lane_indices<W>();
  for (int64_t c = 0; c < full; c += W)
    gradient_lanes<W>(x, bias, g, colsum, c, W, lane == static_cast<int32_t>(target - c), lse, uniform, gold, scale);
  if (tail > 0)
    gradient_lanes<W>(x, bias, g, colsum, full, tail, lane == static_cast<int32_t>(target - full), lse, uniform, gold,
                      scale);
}

/// Lanes [c, c + n) of one row of the gradient from e = exp(x + bias − max) and inverse = 1/Σ e:
/// g = scale·(e·inverse − ε/V − (1 − ε)·onehot(target)), as gradient_lanes.
template <int W, class T>
NMT_INLINE void gradient_from_exps(const float* e, T* g, float* colsum, int64_t c, int64_t n, simd::i32v<W> hit,
                                   float inverse, float uniform, float gold, float scale) {
  using F = simd::f32v<W>;
  const F d = (simd::load<W>(e + c, n, 0.0f) * inverse - uniform - (hit ? simd::splat<F>(gold) : simd::splat<F>(0.0f))) * scale;
  simd::store(g + c, d, n);
  if (colsum) simd::store(colsum + c, simd::load<W>(colsum + c, n, 0.0f) + simd::load<W>(g + c, n, 0.0f), n);
}

/// One row's statistics (as row_statistics) and then its gradient (as row_gradient) with one
/// e^x per logit: the second pass keeps exp(x + bias − max) in e [V] (scratch), which the
/// gradient pass scales by 1/Σ instead of computing exp(x + bias − lse) again. g may be x itself
/// (the gradient written over the logits): the gradient pass reads only e.
template <int W, class T>
NMT_INLINE void row_statistics_gradient(const T* x, const float* bias, T* g, float* colsum, float* e, int64_t V,
                                        int64_t target, float uniform, float gold, float scale, float& lse,
                                        float& sum, float& picked) {
  const double z = row_statistics<W, true>(x, bias, V, target, lse, sum, picked, e);
  const int64_t full = V - V % W, tail = V - full;
  const auto inverse = static_cast<float>(1.0 / z);
  const simd::i32v<W> lane = simd::lane_indices<W>();
  for (int64_t c = 0; c < full; c += W)
    gradient_from_exps<W>(e, g, colsum, c, W, lane == static_cast<int32_t>(target - c), inverse, uniform, gold, scale);
  if (tail > 0)
    gradient_from_exps<W>(e, g, colsum, full, tail, lane == static_cast<int32_t>(target - full), inverse, uniform, gold,
                          scale);
}

/// Rows [r0, r1) of logits [·, V]: each row's statistics (see row_statistics).
template <int W, class T>
NMT_INLINE void statistics_range(const T* x, const float* bias, const int64_t* targets, int64_t r0, int64_t r1,
                                 int64_t V, float* lse, float* sum, float* picked) {
  for (int64_t r = r0; r < r1; ++r) row_statistics<W>(x + r * V, bias, V, targets[r], lse[r], sum[r], picked[r]);
}

/// Rows [r0, r1) of the gradient (see row_gradient).
template <int W, class T>
NMT_INLINE void gradient_range(const T* x, const float* bias, T* g, float* colsum, const int64_t* targets,
                               const float* lse, const float* scale, int64_t r0, int64_t r1, int64_t V, float uniform,
                               float gold) {
  for (int64_t r = r0; r < r1; ++r)
    row_gradient<W>(x + r * V, bias, g + r * V, colsum, V, targets[r], lse[r], uniform, gold, scale[r]);
}

/// Rows [r0, r1): each row's statistics and gradient (see row_statistics_gradient), row r scaled
/// by scale[r]; e [V] is scratch.
template <int W, class T>
NMT_INLINE void statistics_gradient_range(const T* x, const float* bias, T* g, float* colsum, float* e,
                                          const int64_t* targets, const float* scale, int64_t r0, int64_t r1,
                                          int64_t V, float uniform, float gold, float* lse, float* sum,
                                          float* picked) {
  for (int64_t r = r0; r < r1; ++r)
    row_statistics_gradient<W>(x + r * V, bias, g + r * V, colsum, e, V, targets[r], uniform, gold, scale[r], lse[r],
                               sum[r], picked[r]);
}

NMT_VECTOR_CLONES
void statistics_fp32(const float* x, const float* bias, const int64_t* targets, int64_t r0, int64_t r1, int64_t V,
                     float* lse, float* sum, float* picked) {
  NMT_BY_LANES(statistics_range, x, bias, targets, r0, r1, V, lse, sum, picked);
}
NMT_VECTOR_CLONES
void statistics_bf16(const uint16_t* x, const float* bias, const int64_t* targets, int64_t r0, int64_t r1, int64_t V,
                     float* lse, float* sum, float* picked) {
  NMT_BY_LANES(statistics_range, x, bias, targets, r0, r1, V, lse, sum, picked);
}
NMT_VECTOR_CLONES
void gradient_fp32(const float* x, const float* bias, float* g, float* colsum, const int64_t* targets, const float* lse,
                   const float* scale, int64_t r0, int64_t r1, int64_t V, float uniform, float gold) {
  NMT_BY_LANES(gradient_range, x, bias, g, colsum, targets, lse, scale, r0, r1, V, uniform, gold);
}
NMT_VECTOR_CLONES
void gradient_bf16(const uint16_t* x, const float* bias, uint16_t* g, float* colsum, const int64_t* targets,
                   const float* lse, const float* scale, int64_t r0, int64_t r1, int64_t V, float uniform, float gold) {
  NMT_BY_LANES(gradient_range, x, bias, g, colsum, targets, lse, scale, r0, r1, V, uniform, gold);
}

NMT_VECTOR_CLONES
void statistics_gradient_fp32(const float* x, const float* bias, float* g, float* colsum, float* e,
                              const int64_t* targets, const float* scale, int64_t r0, int64_t r1, int64_t V,
                              float uniform, float gold, float* lse, float* sum, float* picked) {
  NMT_BY_LANES(statistics_gradient_range, x, bias, g, colsum, e, targets, scale, r0, r1, V, uniform, gold, lse, sum,
               picked);
}
NMT_VECTOR_CLONES
void statistics_gradient_bf16(const uint16_t* x, const float* bias, uint16_t* g, float* colsum, float* e,
                              const int64_t* targets, const float* scale, int64_t r0, int64_t r1, int64_t V,
                              float uniform, float gold, float* lse, float* sum, float* picked) {
  NMT_BY_LANES(statistics_gradient_range, x, bias, g, colsum, e, targets, scale, r0, r1, V, uniform, gold, lse, sum,
               picked);
}

/// Per-row statistics of logits [N, V]: lse = log Σ_v exp(x_v), sum = Σ_v x_v, picked = x[target]
/// (x including the bias), fp32 [N] each.
struct RowStatistics {
  at::Tensor lse, sum, picked;
};

/// Checks that every target lies in [0, V): the row loops read x[target] unchecked. `caller`
/// names the public function in the error.
void check_targets(const at::Tensor& targets, int64_t V, const char* caller) {
  TORCH_CHECK(targets.numel() == 0 || (targets.min().item<int64_t>() >= 0 && targets.max().item<int64_t>() < V),
              caller, ": a target id lies outside the vocabulary of ", V);
}

/// Rows r0..r1 of the statistics of logits [N, V] (+ bias b, or null).
void statistics_rows(const at::Tensor& logits, const float* b, const int64_t* y, int64_t r0, int64_t r1,
                     RowStatistics& stats) {
  const int64_t V = logits.size(1);
  float *l = stats.lse.data_ptr<float>(), *s = stats.sum.data_ptr<float>(), *p = stats.picked.data_ptr<float>();
  if (logits.scalar_type() == at::kFloat)
    statistics_fp32(logits.data_ptr<float>(), b, y, r0, r1, V, l, s, p);
  else
    statistics_bf16(reinterpret_cast<const uint16_t*>(logits.data_ptr<at::BFloat16>()), b, y, r0, r1, V, l, s, p);
}

/// The row statistics of logits [N, V] (+ bias [V] if defined), on ATen's threads.
void statistics(const at::Tensor& logits, const at::Tensor& bias, const at::Tensor& targets, RowStatistics& stats) {
  check_targets(targets, logits.size(1), "sequence_loss_from_logits");
  const int64_t* y = targets.data_ptr<int64_t>();
  const float* b = bias.defined() ? bias.data_ptr<float>() : nullptr;
  at::parallel_for(0, logits.size(0), simd::rows_per_task(logits.size(1)),
                   [&](int64_t r0, int64_t r1) { statistics_rows(logits, b, y, r0, r1, stats); });
}

/// The gradient of logits [N, V] (+ bias) into grad [N, V] (logits' dtype; may be logits itself),
/// row r scaled by row_scale[r], on ATen's threads; with `bias_grad` also the bias gradient
/// (fp32 [V], the column sums of the gradient) into *bias_grad, summed in fixed blocks of rows
/// (models::blockwise_bias_gradient) so that it does not depend on the threads. With `first`,
/// each row's statistics are computed into it with its gradient, with one e^x per logit
/// (row_statistics_gradient; the targets are checked first); otherwise stats holds them already.
void gradient(const at::Tensor& logits, const at::Tensor& bias, const at::Tensor& targets, RowStatistics& stats,
              const at::Tensor& row_scale, double eps, at::Tensor& grad, at::Tensor* bias_grad, bool first) {
  const int64_t N = logits.size(0), V = logits.size(1);
  if (first) check_targets(targets, V, "sequence_loss_from_output_layer");
  const int64_t* y = targets.data_ptr<int64_t>();
  const float* sc = row_scale.data_ptr<float>();
  // With `first` the row pass writes all three statistics; otherwise lse is read (and the
  // others may be undefined).
  float* lse = stats.lse.data_ptr<float>();
  float* sum = first ? stats.sum.data_ptr<float>() : nullptr;
  float* picked = first ? stats.picked.data_ptr<float>() : nullptr;
  const float* b = bias.defined() ? bias.data_ptr<float>() : nullptr;
  const auto uniform = static_cast<float>(eps / static_cast<double>(V)), gold = static_cast<float>(1.0 - eps);
  // Rows [r0, r1), their column sums added to colsum [V] (or null).
  auto rows = [&](int64_t r0, int64_t r1, float* colsum) {
    if (first) {
      std::vector<float> exps(static_cast<size_t>(V));  // a row's e^x, kept for its gradient
      if (logits.scalar_type() == at::kFloat)
        statistics_gradient_fp32(logits.data_ptr<float>(), b, grad.data_ptr<float>(), colsum, exps.data(), y, sc, r0,
                                 r1, V, uniform, gold, lse, sum, picked);
      else
        statistics_gradient_bf16(reinterpret_cast<const uint16_t*>(logits.data_ptr<at::BFloat16>()), b,
                                 reinterpret_cast<uint16_t*>(grad.data_ptr<at::BFloat16>()), colsum, exps.data(), y,
                                 sc, r0, r1, V, uniform, gold, lse, sum, picked);
      return;
    }
    if (logits.scalar_type() == at::kFloat)
      gradient_fp32(logits.data_ptr<float>(), b, grad.data_ptr<float>(), colsum, y, lse, sc, r0, r1, V, uniform, gold);
    else
      gradient_bf16(reinterpret_cast<const uint16_t*>(logits.data_ptr<at::BFloat16>()), b,
                    reinterpret_cast<uint16_t*>(grad.data_ptr<at::BFloat16>()), colsum, y, lse, sc, r0, r1, V, uniform,
                    gold);
  };
  if (bias_grad)
    *bias_grad = models::blockwise_bias_gradient(N, V, logits.options(), rows);
  else
    at::parallel_for(0, N, simd::rows_per_task(V), [&](int64_t r0, int64_t r1) { rows(r0, r1, nullptr); });
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
    RECORD_USER_SCOPE("nmt::fused_cross_entropy");
    const int64_t N = logits.size(0), V = logits.size(1), step = chunk_rows(V);
    auto f32 = logits.options().dtype(at::kFloat);
    auto lse = at::empty({N}, f32), sum = at::empty({N}, f32), picked = at::empty({N}, f32);
    if (row_kernels_apply(logits)) {
      RowStatistics stats{lse, sum, picked};
      statistics(logits, at::Tensor(), targets, stats);
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
    RECORD_USER_SCOPE("nmt::fused_cross_entropy_backward");
    const auto saved = ctx->get_saved_variables();
    const auto &logits = saved[0], &targets = saved[1], &lse = saved[2], &mask = saved[3];
    const double eps = ctx->saved_data["eps"].toDouble();
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    const int64_t N = logits.size(0), V = logits.size(1), step = chunk_rows(V);
    auto scale = (mask * grads[0].to(at::kFloat)).unsqueeze(1);  // [N, 1]: dL/dloss on real positions, 0 on padding
    auto grad = at::empty_like(logits, at::MemoryFormat::Contiguous);
    if (row_kernels_apply(logits)) {
      RowStatistics stats{lse, at::Tensor(), at::Tensor()};
      gradient(logits, at::Tensor(), targets, stats, scale.squeeze(1).contiguous(), eps, grad, nullptr, false);
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

/// The smoothed cross-entropy of the logits hidden·weightᵀ + bias at the real target positions
/// (hidden [N, E], weight [V, E] of one dtype, fp32 or bf16, CPU; bias [V] fp32, or [0] for none:
/// LibTorch 1.13's Function takes no undefined input; targets [N]). The padded rows are never
/// multiplied. The forward pass makes the logits in one product (smaller products would cost
/// more than they save: the weight is packed for each), then goes through them in blocks of 32
/// rows: the block's row statistics (the bias added as the logits are read) and, while it is in
/// cache, the gradient of the loss sum with respect to its logits, written over them with the
/// bias gradient's column sums, as Liger-Kernel's fused linear cross-entropy computes the
/// gradient in the forward pass. Only that gradient is kept; the backward pass is its two
/// products, scaled by the incoming gradient.
struct OutputLayerLoss : torch::autograd::Function<OutputLayerLoss> {
  /// Returns {smoothed loss sum, nll sum (not differentiable)}.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& hidden,
                                                const at::Tensor& weight, const at::Tensor& given_bias,
                                                const at::Tensor& targets, double eps) {
    RECORD_USER_SCOPE("nmt::output_layer_loss");
    const auto bias = given_bias.numel() > 0 ? given_bias : at::Tensor();
    const auto rows = targets.ne(data::kPad).nonzero().squeeze(1);  // [n]
    const auto h = hidden.index_select(0, rows);                     // [n, E]
    const auto y = targets.index_select(0, rows);                    // [n]
    const int64_t n = h.size(0), V = weight.size(0);
    auto f32 = h.options().dtype(at::kFloat);
    auto lse = at::empty({n}, f32), sum = at::empty({n}, f32), picked = at::empty({n}, f32);
    const auto ones = at::ones({n}, f32);  // the gradient of the loss sum: scaled in backward()
    auto grad = at::empty({n, V}, h.options());  // the logits, then their gradient
    const bool bias_grad = bias.defined() && bias.requires_grad();
    at::Tensor dbias;  // the bias gradient of the loss sum: scaled in backward()
    at::mm_out(grad, h, weight.t());  // the logits without the bias
    RowStatistics stats{lse, sum, picked};
    gradient(grad, bias, y, stats, ones, eps, grad, bias_grad ? &dbias : nullptr, /*first=*/true);
    auto nll = lse - picked;  // −log p(y)
    auto token = eps > 0 ? (1.0 - eps) * nll + eps * (lse - sum / static_cast<double>(V)) : nll;
    ctx->save_for_backward({h, weight, grad, dbias, rows});
    ctx->saved_data["rows"] = hidden.size(0);
    auto nll_sum = nll.sum();
    ctx->mark_non_differentiable({nll_sum});
    return {token.sum(), nll_sum};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_USER_SCOPE("nmt::output_layer_loss_backward");
    const auto saved = ctx->get_saved_variables();
    const auto &h = saved[0], &weight = saved[1], &grad = saved[2], &dbias = saved[3], &rows = saved[4];
    torch::autograd::variable_list out(5);
    if (!grads[0].defined()) return out;
    const double scale = grads[0].item<double>();
    if (ctx->needs_input_grad(0)) {
      out[0] = at::zeros({ctx->saved_data["rows"].toInt(), h.size(1)}, h.options());  // padded rows: 0
      out[0].index_copy_(0, rows, at::mm(grad, weight).mul_(scale));
    }
    if (ctx->needs_input_grad(1)) out[1] = at::mm(grad.t(), h).mul_(scale);
    if (dbias.defined() && ctx->needs_input_grad(2)) out[2] = dbias.mul(scale);
    return out;
  }
};

}  // namespace

LossOutput sequence_loss_from_output_layer(const models::OutputLayerInput& layer, const at::Tensor& targets,
                                           double eps) {
  const auto& weight = layer.weight;
  const int64_t E = weight.size(1);
  TORCH_CHECK(layer.hidden.size(-1) == E && (!layer.bias.defined() || layer.bias.numel() == weight.size(0)),
              "sequence_loss_from_output_layer: hidden of ", layer.hidden.sizes(), ", weight of ", weight.sizes(),
              " and bias of ", layer.bias.defined() ? layer.bias.sizes() : at::IntArrayRef{}, " do not make a layer");
  const auto type = weight.scalar_type();
  const bool fused = weight.device().is_cpu() && layer.hidden.device().is_cpu() &&
                     (type == at::kFloat || type == at::kBFloat16) &&
                     (!layer.bias.defined() || (layer.bias.scalar_type() == at::kFloat && layer.bias.is_contiguous()));
  if (!fused) {  // other devices: the logits of every position, then the fused loss of logits
    const auto bias = layer.bias.defined() ? layer.bias.to(type) : layer.bias;
    return sequence_loss_from_logits(at::linear(layer.hidden.to(type), weight, bias), targets, eps);
  }
  // Autograd records the loss; its arithmetic is fp32 apart from the products, in weight's dtype.
  const auto bias = layer.bias.defined() ? layer.bias : at::empty({0}, weight.options().dtype(at::kFloat));
  auto out = OutputLayerLoss::apply(layer.hidden.to(type).reshape({-1, E}), weight, bias,
                                    targets.reshape({-1}).contiguous(), eps);
  return {out[0], out[1].detach()};
}

LossOutput sequence_loss_from_logits(const at::Tensor& logits, const at::Tensor& targets, double eps) {
  const int64_t V = logits.size(-1);
  auto flat = logits.reshape({-1, V});
  // Autograd records the loss; its own arithmetic is fp32 whatever autocast says.
  auto out = FusedCrossEntropy::apply(flat, targets.reshape({-1}).contiguous(), eps);
  return {out[0], out[1].detach()};
}

LossOutput token_loss(const models::ForwardOutput& out, const at::Tensor& targets, double label_smoothing) {
  if (out.nll.defined()) return {out.nll, out.nll.detach()};
  if (out.output_layer.defined()) return sequence_loss_from_output_layer(out.output_layer, targets, label_smoothing);
  return sequence_loss(out.log_probs, targets, label_smoothing);
}

}  // namespace nmt::train

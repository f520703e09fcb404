#include "nmt/models/attention.h"

#include <limits>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include "nmt/models/batched_matmul.h"
#include "nmt/precision.h"
#include "nmt/simd.h"

namespace nmt::models {
namespace {

// ---- additive scores: e_s = vᵀ tanh(k_s + q), one pass over the keys ----------------------

/// Scores of one sentence: keys k [S, A], query q [A], v [A] → e [S] (fp32).
template <int W, class T>
NMT_INLINE void additive_scores_row(const T* k, const T* q, const float* v, float* e, int64_t S, int64_t A) {
  for (int64_t s = 0; s < S; ++s) {
    simd::f32v<W> acc = {};
    for (int64_t a = 0; a < A; a += W) {
      const int64_t n = std::min<int64_t>(W, A - a);
      acc += simd::tanh(simd::load<W>(k + s * A + a, n, 0.0f) + simd::load<W>(q + a, n, 0.0f)) *
             simd::load<W>(v + a, n, 0.0f);
    }
    e[s] = static_cast<float>(simd::lanes_sum(acc));
  }
}

/// Gradients of one sentence from g [S] = ∂L/∂e: with t = tanh(k_s + q) recomputed and
/// d = g_s·v·(1 − t²): dk [S, A] = d (in k's type), dq [A] = Σ_s d, dv [A] = Σ_s g_s·t (fp32).
/// Positions with g_s = 0 (masked by the softmax) only get dk = 0.
template <int W, class T>
NMT_INLINE void additive_gradients_row(const T* k, const T* q, const float* v, const float* g, T* dk, float* dq,
                                       float* dv, int64_t S, int64_t A) {
  std::fill(dq, dq + A, 0.0f);
  std::fill(dv, dv + A, 0.0f);
  for (int64_t s = 0; s < S; ++s) {
    const float gs = g[s];
    for (int64_t a = 0; a < A; a += W) {
      const int64_t n = std::min<int64_t>(W, A - a);
      if (gs == 0.0f) {
        simd::store(dk + s * A + a, simd::f32v<W>{}, n);
        continue;
      }
      const auto t = simd::tanh(simd::load<W>(k + s * A + a, n, 0.0f) + simd::load<W>(q + a, n, 0.0f));
      const auto d = (gs * simd::load<W>(v + a, n, 0.0f)) * (1.0f - t * t);
      simd::store(dk + s * A + a, d, n);
      simd::store(dq + a, simd::load<W>(dq + a, n, 0.0f) + d, n);
      simd::store(dv + a, simd::load<W>(dv + a, n, 0.0f) + gs * t, n);
    }
  }
}

/// Sentences b0..b1 of additive_scores_row.
template <int W, class T>
NMT_INLINE void additive_scores_rows(const T* k, const T* q, const float* v, float* e, int64_t b0, int64_t b1, int64_t S,
                                     int64_t A) {
  for (int64_t b = b0; b < b1; ++b) additive_scores_row<W>(k + b * S * A, q + b * A, v, e + b * S, S, A);
}

/// Sentences b0..b1 of additive_gradients_row.
template <int W, class T>
NMT_INLINE void additive_gradients_rows(const T* k, const T* q, const float* v, const float* g, T* dk, float* dq,
                                        float* dv, int64_t b0, int64_t b1, int64_t S, int64_t A) {
  for (int64_t b = b0; b < b1; ++b)
    additive_gradients_row<W>(k + b * S * A, q + b * A, v, g + b * S, dk + b * S * A, dq + b * A, dv + b * A, S, A);
}

// The fp32 and bf16 loops over sentences b0..b1, compiled for AVX-512, AVX2 and the baseline.
NMT_VECTOR_CLONES
void additive_scores_fp32(const float* k, const float* q, const float* v, float* e, int64_t b0, int64_t b1, int64_t S,
                          int64_t A) {
  NMT_BY_LANES(additive_scores_rows, k, q, v, e, b0, b1, S, A);
}
NMT_VECTOR_CLONES
void additive_scores_bf16(const uint16_t* k, const uint16_t* q, const float* v, float* e, int64_t b0, int64_t b1,
                          int64_t S, int64_t A) {
  NMT_BY_LANES(additive_scores_rows, k, q, v, e, b0, b1, S, A);
}
NMT_VECTOR_CLONES
void additive_gradients_fp32(const float* k, const float* q, const float* v, const float* g, float* dk, float* dq,
                             float* dv, int64_t b0, int64_t b1, int64_t S, int64_t A) {
  NMT_BY_LANES(additive_gradients_rows, k, q, v, g, dk, dq, dv, b0, b1, S, A);
}
NMT_VECTOR_CLONES
void additive_gradients_bf16(const uint16_t* k, const uint16_t* q, const float* v, const float* g, uint16_t* dk,
                             float* dq, float* dv, int64_t b0, int64_t b1, int64_t S, int64_t A) {
  NMT_BY_LANES(additive_gradients_rows, k, q, v, g, dk, dq, dv, b0, b1, S, A);
}

const uint16_t* bf16_bits(const at::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); }

/// Sentences per task: about 64k key elements each.
int64_t sentences_per_task(int64_t S, int64_t A) { return simd::rows_per_task(S * A); }

struct AdditiveScores : torch::autograd::Function<AdditiveScores> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& keys, const at::Tensor& query,
                            const at::Tensor& v) {
    RECORD_USER_SCOPE("nmt::additive_scores");
    const int64_t B = keys.size(0), S = keys.size(1), A = keys.size(2);
    auto k = keys.contiguous(), q = query.contiguous();
    auto w = v.reshape({A}).contiguous();
    auto e = at::empty({B, S}, keys.options().dtype(at::kFloat));
    const bool bf16 = k.scalar_type() == at::kBFloat16;
    at::parallel_for(0, B, sentences_per_task(S, A), [&](int64_t b0, int64_t b1) {
      if (bf16) additive_scores_bf16(bf16_bits(k), bf16_bits(q), w.data_ptr<float>(), e.data_ptr<float>(), b0, b1, S, A);
      else additive_scores_fp32(k.data_ptr<float>(), q.data_ptr<float>(), w.data_ptr<float>(), e.data_ptr<float>(), b0, b1, S, A);
    });
    ctx->save_for_backward({k, q, w});
    ctx->saved_data["v_sizes"] = v.sizes().vec();
    return e;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_USER_SCOPE("nmt::additive_scores_backward");
    const auto saved = ctx->get_saved_variables();
    const auto &k = saved[0], &q = saved[1], &w = saved[2];
    const int64_t B = k.size(0), S = k.size(1), A = k.size(2);
    const auto g = grads[0].to(at::kFloat).contiguous();
    auto dk = at::empty_like(k);
    auto dq = at::empty({B, A}, k.options().dtype(at::kFloat));
    auto dv_rows = at::empty({B, A}, k.options().dtype(at::kFloat));  // per sentence, summed in a fixed order below
    const bool bf16 = k.scalar_type() == at::kBFloat16;
    at::parallel_for(0, B, sentences_per_task(S, A), [&](int64_t b0, int64_t b1) {
      if (bf16)
        additive_gradients_bf16(bf16_bits(k), bf16_bits(q), w.data_ptr<float>(), g.data_ptr<float>(),
                                reinterpret_cast<uint16_t*>(dk.data_ptr<at::BFloat16>()), dq.data_ptr<float>(),
                                dv_rows.data_ptr<float>(), b0, b1, S, A);
      else
        additive_gradients_fp32(k.data_ptr<float>(), q.data_ptr<float>(), w.data_ptr<float>(), g.data_ptr<float>(),
                                dk.data_ptr<float>(), dq.data_ptr<float>(), dv_rows.data_ptr<float>(), b0, b1, S, A);
    });
    auto dv = dv_rows.sum(0).view(ctx->saved_data["v_sizes"].toIntVector());
    return {dk, dq.to(q.scalar_type()), dv};
  }
};

}  // namespace

at::Tensor additive_scores(const at::Tensor& proj_keys, const at::Tensor& query, const at::Tensor& v) {
  TORCH_CHECK(proj_keys.dim() == 3 && query.dim() == 2 && query.size(0) == proj_keys.size(0) &&
                  query.size(1) == proj_keys.size(2) && v.numel() == proj_keys.size(2),
              "additive_scores: expected keys [B, S, A], query [B, A] and v of A elements, got ", proj_keys.sizes(), ", ",
              query.sizes(), " and ", v.sizes());
  const auto type = proj_keys.scalar_type();
  if (proj_keys.is_cpu() && query.is_cpu() && v.is_cpu() && query.scalar_type() == type &&
      (type == at::kFloat || type == at::kBFloat16) && v.scalar_type() == at::kFloat)
    return AdditiveScores::apply(proj_keys, query, v);
  return at::matmul(at::tanh(proj_keys + query.unsqueeze(1)), v.reshape({-1, 1}).to(type)).squeeze(-1).to(at::kFloat);
}

GlobalAttentionImpl::GlobalAttentionImpl(Score score, int64_t query_dim, int64_t key_dim,
                                         int64_t hidden_dim)
    : score_(score) {
  using torch::nn::LinearOptions;
  switch (score_) {
    case Score::Additive:
      key_proj_ = register_module("key_proj", Linear(LinearOptions(key_dim, hidden_dim).bias(false)));
      query_proj_ = register_module("query_proj", Linear(LinearOptions(query_dim, hidden_dim).bias(false)));
      v_ = register_module("v", Linear(LinearOptions(hidden_dim, 1).bias(false)));
      break;
    case Score::General:
      key_proj_ = register_module("key_proj", Linear(LinearOptions(key_dim, query_dim).bias(false)));
      break;
    case Score::Dot:
      TORCH_CHECK(query_dim == key_dim, "dot attention needs query_dim == key_dim, got ", query_dim,
                  " and ", key_dim);
      break;
  }
}

at::Tensor GlobalAttentionImpl::project_keys(const at::Tensor& keys) {
  return score_ == Score::Dot ? keys : key_proj_(keys);
}

// bf16 scores (autocast products) are upcast: fp32 softmax under bf16 autocast.
at::Tensor masked_softmax(const at::Tensor& scores, const at::Tensor& mask) {
  auto masked = at_least_fp32(scores).masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  return at::softmax(masked, -1);
}

at::Tensor masked_log_softmax(const at::Tensor& scores, const at::Tensor& mask) {
  auto masked = at_least_fp32(scores).masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
  return at::log_softmax(masked, -1);
}

at::Tensor weighted_context(const at::Tensor& weights, const at::Tensor& values) {
  return batched_matmul(weights.unsqueeze(1), values).squeeze(1);
}

at::Tensor GlobalAttentionImpl::score(const at::Tensor& query, const at::Tensor& proj_keys) {
  if (score_ == Score::Additive) {
    return additive_scores(proj_keys, query_proj_(query), v_->weight);  // [B, S]
  }
  return batched_matmul(proj_keys, query.unsqueeze(2)).squeeze(2);  // [B, S]
}

AttentionOutput GlobalAttentionImpl::forward(const at::Tensor& query, const at::Tensor& proj_keys,
                                             const at::Tensor& values, const at::Tensor& mask) {
  AttentionOutput out;
  out.log_weights = masked_log_softmax(score(query, proj_keys), mask);
  out.weights = out.log_weights.exp();
  out.context = weighted_context(out.weights, values);
  return out;
}

}  // namespace nmt::models

#include "nmt/models/latent_output.h"

#include <limits>

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "nmt/precision.h"

namespace nmt::models {
namespace {

/// Rows b·T + t of real target steps, split into chunks of about `chunk_pairs` pairs each
/// (a row is never split: the marginal needs all positions of a step at once).
std::vector<at::Tensor> row_chunks(const at::Tensor& pair_mask2, const at::Tensor& tgt_mask, int64_t chunk_pairs) {
  auto rows = tgt_mask.reshape(-1).nonzero().squeeze(1);  // [R]
  auto counts = pair_mask2.index_select(0, rows).sum(1).to(at::kCPU, at::kLong);
  auto acc = counts.accessor<int64_t, 1>();
  std::vector<at::Tensor> chunks;
  int64_t begin = 0, pairs = 0;
  for (int64_t i = 0; i < counts.size(0); ++i) {
    pairs += acc[i];
    if (pairs >= chunk_pairs || i + 1 == counts.size(0)) {
      chunks.push_back(rows.slice(0, begin, i + 1));
      begin = i + 1;
      pairs = 0;
    }
  }
  return chunks;
}

/// The pairs of one chunk of rows and their attentional vectors and logits.
struct Chunk {
  at::Tensor i;      ///< [n] index of the pair's row within the chunk
  at::Tensor s;      ///< [n] source position
  at::Tensor row;    ///< [n] flat target row b·T + t
  at::Tensor mem;    ///< [n] flat memory row b·S + s
  at::Tensor x;      ///< [n, H] h̃ = tanh(a_s + c_t)
  at::Tensor xp;     ///< [n, E] P h̃ (or h̃)
  at::Tensor logits; ///< [n, V]
  at::Tensor lse;    ///< [n]
  at::Tensor gold;   ///< [n] y_t
  at::Tensor g;      ///< [n] log p(y_t | z_t = s)
};

Chunk compute_chunk(const at::Tensor& rows, const at::Tensor& pair_mask2, const at::Tensor& a2, const at::Tensor& c2,
                    const at::Tensor& gold2, const LatentOutputLayer& layer, int64_t T, int64_t S) {
  Chunk k;
  auto nz = pair_mask2.index_select(0, rows).nonzero();  // [n, 2]
  k.i = nz.select(1, 0);
  k.s = nz.select(1, 1);
  k.row = rows.index_select(0, k.i);
  k.mem = at::div(k.row, T, "floor") * S + k.s;
  k.x = at::tanh(a2.index_select(0, k.mem) + c2.index_select(0, k.row));
  k.xp = layer.pre_output.defined() ? at::mm(k.x, layer.pre_output.t()) : k.x;
  k.logits = layer.bias.defined() ? at::addmm(layer.bias, k.xp, layer.weight.t()) : at::mm(k.xp, layer.weight.t());
  k.lse = at::logsumexp(k.logits, 1);
  k.gold = gold2.index_select(0, k.row);
  k.g = k.logits.gather(1, k.gold.unsqueeze(1)).squeeze(1) - k.lse;
  return k;
}

void check_inputs(const LatentPairs& p, const LatentOutputLayer& layer, const at::Tensor& weights) {
  TORCH_CHECK(p.from_memory.dim() == 3 && p.from_hidden.dim() == 3, "latent output: from_memory [B, S, H] and "
              "from_hidden [B, T, H] expected");
  const int64_t B = p.from_memory.size(0), S = p.from_memory.size(1), T = p.from_hidden.size(1);
  TORCH_CHECK(p.from_hidden.size(0) == B && p.from_hidden.size(2) == p.from_memory.size(2),
              "latent output: from_hidden must be [B, T, H] with from_memory's B and H");
  TORCH_CHECK(p.gold.sizes() == at::IntArrayRef({B, T}) && p.tgt_mask.sizes() == at::IntArrayRef({B, T}),
              "latent output: gold and tgt_mask must be [B, T]");
  TORCH_CHECK(p.src_mask.sizes() == at::IntArrayRef({B, S}), "latent output: src_mask must be [B, S]");
  TORCH_CHECK(!weights.defined() || weights.sizes() == at::IntArrayRef({B, T, S}),
              "latent output: weights must be [B, T, S]");
  const int64_t E = layer.pre_output.defined() ? layer.pre_output.size(0) : p.from_memory.size(2);
  TORCH_CHECK(layer.weight.dim() == 2 && layer.weight.size(1) == E, "latent output: weight must be [V, E]");
}

at::Tensor pair_mask_of(const LatentPairs& p) {
  return p.tgt_mask.unsqueeze(2).logical_and(p.src_mask.unsqueeze(1));  // [B, T, S]
}

/// The pairs with at least fp32 encoder/decoder terms.
LatentPairs as_fp32(const LatentPairs& p) {
  return {at_least_fp32(p.from_memory), at_least_fp32(p.from_hidden), p.gold, p.tgt_mask, p.src_mask};
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// The fused loss as an autograd function; tensor arguments first, then the settings.
struct LatentLogLikelihood : public torch::autograd::Function<LatentLogLikelihood> {
  static variable_list forward(AutogradContext* ctx, at::Tensor from_memory, at::Tensor from_hidden,
                               at::Tensor weights, at::Tensor pre_output, at::Tensor weight, at::Tensor bias,
                               at::Tensor gold, at::Tensor tgt_mask, at::Tensor src_mask, bool has_pre,
                               bool has_bias, int64_t reduction, int64_t chunk_pairs, bool need_grad) {
    const auto red = static_cast<LatentReduction>(reduction);
    LatentOutputLayer layer{has_pre ? pre_output : at::Tensor(), weight, has_bias ? bias : at::Tensor()};
    const int64_t B = from_memory.size(0), S = from_memory.size(1), H = from_memory.size(2);
    const int64_t T = from_hidden.size(1);
    auto a2 = from_memory.reshape({B * S, H});
    auto c2 = from_hidden.reshape({B * T, H});
    auto gold2 = gold.reshape({B * T});
    auto w2 = weights.reshape({B * T, S});
    auto pm = pair_mask_of({from_memory, from_hidden, gold, tgt_mask, src_mask});
    if (red == LatentReduction::Expectation) pm = pm.logical_and(weights.gt(0));
    auto pm2 = pm.reshape({B * T, S});

    auto value = at::zeros({}, from_memory.options());
    auto g_dense = at::zeros({B * T, S}, from_memory.options());
    at::Tensor d_a, d_c, d_w, d_pre, d_weight, d_bias;
    if (need_grad) {
      d_a = at::zeros_like(a2);
      d_c = at::zeros_like(c2);
      d_w = at::zeros_like(w2);
      d_pre = has_pre ? at::zeros_like(pre_output) : at::Tensor();
      d_weight = at::zeros_like(weight);
      d_bias = has_bias ? at::zeros_like(bias) : at::Tensor();
    }
    for (const auto& rows : row_chunks(pm2, tgt_mask, chunk_pairs)) {
      auto k = compute_chunk(rows, pm2, a2, c2, gold2, layer, T, S);
      if (k.g.numel() == 0) continue;
      g_dense.index_put_({k.row, k.s}, k.g);
      auto w = w2.index({k.row, k.s});  // [n]
      at::Tensor coef;                 // ∂value/∂g per pair
      if (red == LatentReduction::Expectation) {
        value.add_((w * k.g).sum());
        coef = w;
        if (need_grad) d_w.index_put_({k.row, k.s}, k.g);
      } else {
        auto dense = at::full({rows.size(0), S}, -std::numeric_limits<double>::infinity(), k.g.options());
        dense.index_put_({k.i, k.s}, w + k.g);
        auto row_lse = at::logsumexp(dense, 1);  // [r]
        value.add_(row_lse.sum());
        coef = (w + k.g - row_lse.index_select(0, k.i)).exp();  // posterior r_ts
        if (need_grad) d_w.index_put_({k.row, k.s}, coef);
      }
      if (!need_grad) continue;
      // ∂(coef·g)/∂logits = coef · (onehot(y) − softmax(logits)), computed in place.
      auto grad_logits = k.logits.sub_(k.lse.unsqueeze(1)).exp_().mul_(-coef.unsqueeze(1));
      grad_logits.scatter_add_(1, k.gold.unsqueeze(1), coef.unsqueeze(1));
      d_weight.addmm_(grad_logits.t(), k.xp);
      if (has_bias) d_bias.add_(grad_logits.sum(0));
      auto d_xp = at::mm(grad_logits, weight);  // [n, E]
      at::Tensor d_x = d_xp;
      if (has_pre) {
        d_pre.addmm_(d_xp.t(), k.x);
        d_x = at::mm(d_xp, pre_output);
      }
      auto d_u = d_x.mul_(1 - k.x * k.x);  // through tanh
      d_a.index_add_(0, k.mem, d_u);
      d_c.index_add_(0, k.row, d_u);
    }
    if (need_grad) {
      ctx->saved_data["d_a"] = d_a.view({B, S, H});
      ctx->saved_data["d_c"] = d_c.view({B, T, H});
      ctx->saved_data["d_w"] = d_w.view({B, T, S});
      ctx->saved_data["d_weight"] = d_weight;
      if (has_pre) ctx->saved_data["d_pre"] = d_pre;
      if (has_bias) ctx->saved_data["d_bias"] = d_bias;
    }
    ctx->saved_data["need_grad"] = need_grad;
    auto g_out = g_dense.view({B, T, S});
    ctx->mark_non_differentiable({g_out});
    return {value, g_out};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    TORCH_CHECK(ctx->saved_data["need_grad"].toBool(),
                "latent_log_likelihood: backward through a call made without gradients");
    const auto go = grad_outputs[0];
    auto scaled = [&](const char* name) {
      auto it = ctx->saved_data.find(name);
      return it == ctx->saved_data.end() ? at::Tensor() : it->second.toTensor() * go;
    };
    return {scaled("d_a"),    scaled("d_c"), scaled("d_w"), scaled("d_pre"), scaled("d_weight"), scaled("d_bias"),
            at::Tensor(),     at::Tensor(),  at::Tensor(),  at::Tensor(),    at::Tensor(),       at::Tensor(),
            at::Tensor(),     at::Tensor()};
  }
};

bool requires_grad(const at::Tensor& t) { return t.defined() && t.requires_grad(); }

}  // namespace

at::Tensor latent_log_likelihood(const LatentPairs& given, const LatentOutputLayer& layer, const at::Tensor& given_weights,
                                 LatentReduction reduction, at::Tensor* gold_log_probs, int64_t chunk_pairs) {
  AutocastSuspend fp32;  // the function has its own backward, written for fp32 tensors
  const LatentPairs pairs = as_fp32(given);
  const at::Tensor weights = at_least_fp32(given_weights);
  check_inputs(pairs, layer, weights);
  TORCH_CHECK(weights.defined(), "latent_log_likelihood: weights are required");
  TORCH_CHECK(chunk_pairs > 0, "latent_log_likelihood: chunk_pairs must be positive");
  const bool need_grad =
      at::GradMode::is_enabled() &&
      (requires_grad(pairs.from_memory) || requires_grad(pairs.from_hidden) || requires_grad(weights) ||
       requires_grad(layer.pre_output) || requires_grad(layer.weight) || requires_grad(layer.bias));
  auto placeholder = at::empty({0}, pairs.from_memory.options());
  auto out = LatentLogLikelihood::apply(
      pairs.from_memory, pairs.from_hidden, weights, layer.pre_output.defined() ? layer.pre_output : placeholder,
      layer.weight, layer.bias.defined() ? layer.bias : placeholder, pairs.gold, pairs.tgt_mask, pairs.src_mask,
      layer.pre_output.defined(), layer.bias.defined(), static_cast<int64_t>(reduction), chunk_pairs, need_grad);
  if (gold_log_probs) *gold_log_probs = out[1];
  return out[0];
}

LatentScores latent_scores(const LatentPairs& given, const LatentOutputLayer& layer,
                           const std::vector<at::Tensor>& given_mixtures, int64_t chunk_pairs) {
  AutocastSuspend fp32;
  const LatentPairs pairs = as_fp32(given);
  std::vector<at::Tensor> mixtures;
  for (const auto& m : given_mixtures) mixtures.push_back(at_least_fp32(m));
  check_inputs(pairs, layer, at::Tensor());
  at::NoGradGuard no_grad;
  const int64_t B = pairs.from_memory.size(0), S = pairs.from_memory.size(1), H = pairs.from_memory.size(2);
  const int64_t T = pairs.from_hidden.size(1), V = layer.weight.size(0);
  auto a2 = pairs.from_memory.reshape({B * S, H});
  auto c2 = pairs.from_hidden.reshape({B * T, H});
  auto gold2 = pairs.gold.reshape({B * T});
  // Every target row, padded ones too, gets its distributions (as stepwise decoding computes
  // them); only the source padding is skipped.
  auto all_rows = at::ones_like(pairs.tgt_mask);
  auto pm2 = pairs.src_mask.unsqueeze(1).expand({B, T, S}).reshape({B * T, S});
  LatentScores out;
  out.gold_log_probs = at::zeros({B * T, S}, pairs.from_memory.options());
  std::vector<at::Tensor> log_mix;
  for (const auto& m : mixtures) {
    TORCH_CHECK(m.sizes() == at::IntArrayRef({B, T, S}), "latent_scores: mixtures must be [B, T, S]");
    log_mix.push_back(at::empty({B * T, V}, pairs.from_memory.options()));
  }
  for (const auto& rows : row_chunks(pm2, all_rows, chunk_pairs)) {
    auto k = compute_chunk(rows, pm2, a2, c2, gold2, layer, T, S);
    if (k.g.numel() == 0) continue;
    out.gold_log_probs.index_put_({k.row, k.s}, k.g);
    auto log_p = k.logits.sub_(k.lse.unsqueeze(1));  // [n, V] log p(v | z = s)
    for (size_t m = 0; m < mixtures.size(); ++m) {
      // log Σ_s w_s p(v | s), one row per target step of the chunk.
      auto log_w = mixtures[m].reshape({B * T, S}).index({k.row, k.s}).log();  // [n]
      auto dense = at::full({rows.size(0), S, V}, -std::numeric_limits<double>::infinity(), log_p.options());
      dense.index_put_({k.i, k.s}, log_p + log_w.unsqueeze(1));
      log_mix[m].index_copy_(0, rows, at::logsumexp(dense, 1));
    }
  }
  out.gold_log_probs = out.gold_log_probs.view({B, T, S}).masked_fill(pairs.tgt_mask.logical_not().unsqueeze(2), 0.0);
  for (auto& l : log_mix) out.log_mixtures.push_back(l.view({B, T, V}));
  return out;
}

}  // namespace nmt::models

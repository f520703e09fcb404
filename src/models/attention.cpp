#include "nmt/models/attention.h"

#include <limits>

#include "nmt/models/batched_matmul.h"
#include "nmt/precision.h"

namespace nmt::models {

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
    auto hidden = at::tanh(proj_keys + query_proj_(query).unsqueeze(1));  // [B, S, A]
    return v_(hidden).squeeze(-1);
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

#include "nmt/models/local_attention.h"

#include <stdexcept>

namespace nmt::models {

LocalAttentionImpl::LocalAttentionImpl(AttentionWindow window, int64_t half_width, int64_t query_dim)
    : window_(window), half_width_(half_width) {
  if (window == AttentionWindow::Global) throw std::invalid_argument("LocalAttention needs local-m or local-p");
  if (half_width < 1) throw std::invalid_argument("local attention needs a half-width D >= 1");
  if (window == AttentionWindow::LocalP) {
    using torch::nn::LinearOptions;
    w_p_ = register_module("w_p", Linear(LinearOptions(query_dim, query_dim).bias(false)));
    v_p_ = register_module("v_p", Linear(LinearOptions(query_dim, 1).bias(false)));
  }
}

at::Tensor LocalAttentionImpl::position(const at::Tensor& query, const at::Tensor& mask, int64_t step) {
  auto length = mask.sum(1).to(query.scalar_type());  // [B] real source length S
  if (window_ == AttentionWindow::LocalM)
    return at::minimum(at::full_like(length, static_cast<double>(step)), length - 1);
  return length * at::sigmoid(v_p_(at::tanh(w_p_(query))).squeeze(-1));
}

AttentionOutput LocalAttentionImpl::forward(const at::Tensor& scores, const at::Tensor& query,
                                            const at::Tensor& values, const at::Tensor& mask,
                                            int64_t step) {
  AttentionOutput out;
  out.position = position(query, mask, step);                                   // [B]
  auto s = at::arange(scores.size(1), scores.options()).unsqueeze(0);           // [1, S]
  auto distance = s - out.position.unsqueeze(1);                                // [B, S]
  auto in_window = mask.logical_and(distance.abs().le(static_cast<double>(half_width_)));
  auto adjusted = scores;
  if (window_ == AttentionWindow::LocalP) {
    const double sigma = half_width_ / 2.0;
    adjusted = scores - distance.pow(2) / (2 * sigma * sigma);  // log of the Gaussian weight
  }
  out.log_weights = masked_log_softmax(adjusted, in_window);
  out.weights = out.log_weights.exp();
  out.context = weighted_context(out.weights, values);
  return out;
}

}  // namespace nmt::models

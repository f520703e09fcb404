#include "nmt/train/ema.h"

#include <algorithm>
#include <stdexcept>

#include <torch/torch.h>

namespace nmt::train {
namespace {

/// Calls f(to_tensor, from_tensor) for the parameters (and then the buffers) of two models of
/// the same architecture.
template <class F> void zip_weights(models::Seq2SeqImpl& to, models::Seq2SeqImpl& from, bool buffers, F f) {
  auto a = buffers ? to.named_buffers() : to.named_parameters();
  auto b = buffers ? from.named_buffers() : from.named_parameters();
  if (a.size() != b.size()) throw std::invalid_argument("moving average: the models' weight sets differ");
  for (size_t i = 0; i < a.size(); ++i) {
    auto& t = a[i].value();
    const auto& u = b[i].value();
    if (a[i].key() != b[i].key() || !t.sizes().equals(u.sizes()))
      throw std::invalid_argument("moving average: weight '" + a[i].key() + "' differs from '" + b[i].key() + "'");
    f(t, u);
  }
}

}  // namespace

double ema_decay_at(double decay, int64_t step) {
  return std::min(decay, (1.0 + static_cast<double>(step)) / (10.0 + static_cast<double>(step)));
}

void update_ema(models::Seq2SeqImpl& ema, models::Seq2SeqImpl& model, double decay, int64_t step) {
  torch::NoGradGuard no_grad;
  const double d = ema_decay_at(decay, step);
  zip_weights(ema, model, false, [d](at::Tensor& avg, const at::Tensor& w) {
    if (d == 0) avg.copy_(w);
    else avg.mul_(d).add_(w, 1.0 - d);
  });
  zip_weights(ema, model, true, [](at::Tensor& avg, const at::Tensor& w) { avg.copy_(w); });
}

void copy_weights(models::Seq2SeqImpl& to, models::Seq2SeqImpl& from) {
  torch::NoGradGuard no_grad;
  for (bool buffers : {false, true})
    zip_weights(to, from, buffers, [](at::Tensor& t, const at::Tensor& u) { t.copy_(u); });
}

}  // namespace nmt::train

#include "nmt/models/attention_heads.h"

#include <algorithm>
#include <cstdint>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include "nmt/models/bias_gradient.h"
#include "nmt/simd.h"

namespace nmt::models {
namespace {

/// Where the heads lie: row r = b·L + l of x [B·L, n·H·d_k] holds n·H chunks of d_k, chunk
/// j = i·H + h being head h of projection i, which the split stores in head tensor i
/// [B, H, L, d_k] at element offset ((b·H + h)·L + l)·d_k.
struct HeadLayout {
  int64_t B, L, n, H, dk;
  int64_t row_length() const { return n * H * dk; }
  int64_t head_size() const { return B * H * L * dk; }
  /// The offset of chunk j of row r within its head tensor.
  int64_t offset(int64_t r, int64_t j) const { return ((r / L * H + j % H) * L + r % L) * dk; }
};

/// Rows [r0, r1) of x split into out [n, B, H, L, d_k]: x + bias (bias [n·H·d_k] or null),
/// summed in fp32 and rounded once to T.
template <int W, class T>
NMT_INLINE void split_rows(const T* x, const float* bias, T* out, const HeadLayout& s, int64_t r0, int64_t r1) {
  const int64_t F = s.row_length();
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t j = 0; j < s.n * s.H; ++j) {
      const T* src = x + r * F + j * s.dk;
      const float* b = bias ? bias + j * s.dk : nullptr;
      T* dst = out + j / s.H * s.head_size() + s.offset(r, j);
      for (int64_t e = 0; e < s.dk; e += W) {
        const int64_t m = std::min<int64_t>(W, s.dk - e);
        auto v = simd::load<W>(src + e, m, 0.0f);
        if (b) v += simd::load<W>(b + e, m, 0.0f);
        simd::store(dst + e, v, m);
      }
    }
}

/// Rows [r0, r1) of x's gradient dx [B·L, n·H·d_k] from the heads' gradients g[i] ([B, H, L, d_k],
/// contiguous; null: zeros), each row also added to dbias [n·H·d_k] when that is not null.
template <int W, class T>
NMT_INLINE void merge_rows(const T* const* g, T* dx, float* dbias, const HeadLayout& s, int64_t r0, int64_t r1) {
  const int64_t F = s.row_length();
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t j = 0; j < s.n * s.H; ++j) {
      const T* src = g[j / s.H] ? g[j / s.H] + s.offset(r, j) : nullptr;
      T* dst = dx + r * F + j * s.dk;
      float* db = dbias ? dbias + j * s.dk : nullptr;
      for (int64_t e = 0; e < s.dk; e += W) {
        const int64_t m = std::min<int64_t>(W, s.dk - e);
        const auto v = src ? simd::load<W>(src + e, m, 0.0f) : simd::f32v<W>{};
        simd::store(dst + e, v, m);
        if (db) simd::store(db + e, simd::load<W>(db + e, m, 0.0f) + v, m);
      }
    }
}

NMT_VECTOR_CLONES
void split_fp32(const float* x, const float* bias, float* out, const HeadLayout& s, int64_t r0, int64_t r1) {
  NMT_BY_LANES(split_rows, x, bias, out, s, r0, r1);
}
NMT_VECTOR_CLONES
void split_bf16(const uint16_t* x, const float* bias, uint16_t* out, const HeadLayout& s, int64_t r0, int64_t r1) {
  NMT_BY_LANES(split_rows, x, bias, out, s, r0, r1);
}
NMT_VECTOR_CLONES
void merge_fp32(const float* const* g, float* dx, float* dbias, const HeadLayout& s, int64_t r0, int64_t r1) {
  NMT_BY_LANES(merge_rows, g, dx, dbias, s, r0, r1);
}
NMT_VECTOR_CLONES
void merge_bf16(const uint16_t* const* g, uint16_t* dx, float* dbias, const HeadLayout& s, int64_t r0, int64_t r1) {
  NMT_BY_LANES(merge_rows, g, dx, dbias, s, r0, r1);
}

/// Whether the hand-written passes take tensors of this device and dtype.
bool one_pass(const at::TensorOptions& options) {
  const auto type = options.dtype().toScalarType();
  return options.device().is_cpu() && options.layout() == at::kStrided &&
         (type == at::kFloat || type == at::kBFloat16);
}

/// x [B, L, n·H·d_k] → n heads [B, H, L, d_k] (see split_heads); bias fp32 [n·H·d_k], or [0]
/// for none (LibTorch 1.13's Function takes no undefined input).
struct SplitHeads : torch::autograd::Function<SplitHeads> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                                                const at::Tensor& bias, int64_t n, int64_t heads, bool copy) {
    RECORD_USER_SCOPE("nmt::split_heads");
    const HeadLayout s{x.size(0), x.size(1), n, heads, x.size(2) / (n * heads)};
    const bool with_bias = bias.numel() > 0;
    ctx->saved_data["sizes"] = std::vector<int64_t>{s.B, s.L, n, heads, s.dk};
    ctx->saved_data["dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["bias"] = with_bias;
    auto heads_of = [&](const at::Tensor& t) { return t.view({s.B, s.L, n, heads, s.dk}).permute({2, 0, 3, 1, 4}); };
    if (!with_bias && !copy) return heads_of(x).unbind(0);
    if (!one_pass(x.options()) || !x.is_contiguous()) {
      const auto y = with_bias ? (x.to(at::kFloat) + bias).to(x.scalar_type()) : x;
      return heads_of(y).contiguous().unbind(0);
    }
    auto out = at::empty({n, s.B, heads, s.L, s.dk}, x.options());
    const float* b = with_bias ? bias.data_ptr<float>() : nullptr;
    const bool bf16 = x.scalar_type() == at::kBFloat16;
    const void* xp = x.data_ptr();
    void* op = out.data_ptr();
    at::parallel_for(0, s.B * s.L, simd::rows_per_task(s.row_length()), [&](int64_t r0, int64_t r1) {
      if (bf16)
        split_bf16(static_cast<const uint16_t*>(xp), b, static_cast<uint16_t*>(op), s, r0, r1);
      else
        split_fp32(static_cast<const float*>(xp), b, static_cast<float*>(op), s, r0, r1);
    });
    return out.unbind(0);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_USER_SCOPE("nmt::split_heads_backward");
    const auto sizes = ctx->saved_data["sizes"].toIntVector();
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    const bool with_bias = ctx->saved_data["bias"].toBool();
    const HeadLayout s{sizes[0], sizes[1], sizes[2], sizes[3], sizes[4]};
    at::TensorOptions options;
    for (const auto& g : grads)
      if (g.defined()) options = g.options().dtype(dtype);
    at::Tensor dx, dbias;
    if (one_pass(options)) {
      std::vector<at::Tensor> g(static_cast<size_t>(s.n));
      std::vector<const float*> g32(static_cast<size_t>(s.n), nullptr);  // null: no gradient, zeros
      std::vector<const uint16_t*> g16(static_cast<size_t>(s.n), nullptr);
      for (int64_t i = 0; i < s.n; ++i) {
        if (!grads[i].defined()) continue;
        g[i] = grads[i].to(dtype).contiguous();
        if (dtype == at::kBFloat16)
          g16[i] = reinterpret_cast<const uint16_t*>(g[i].data_ptr<at::BFloat16>());
        else
          g32[i] = g[i].data_ptr<float>();
      }
      dx = at::empty({s.B, s.L, s.row_length()}, options);
      void* dxp = dx.data_ptr();
      auto rows = [&](int64_t r0, int64_t r1, float* db) {
        if (dtype == at::kBFloat16)
          merge_bf16(g16.data(), static_cast<uint16_t*>(dxp), db, s, r0, r1);
        else
          merge_fp32(g32.data(), static_cast<float*>(dxp), db, s, r0, r1);
      };
      if (with_bias)
        dbias = blockwise_bias_gradient(s.B * s.L, s.row_length(), options, rows);
      else
        at::parallel_for(0, s.B * s.L, simd::rows_per_task(s.row_length()),
                         [&](int64_t r0, int64_t r1) { rows(r0, r1, nullptr); });
    } else {
      auto split = at::empty({s.B, s.L, s.n, s.H, s.dk}, options);
      for (int64_t i = 0; i < s.n; ++i) {
        auto part = split.select(2, i);  // [B, L, H, d_k]
        if (grads[i].defined()) part.copy_(grads[i].permute({0, 2, 1, 3}));
        else part.zero_();
      }
      dx = split.view({s.B, s.L, s.row_length()});
      if (with_bias) dbias = dx.to(at::kFloat).sum(at::IntArrayRef{0, 1});
    }
    return {dx, dbias, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

std::vector<at::Tensor> split_heads(const at::Tensor& x, int64_t n, int64_t heads, bool copy, const at::Tensor& bias) {
  TORCH_CHECK(x.dim() == 3 && n >= 1 && heads >= 1 && x.size(2) % (n * heads) == 0 && x.size(2) >= n * heads,
              "split_heads: x of ", x.sizes(), " is not [B, L, n·H·d_k] for n = ", n, " and H = ", heads);
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == x.size(2)), "split_heads: bias of ",
              bias.sizes(), " is not [", x.size(2), "]");
  const auto b = bias.defined() ? bias.to(at::kFloat).contiguous() : at::empty({0}, x.options().dtype(at::kFloat));
  return SplitHeads::apply(x, b, n, heads, copy);
}

}  // namespace nmt::models

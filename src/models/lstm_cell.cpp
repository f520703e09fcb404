#include "nmt/models/lstm_cell.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include "nmt/simd.h"

namespace nmt::models {
namespace {

/// Raw element pointers: fp32 as float, bf16 as its bits.
template <class T>
T* elements(const at::Tensor& t) {
  if constexpr (std::is_same_v<T, float>) return t.data_ptr<float>();
  else return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>());
}

/// Rows r0..r1 forward: gates [., 4H] (type G), c [., H] (type C) → act [., 4H] (G: σ(i), σ(f),
/// tanh(g), σ(o)), c' and h' [., H] (C).
template <int W, class G, class C>
NMT_INLINE void forward_rows(const G* gates, const C* c, G* act, C* c_out, C* h_out, int64_t r0, int64_t r1, int64_t H) {
  for (int64_t r = r0; r < r1; ++r) {
    const G* g = gates + r * 4 * H;
    G* a = act + r * 4 * H;
    for (int64_t k = 0; k < H; k += W) {
      const int64_t n = std::min<int64_t>(W, H - k);
      const auto in = simd::sigmoid(simd::load<W>(g + k, n, 0.0f));
      const auto forget = simd::sigmoid(simd::load<W>(g + H + k, n, 0.0f));
      const auto cell = simd::tanh(simd::load<W>(g + 2 * H + k, n, 0.0f));
      const auto out = simd::sigmoid(simd::load<W>(g + 3 * H + k, n, 0.0f));
      const auto c_new = forget * simd::load<W>(c + r * H + k, n, 0.0f) + in * cell;
      simd::store(a + k, in, n);
      simd::store(a + H + k, forget, n);
      simd::store(a + 2 * H + k, cell, n);
      simd::store(a + 3 * H + k, out, n);
      simd::store(c_out + r * H + k, c_new, n);
      simd::store(h_out + r * H + k, out * simd::tanh(c_new), n);
    }
  }
}

/// Rows r0..r1 backward from dh, dc' [., H] (C; null for a zero gradient): dgates [., 4H] (G),
/// dc [., H] (C).
template <int W, class G, class C>
NMT_INLINE void backward_rows(const G* act, const C* c, const C* c_out, const C* dh, const C* dc_out, G* dgates, C* dc,
                              int64_t r0, int64_t r1, int64_t H) {
  for (int64_t r = r0; r < r1; ++r) {
    const G* a = act + r * 4 * H;
    G* d = dgates + r * 4 * H;
    for (int64_t k = 0; k < H; k += W) {
      const int64_t n = std::min<int64_t>(W, H - k);
      const auto in = simd::load<W>(a + k, n, 0.0f), forget = simd::load<W>(a + H + k, n, 0.0f);
      const auto cell = simd::load<W>(a + 2 * H + k, n, 0.0f), out = simd::load<W>(a + 3 * H + k, n, 0.0f);
      const auto tc = simd::tanh(simd::load<W>(c_out + r * H + k, n, 0.0f));
      const auto gh = dh ? simd::load<W>(dh + r * H + k, n, 0.0f) : simd::f32v<W>{};
      const auto gc = (dc_out ? simd::load<W>(dc_out + r * H + k, n, 0.0f) : simd::f32v<W>{}) + gh * out * (1.0f - tc * tc);
      simd::store(d + k, gc * cell * in * (1.0f - in), n);
      simd::store(d + H + k, gc * simd::load<W>(c + r * H + k, n, 0.0f) * forget * (1.0f - forget), n);
      simd::store(d + 2 * H + k, gc * in * (1.0f - cell * cell), n);
      simd::store(d + 3 * H + k, gh * tc * out * (1.0f - out), n);
      simd::store(dc + r * H + k, gc * forget, n);
    }
  }
}

// The three supported (gates, state) types, compiled for AVX-512, AVX2 and the baseline.
#define NMT_LSTM_KERNELS(NAME, G, C)                                                                                    \
  NMT_VECTOR_CLONES void forward_##NAME(const G* gates, const C* c, G* act, C* c_out, C* h_out, int64_t r0, int64_t r1, \
                                        int64_t H) {                                                                   \
    NMT_BY_LANES(forward_rows, gates, c, act, c_out, h_out, r0, r1, H);                                                \
  }                                                                                                                    \
  NMT_VECTOR_CLONES void backward_##NAME(const G* act, const C* c, const C* c_out, const C* dh, const C* dc_out,        \
                                         G* dgates, C* dc, int64_t r0, int64_t r1, int64_t H) {                        \
    NMT_BY_LANES(backward_rows, act, c, c_out, dh, dc_out, dgates, dc, r0, r1, H);                                     \
  }
NMT_LSTM_KERNELS(fp32, float, float)
NMT_LSTM_KERNELS(bf16_fp32, uint16_t, float)
NMT_LSTM_KERNELS(bf16, uint16_t, uint16_t)
#undef NMT_LSTM_KERNELS

/// Calls f with null pointers of the (gates, state) element types of a supported pair.
template <class F>
void with_types(at::ScalarType gates, at::ScalarType state, F&& f) {
  if (gates == at::kFloat) f(static_cast<float*>(nullptr), static_cast<float*>(nullptr));
  else if (state == at::kFloat) f(static_cast<uint16_t*>(nullptr), static_cast<float*>(nullptr));
  else f(static_cast<uint16_t*>(nullptr), static_cast<uint16_t*>(nullptr));
}

void run_forward(const float* g, const float* c, float* a, float* co, float* h, int64_t r0, int64_t r1, int64_t H) {
  forward_fp32(g, c, a, co, h, r0, r1, H);
}
void run_forward(const uint16_t* g, const float* c, uint16_t* a, float* co, float* h, int64_t r0, int64_t r1, int64_t H) {
  forward_bf16_fp32(g, c, a, co, h, r0, r1, H);
}
void run_forward(const uint16_t* g, const uint16_t* c, uint16_t* a, uint16_t* co, uint16_t* h, int64_t r0, int64_t r1,
                 int64_t H) {
  forward_bf16(g, c, a, co, h, r0, r1, H);
}
void run_backward(const float* a, const float* c, const float* co, const float* dh, const float* dco, float* dg,
                  float* dc, int64_t r0, int64_t r1, int64_t H) {
  backward_fp32(a, c, co, dh, dco, dg, dc, r0, r1, H);
}
void run_backward(const uint16_t* a, const float* c, const float* co, const float* dh, const float* dco, uint16_t* dg,
                  float* dc, int64_t r0, int64_t r1, int64_t H) {
  backward_bf16_fp32(a, c, co, dh, dco, dg, dc, r0, r1, H);
}
void run_backward(const uint16_t* a, const uint16_t* c, const uint16_t* co, const uint16_t* dh, const uint16_t* dco,
                  uint16_t* dg, uint16_t* dc, int64_t r0, int64_t r1, int64_t H) {
  backward_bf16(a, c, co, dh, dco, dg, dc, r0, r1, H);
}

struct LstmPointwise : torch::autograd::Function<LstmPointwise> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& gates_in,
                                                const at::Tensor& c_in) {
    RECORD_USER_SCOPE("nmt::lstm_pointwise");
    const auto gates = gates_in.contiguous(), c = c_in.contiguous();
    const int64_t B = c.size(0), H = c.size(1);
    auto act = at::empty_like(gates);
    auto c_out = at::empty_like(c), h_out = at::empty_like(c);
    with_types(gates.scalar_type(), c.scalar_type(), [&](auto* g_type, auto* c_type) {
      using G = std::remove_pointer_t<decltype(g_type)>;
      using C = std::remove_pointer_t<decltype(c_type)>;
      at::parallel_for(0, B, simd::rows_per_task(4 * H), [&](int64_t r0, int64_t r1) {
        run_forward(elements<G>(gates), elements<C>(c), elements<G>(act), elements<C>(c_out), elements<C>(h_out), r0, r1, H);
      });
    });
    ctx->save_for_backward({act, c, c_out});
    return {h_out, c_out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_USER_SCOPE("nmt::lstm_pointwise_backward");
    const auto saved = ctx->get_saved_variables();
    const auto &act = saved[0], &c = saved[1], &c_out = saved[2];
    const int64_t B = c.size(0), H = c.size(1);
    const auto dh = grads[0].defined() ? grads[0].to(c.scalar_type()).contiguous() : at::Tensor();
    const auto dc_out = grads[1].defined() ? grads[1].to(c.scalar_type()).contiguous() : at::Tensor();
    auto dgates = at::empty_like(act), dc = at::empty_like(c);
    with_types(act.scalar_type(), c.scalar_type(), [&](auto* g_type, auto* c_type) {
      using G = std::remove_pointer_t<decltype(g_type)>;
      using C = std::remove_pointer_t<decltype(c_type)>;
      const C* dh_p = dh.defined() ? elements<C>(dh) : nullptr;
      const C* dco_p = dc_out.defined() ? elements<C>(dc_out) : nullptr;
      at::parallel_for(0, B, simd::rows_per_task(4 * H), [&](int64_t r0, int64_t r1) {
        run_backward(elements<G>(act), elements<C>(c), elements<C>(c_out), dh_p, dco_p, elements<G>(dgates),
                     elements<C>(dc), r0, r1, H);
      });
    });
    return {dgates, dc};
  }
};

/// LibTorch 1.13's LSTMCell arithmetic on the same gates.
std::pair<at::Tensor, at::Tensor> composite(const at::Tensor& gates, const at::Tensor& c) {
  auto chunked = gates.chunk(4, 1);
  auto in = chunked[0].sigmoid(), forget = chunked[1].sigmoid(), cell = chunked[2].tanh(), out = chunked[3].sigmoid();
  auto c_new = forget * c + in * cell;
  return {out * c_new.tanh(), c_new};
}

}  // namespace

std::pair<at::Tensor, at::Tensor> lstm_cell_pointwise(const at::Tensor& gates, const at::Tensor& c) {
  TORCH_CHECK(gates.dim() == 2 && c.dim() == 2 && gates.size(0) == c.size(0) && gates.size(1) == 4 * c.size(1),
              "lstm_cell_pointwise: expected gates [B, 4H] and c [B, H], got ", gates.sizes(), " and ", c.sizes());
  const auto g = gates.scalar_type(), s = c.scalar_type();
  const bool supported = (g == at::kFloat && s == at::kFloat) || (g == at::kBFloat16 && (s == at::kFloat || s == at::kBFloat16));
  if (!gates.is_cpu() || !c.is_cpu() || !supported) return composite(gates, c);
  auto hc = LstmPointwise::apply(gates, c);
  return {hc[0], hc[1]};
}

}  // namespace nmt::models

#include "nmt/models/batched_matmul.h"

#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/autograd.h>

#include "nmt/precision.h"

namespace nmt::models {
namespace {

// The Fortran BLAS interface (LP64: 32-bit integers), present in every BLAS LibTorch links.
using Sgemm = void (*)(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc);

Sgemm sgemm() {
  // RTLD_DEFAULT searches this library's own dependencies too (libtorch → libblas), as
  // runtime.cpp's lookup of openblas_set_num_threads does.
  static const auto fn = reinterpret_cast<Sgemm>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return fn;
}

/// The matrices of one operand [..., R, C] as BLAS reads them: column-major with leading
/// dimension `ld`, and `op` 'N' or 'T' so that op(stored) is the operand's transpose [C, R]
/// (the row-major product C = A·B is asked of BLAS as Cᵀ = Bᵀ·Aᵀ).
struct Operand {
  at::Tensor t;  ///< the operand, or a contiguous copy when its strides do not fit BLAS
  char op = 'N';
  int64_t ld = 1;
};

Operand as_blas(const at::Tensor& x) {
  const int64_t R = x.size(-2), C = x.size(-1), sr = x.stride(-2), sc = x.stride(-1);
  // Rows contiguous: column-major the storage is xᵀ [C, R] with ld = the row stride.
  if ((sc == 1 || C == 1) && (R == 1 || sr >= std::max<int64_t>(C, 1)))
    return {x, 'N', R == 1 ? std::max<int64_t>(C, 1) : sr};
  // Columns contiguous (a transposed view): the storage is x [R, C] column-major.
  if ((sr == 1 || R == 1) && (C == 1 || sc >= std::max<int64_t>(R, 1)))
    return {x, 'T', C == 1 ? std::max<int64_t>(R, 1) : sc};
  auto copy = x.contiguous();
  return {copy, 'N', std::max<int64_t>(C, 1)};
}

/// The element offset of every matrix of `t` [..., R, C], in row-major order of the batch index.
std::vector<int64_t> matrix_offsets(const at::Tensor& t) {
  const int64_t dims = t.dim() - 2;
  std::vector<int64_t> offsets{0};
  for (int64_t d = 0; d < dims; ++d) {
    std::vector<int64_t> next;
    next.reserve(offsets.size() * static_cast<size_t>(t.size(d)));
    for (const int64_t base : offsets)
      for (int64_t i = 0; i < t.size(d); ++i) next.push_back(base + i * t.stride(d));
    offsets.swap(next);
  }
  return offsets;
}

bool fits_int(int64_t v) { return v <= INT_MAX; }

bool blas_applies(const at::Tensor& a, const at::Tensor& b) {
  if (!batched_matmul_takes_views(a) || !batched_matmul_takes_views(b) || a.dim() < 3 || a.dim() != b.dim()) return false;
  if (a.sizes().slice(0, a.dim() - 2) != b.sizes().slice(0, b.dim() - 2)) return false;  // broadcasting
  if (a.size(-1) != b.size(-2)) return false;  // at::matmul reports it
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  if (a.numel() == 0 || b.numel() == 0) return false;
  return fits_int(M) && fits_int(N) && fits_int(K) && fits_int(a.stride(-2)) && fits_int(a.stride(-1)) &&
         fits_int(b.stride(-2)) && fits_int(b.stride(-1));
}

/// a·b by one sgemm_ per matrix (blas_applies(a, b) holds).
at::Tensor blas_matmul(const at::Tensor& a_in, const at::Tensor& b_in) {
  RECORD_USER_SCOPE("nmt::batched_matmul");
  const Operand a = as_blas(a_in), b = as_blas(b_in);
  const int64_t M = a.t.size(-2), K = a.t.size(-1), N = b.t.size(-1);
  std::vector<int64_t> sizes(a.t.sizes().begin(), a.t.sizes().end() - 2);
  sizes.push_back(M);
  sizes.push_back(N);
  auto c = at::empty(sizes, a.t.options());
  const auto off_a = matrix_offsets(a.t), off_b = matrix_offsets(b.t);
  const auto items = static_cast<int64_t>(off_a.size());
  const float* pa = a.t.data_ptr<float>();
  const float* pb = b.t.data_ptr<float>();
  float* pc = c.data_ptr<float>();
  const int m = static_cast<int>(N), n = static_cast<int>(M), k = static_cast<int>(K), ldc = m;
  const int lda = static_cast<int>(b.ld), ldb = static_cast<int>(a.ld);
  const float one = 1.0F, zero = 0.0F;
  const auto gemm = sgemm();
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      gemm(&b.op, &a.op, &m, &n, &k, &one, pb + off_b[i], &lda, pa + off_a[i], &ldb, &zero, pc + i * M * N, &ldc);
  };
  // Small matrices (attention's, at Multi30k's lengths) go to ATen's threads a group at a time,
  // each product on one thread; large ones one after another, each on BLAS's own threads
  // (OpenBLAS threads a product above about 2^18 multiply-adds).
  const int64_t work = M * N * K;
  if (work < (int64_t{1} << 18))
    at::parallel_for(0, items, std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(work, 1)), run);
  else
    run(0, items);
  return c;
}

class BatchedMatmul : public torch::autograd::Function<BatchedMatmul> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& a, const at::Tensor& b) {
    ctx->save_for_backward({a, b});
    return blas_matmul(a, b);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& a = saved[0];
    const auto& b = saved[1];
    const auto& g = grads[0];  // [..., M, N]
    at::Tensor grad_a, grad_b;
    if (ctx->needs_input_grad(0)) grad_a = batched_matmul(g, b.transpose(-2, -1));  // [..., M, K]
    if (ctx->needs_input_grad(1)) grad_b = batched_matmul(a.transpose(-2, -1), g);  // [..., K, N]
    return {grad_a, grad_b};
  }
};

}  // namespace

bool has_blas_batched_matmul() { return sgemm() != nullptr; }

bool batched_matmul_takes_views(const at::Tensor& t) {
  return sgemm() && t.device().is_cpu() && t.scalar_type() == at::kFloat &&
         !nmt::autocast_enabled(t.device());  // bf16 products under autocast
}

at::Tensor batched_matmul(const at::Tensor& a, const at::Tensor& b) {
  if (!blas_applies(a, b)) return at::matmul(a, b);
  if (at::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad())) return BatchedMatmul::apply(a, b);
  return blas_matmul(a, b);
}

}  // namespace nmt::models

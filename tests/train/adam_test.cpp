// The fused Adam step (nmt/train/adam.h) against LibTorch's Adam: the same updates to fp32
// rounding, the same state (checkpoints load into either), LibTorch's own step where the fused
// loop does not apply, and the gradient clipping that enters it as a factor.
#include "nmt/train/adam.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/torch.h>

namespace {

using nmt::train::FusedAdam;
using torch::optim::Adam;
using torch::optim::AdamOptions;
using torch::optim::AdamParamState;

/// Parameters of several shapes: one large enough for several tasks of the fused loop
/// (77,357 elements, an odd count), a 0-dim one, and one that never gets a gradient.
std::vector<at::Tensor> make_params(torch::Dtype dtype = torch::kFloat) {
  torch::manual_seed(3);
  std::vector<at::Tensor> params;
  for (auto shape : std::vector<std::vector<int64_t>>{{301, 257}, {17}, {}, {5, 3}})
    params.push_back(torch::randn(shape, dtype).requires_grad_());
  return params;
}

std::vector<at::Tensor> clones(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone().requires_grad_());
  return out;
}

/// Gives each parameter but the last the gradient of step `step` (the same in every set).
void set_gradients(std::vector<at::Tensor>& params, int step) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + step);
  for (size_t i = 0; i + 1 < params.size(); ++i) {
    auto g = at::normal(0.0, 1.0 + step, params[i].sizes(), gen).to(params[i].scalar_type());
    params[i].mutable_grad() = g;
  }
}

AdamParamState& state_of(torch::optim::Optimizer& opt, const at::Tensor& p) {
  return static_cast<AdamParamState&>(*opt.state().at(c10::guts::to_string(p.unsafeGetTensorImpl())));
}

/// Expects two parameter sets and their Adam states to agree to fp32 rounding (`exact`: bitwise).
void expect_same(const std::vector<at::Tensor>& a, torch::optim::Optimizer& oa, const std::vector<at::Tensor>& b,
                 torch::optim::Optimizer& ob, bool exact) {
  ASSERT_EQ(a.size(), b.size());
  auto same = [&](const at::Tensor& x, const at::Tensor& y) {
    return exact ? torch::equal(x, y) : torch::allclose(x, y, 1e-5, 1e-6);
  };
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(same(a[i], b[i])) << "parameter " << i << ": max difference " << (a[i] - b[i]).abs().max().item<double>();
    const bool has_state = oa.state().count(c10::guts::to_string(a[i].unsafeGetTensorImpl())) > 0;
    ASSERT_EQ(has_state, ob.state().count(c10::guts::to_string(b[i].unsafeGetTensorImpl())) > 0) << i;
    if (!has_state) continue;
    auto& sa = state_of(oa, a[i]);
    auto& sb = state_of(ob, b[i]);
    EXPECT_EQ(sa.step(), sb.step()) << i;
    EXPECT_TRUE(same(sa.exp_avg(), sb.exp_avg())) << "first moment of parameter " << i;
    EXPECT_TRUE(same(sa.exp_avg_sq(), sb.exp_avg_sq())) << "second moment of parameter " << i;
  }
}

AdamOptions options() { return AdamOptions(0.01).betas({0.9, 0.98}).weight_decay(0.01).eps(1e-8); }

TEST(FusedAdam, AgreesWithLibTorchsAdamOverSteps) {
  auto pa = make_params(), pb = clones(pa);
  FusedAdam fused(pa, options());
  Adam reference(pb, options());
  for (int step = 0; step < 6; ++step) {
    set_gradients(pa, step);
    set_gradients(pb, step);
    fused.step();
    reference.step();
  }
  expect_same(pa, fused, pb, reference, false);
  EXPECT_EQ(state_of(fused, pa[0]).step(), 6);
  EXPECT_FALSE(torch::equal(pa[0], make_params()[0]));                  // it moved
  EXPECT_TRUE(torch::equal(pa.back(), make_params().back()));          // no gradient: untouched
}

TEST(FusedAdam, ScaledStepEqualsAStepOnScaledGradientsAndLeavesThemAsTheyAre) {
  auto pa = make_params(), pb = clones(pa);
  FusedAdam fused(pa, options());
  Adam reference(pb, options());
  for (int step = 0; step < 3; ++step) {
    set_gradients(pa, step);
    set_gradients(pb, step);
    const double scale = 0.25 + 0.3 * step;
    auto before = pa[0].grad().clone();
    fused.step_scaled(scale);
    EXPECT_TRUE(torch::equal(pa[0].grad(), before));
    for (size_t i = 0; i + 1 < pb.size(); ++i) pb[i].mutable_grad().mul_(scale);
    reference.step();
  }
  expect_same(pa, fused, pb, reference, false);
}

TEST(FusedAdam, TheUpdateDoesNotDependOnTheNumberOfThreads) {
  const int threads = at::get_num_threads();
  auto pa = make_params(), pb = clones(pa);
  FusedAdam one(pa, options()), two(pb, options());
  for (int step = 0; step < 3; ++step) {
    set_gradients(pa, step);
    set_gradients(pb, step);
    at::set_num_threads(1);
    one.step();
    at::set_num_threads(2);
    two.step();
  }
  at::set_num_threads(threads);
  expect_same(pa, one, pb, two, true);
}

TEST(FusedAdam, ItsStateIsLibTorchsAdamState) {
  // LibTorch's step, then the fused one: the fused step finds the state LibTorch's made.
  auto pa = make_params(), pb = clones(pa);
  FusedAdam mixed(pa, options());
  Adam reference(pb, options());
  for (int step = 0; step < 4; ++step) {
    set_gradients(pa, step);
    set_gradients(pb, step);
    if (step < 2)
      mixed.Adam::step();
    else
      mixed.step();
    reference.step();
  }
  expect_same(pa, mixed, pb, reference, false);
  EXPECT_EQ(state_of(mixed, pa[0]).step(), 4);

  // Saved by the fused optimizer, loaded into LibTorch's (and back): both continue alike.
  torch::serialize::OutputArchive out;
  mixed.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  auto pc = clones(pa), pd = clones(pa);
  Adam loaded(pc, options());
  FusedAdam loaded_fused(pd, options());
  for (torch::optim::Optimizer* opt : {static_cast<torch::optim::Optimizer*>(&loaded),
                                       static_cast<torch::optim::Optimizer*>(&loaded_fused)}) {
    torch::serialize::InputArchive in;
    std::istringstream stream(bytes.str());
    in.load_from(stream);
    opt->load(in);
  }
  set_gradients(pa, 4);
  set_gradients(pc, 4);
  set_gradients(pd, 4);
  mixed.step();
  loaded.step();
  loaded_fused.step();
  expect_same(pa, mixed, pc, loaded, false);
  expect_same(pa, mixed, pd, loaded_fused, true);
  EXPECT_EQ(state_of(loaded_fused, pd[0]).step(), 5);
}

TEST(FusedAdam, TakesLibTorchsStepWhereTheFusedLoopDoesNotApply) {
  struct Case {
    torch::Dtype dtype;
    bool amsgrad;
  };
  for (Case c : {Case{torch::kDouble, false}, Case{torch::kFloat, true}}) {
    auto pa = make_params(c.dtype), pb = clones(pa);
    FusedAdam fused(pa, options().amsgrad(c.amsgrad));
    Adam reference(pb, options().amsgrad(c.amsgrad));
    for (int step = 0; step < 3; ++step) {
      set_gradients(pa, step);
      set_gradients(pb, step);
      fused.step_scaled(0.5);
      for (size_t i = 0; i + 1 < pb.size(); ++i) pb[i].mutable_grad().mul_(0.5);
      reference.step();
    }
    expect_same(pa, fused, pb, reference, true);  // LibTorch's own operations: bitwise
  }
  // A non-contiguous parameter (a transposed view) also takes LibTorch's step.
  auto base = torch::randn({6, 4});
  auto pa = std::vector<at::Tensor>{base.t().detach().requires_grad_()};
  auto pb = clones(pa);
  ASSERT_FALSE(pa[0].is_contiguous());
  FusedAdam fused(pa, options());
  Adam reference(pb, options());
  pa[0].mutable_grad() = torch::ones({4, 6});
  pb[0].mutable_grad() = torch::ones({4, 6});
  fused.step();
  reference.step();
  expect_same(pa, fused, pb, reference, true);
}

TEST(FusedAdam, ClearedGradientsAreTakenOverByTheNextBackwardPassAndUnusedParametersLeftAlone) {
  auto params = make_params();
  FusedAdam adam(params, AdamOptions(0.01));
  for (auto& p : params) p.mutable_grad() = torch::ones_like(p);  // every parameter updated once
  adam.step();
  adam.clear_gradients();
  for (const auto& p : params) EXPECT_FALSE(p.grad().defined());
  // The next gradient is the backward pass's own, not one added to zeros; the parameter that gets
  // none keeps none, and its weight and moments stay as they are (zero_grad would have decayed them).
  const auto unused = params.back().detach().clone();
  const auto unused_m = state_of(adam, params.back()).exp_avg().clone();
  (params[0].square().sum() + params[1].sum()).backward();
  const auto expected = 2 * params[0].detach();
  EXPECT_TRUE(torch::equal(params[0].grad(), expected));
  EXPECT_TRUE(torch::equal(params[1].grad(), torch::ones_like(params[1])));
  EXPECT_FALSE(params.back().grad().defined());
  adam.step();
  EXPECT_TRUE(torch::equal(params.back().detach(), unused));
  EXPECT_TRUE(torch::equal(state_of(adam, params.back()).exp_avg(), unused_m));
  EXPECT_EQ(state_of(adam, params.back()).step(), 1);
  EXPECT_EQ(state_of(adam, params[0]).step(), 2);
}

TEST(GradientClipping, NormAndFactorAreThoseOfClipGradNorm) {
  auto pa = make_params(), pb = clones(pa);
  set_gradients(pa, 1);
  set_gradients(pb, 1);
  const double norm = nmt::train::gradient_norm(pa);
  EXPECT_DOUBLE_EQ(norm, torch::nn::utils::clip_grad_norm_(pb, 5.0));
  // clip_grad_norm_ scaled pb's gradients by the factor (in fp32).
  const double factor = nmt::train::clip_factor(norm, 5.0);
  EXPECT_LT(factor, 1.0);
  EXPECT_TRUE(torch::allclose(pa[0].grad() * factor, pb[0].grad(), 1e-6, 1e-7));
  EXPECT_EQ(nmt::train::clip_factor(2.0, 5.0), 1.0);
  EXPECT_EQ(nmt::train::clip_factor(std::numeric_limits<double>::infinity(), 5.0), 0.0);
  EXPECT_TRUE(std::isnan(nmt::train::clip_factor(std::nan(""), 5.0)));
  EXPECT_EQ(nmt::train::gradient_norm({torch::zeros({3})}), 0.0);  // no gradient at all
}

TEST(Threads, OurParallelLoopsRunOnSeveralThreads) {
  // at::parallel_for is a header template: compiled without OpenMP it runs the whole range on
  // the calling thread, whatever at::set_num_threads says.
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  std::vector<int> thread_of(64, -1);
  at::parallel_for(0, 64, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) thread_of[i] = at::get_thread_num();
  });
  at::set_num_threads(threads);
  EXPECT_EQ(std::set<int>(thread_of.begin(), thread_of.end()), (std::set<int>{0, 1}));
}

}  // namespace

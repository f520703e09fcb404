// Mixed precision (nmt/precision.h): the auto choice, the autocast guards, and bf16 training
// updates against fp32 ones.
#include "nmt/precision.h"

#include <gtest/gtest.h>

#include <functional>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include "nmt/config.h"
#include "nmt/models/int8.h"
#include "nmt/models/seq2seq.h"
#include "nmt/train/loss.h"
#include "nmt/train/update.h"
#include "support/model_util.h"

namespace {

using nmt::GemmCeilings;
using nmt::Precision;

struct Probe {
  GemmCeilings rates;
  int calls = 0;
  std::function<GemmCeilings()> fn() {
    return [this] {
      ++calls;
      return rates;
    };
  }
};

TEST(ChoosePrecision, AutoIsFp32OnACpuWithoutBf16UnitsWithoutProbing) {
  Probe probe{{100, 900}};
  auto choice = nmt::choose_precision("auto", torch::kCPU, "train.precision", "", probe.fn());
  EXPECT_EQ(choice.precision, Precision::kFp32);
  EXPECT_EQ(probe.calls, 0);
  EXPECT_NE(choice.reason.find("neither AMX nor AVX512-BF16"), std::string::npos) << choice.reason;
}

TEST(ChoosePrecision, AutoFollowsTheProbeWhereTheCpuHasBf16Units) {
  Probe slower{{180, 120}};
  auto choice = nmt::choose_precision("auto", torch::kCPU, "train.precision", "amx_bf16", slower.fn());
  EXPECT_EQ(choice.precision, Precision::kFp32);
  EXPECT_EQ(slower.calls, 1);
  EXPECT_NE(choice.reason.find("120"), std::string::npos) << choice.reason;  // the measured rates are logged
  Probe faster{{180, 900}};
  choice = nmt::choose_precision("auto", torch::kCPU, "train.precision", "avx512_bf16", faster.fn());
  EXPECT_EQ(choice.precision, Precision::kBf16);
  EXPECT_NE(choice.reason.find("avx512_bf16"), std::string::npos) << choice.reason;
}

TEST(ChoosePrecision, ExplicitSettingsAreTakenAsGivenAndOthersNameTheKey) {
  Probe probe{{1, 2}};
  EXPECT_EQ(nmt::choose_precision("bf16", torch::kCPU, "k", "", probe.fn()).precision, Precision::kBf16);
  EXPECT_EQ(nmt::choose_precision("fp32", torch::kCPU, "k", "amx_bf16", probe.fn()).precision, Precision::kFp32);
  EXPECT_EQ(probe.calls, 0);
  try {
    nmt::choose_precision("fp16", torch::kCPU, "--precision", "", probe.fn());
    FAIL() << "fp16 accepted";
  } catch (const nmt::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--precision"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fp16"), std::string::npos) << e.what();
  }
}

TEST(ChoosePrecision, TheConfigKeyAcceptsOnlyTheThreeSettings) {
  EXPECT_EQ(nmt::default_config().train.precision, "fp32");
  EXPECT_EQ(nmt::parse_config("train:\n  precision: auto\n", "t").train.precision, "auto");
  EXPECT_THROW(nmt::parse_config("train:\n  precision: half\n", "t"), nmt::ConfigError);
}

TEST(Autocast, GuardRunsProductsInBf16AndRestoresFp32) {
  auto a = torch::randn({8, 8});
  {
    nmt::AutocastGuard fp32(Precision::kFp32, torch::kCPU);
    EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kFloat);
  }
  {
    nmt::AutocastGuard bf16(Precision::kBf16, torch::kCPU);
    EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);
    {
      nmt::AutocastSuspend off;
      EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kFloat);
    }
    EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kFloat);
}

TEST(Autocast, OperandsAreCastOnceAndOnlyInsideTheGuard) {
  auto weight = torch::randn({6, 4}).requires_grad_(true);  // a leaf, as parameters are
  auto activation = torch::randn({3, 4}) * 2;                // not a leaf of autograd's graph
  EXPECT_TRUE(nmt::autocast_operand(weight).is_same(weight));  // autocast off: as it is
  {
    nmt::AutocastGuard guard(nmt::Precision::kBf16, torch::kCPU);
    auto a = nmt::autocast_operand(weight), b = nmt::autocast_operand(weight);
    EXPECT_EQ(a.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(a.is_same(b));  // autocast's cache: one cast per guard
    EXPECT_TRUE(torch::equal(a, weight.detach().to(torch::kBFloat16)));
    auto x = nmt::autocast_operand(activation);
    EXPECT_EQ(x.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(nmt::autocast_operand(x).is_same(x));  // already bf16
    // A product of a cast operand equals autocast's own product.
    EXPECT_TRUE(torch::equal(at::linear(x, a.narrow(0, 0, 3)), at::linear(activation, weight.narrow(0, 0, 3))));
    // Differentiable: the gradient reaches the fp32 weight.
    at::linear(x, a).sum().backward();
  }
  ASSERT_TRUE(weight.grad().defined());
  EXPECT_EQ(weight.grad().scalar_type(), torch::kFloat);
  EXPECT_EQ(nmt::autocast_operand(weight).scalar_type(), torch::kFloat);
}

TEST(Autocast, ALinearLayerCastsItsWeightOncePerGuardForAnyInputRank) {
  namespace prof = torch::autograd::profiler;
  nmt::models::Linear linear(4, 6);
  torch::NoGradGuard no_grad;  // as in decoding; the weight stays a leaf that requires grad
  // Casts (aten::_to_copy) of the weight [6, 4] or of its transpose, in the calls of `run`.
  auto weight_casts = [&](const std::function<void()>& run) {
    prof::enableProfilerLegacy(prof::ProfilerConfig(prof::ProfilerState::CPU, /*report_input_shapes=*/true));
    run();
    int casts = 0;
    for (auto& events : prof::disableProfilerLegacy())
      for (auto& e : events) {
        if (e.kind() != prof::EventKind::PushRange || std::string(e.name()) != "aten::_to_copy") continue;
        const auto shape = e.shapes().at(0);
        casts += shape == std::vector<int64_t>{6, 4} || shape == std::vector<int64_t>{4, 6};
      }
    return casts;
  };
  for (const auto& x : {torch::randn({3, 4}), torch::randn({3, 1, 4}), torch::randn({2, 3, 4})}) {
    nmt::AutocastGuard guard(nmt::Precision::kBf16, torch::kCPU);
    EXPECT_EQ(weight_casts([&] {
                for (int step = 0; step < 3; ++step) EXPECT_EQ(linear(x).scalar_type(), torch::kBFloat16);
              }),
              1)
        << x.sizes();
    EXPECT_EQ(weight_casts([&] { linear(x); }), 0) << x.sizes();
    const auto expected = at::linear(x.to(torch::kBFloat16), linear->weight.to(torch::kBFloat16),
                                     linear->bias.to(torch::kBFloat16));
    EXPECT_TRUE(torch::equal(linear(x), expected)) << x.sizes();
  }
}

TEST(Autocast, GemmCeilingsAreMeasured) {
  torch::set_num_threads(1);
  auto rates = nmt::measure_gemm(torch::kCPU, 64, 0.01);
  EXPECT_GT(rates.fp32_gflops, 0);
  EXPECT_GT(rates.bf16_gflops, 0);
}

/// Gradients of one batch's loss under `precision`, by parameter name.
std::map<std::string, at::Tensor> gradients(const nmt::ModelConfig& mc, Precision precision) {
  torch::manual_seed(3);
  auto model = nmt::models::make_model(mc, 20, 20);
  auto batch = nmt::testing::batch_of(nmt::testing::examples());
  {
    nmt::AutocastGuard autocast(precision, torch::kCPU);
    auto out = model->forward(batch);
    auto loss = nmt::train::token_loss(out, batch.tgt_out, 0.1).loss;
    EXPECT_EQ(loss.scalar_type(), torch::kFloat);
    (out.aux_loss.defined() ? loss + out.aux_loss : loss).backward();
  }
  std::map<std::string, at::Tensor> grads;
  for (const auto& p : model->named_parameters()) {
    if (!p.value().grad().defined()) continue;
    EXPECT_EQ(p.value().grad().scalar_type(), torch::kFloat) << p.key();  // fp32 master gradients
    grads[p.key()] = p.value().grad().clone();
  }
  return grads;
}

// bf16 products change a gradient by rounding, not in direction: each parameter's bf16
// gradient has cosine similarity ≥ 0.98 with the fp32 one, for each model family.
TEST(Autocast, Bf16GradientsPointWhereFp32GradientsPoint) {
  for (auto type : {nmt::ModelType::Rnn, nmt::ModelType::Transformer, nmt::ModelType::ConvS2S}) {
    const auto mc = nmt::testing::tiny_model_config(type);
    auto fp32 = gradients(mc, Precision::kFp32), bf16 = gradients(mc, Precision::kBf16);
    ASSERT_EQ(fp32.size(), bf16.size());
    bool differs = false;
    for (const auto& [name, g] : fp32) {
      const auto& h = bf16.at(name);
      const double norm = g.norm().item<double>() * h.norm().item<double>();
      if (norm < 1e-12) continue;
      EXPECT_GT((g * h).sum().item<double>() / norm, 0.98) << static_cast<int>(type) << " " << name;
      differs = differs || !torch::allclose(g, h, 1e-6, 1e-7);
    }
    EXPECT_TRUE(differs) << "bf16 changed no gradient of model type " << static_cast<int>(type);
  }
}

}  // namespace

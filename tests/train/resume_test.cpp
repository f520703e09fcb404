// Exact resume: a run stopped after K updates and resumed to N ends bitwise where the
// uninterrupted N-update run ends (weights, Adam moments, training state), with dropout on, for
// the plateau and Noam schedules and with gradient accumulation.
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/config.h"
#include "nmt/io/checkpoint.h"
#include "nmt/train/trainer.h"
#include "nmt/train/update.h"
#include "support/test_util.h"
#include "support/train_util.h"

namespace {

using nmt::testing::TempDir;

struct Variant {
  const char* name;
  nmt::LrSchedule schedule;
  int64_t accum_steps;
  double ema_decay = 0;  ///< train.ema_decay: the moving average must resume exactly too
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

/// The joint toy SentencePiece model, trained once, so that every run uses the same one.
const std::string& toy_spm() {
  static TempDir dir;
  static const std::string path = [] {
    auto c = nmt::load_config(nmt::testing::source_path("configs/toy_rnn.yaml"));
    c.data.train_src = nmt::testing::source_path(c.data.train_src);
    c.data.train_tgt = nmt::testing::source_path(c.data.train_tgt);
    nmt::train::prepare_vocabs(c, dir.path().string(), "spm", /*reuse=*/false);
    return dir.file("spm.model");
  }();
  return path;
}

/// The toy RNN with dropout, validating every 3 updates (and at each epoch end) on the
/// training corpus, so that validations change the best score, patience and the plateau rate.
nmt::Config toy_config(const std::string& model_dir, const Variant& v, int64_t max_steps) {
  auto c = nmt::load_config(nmt::testing::source_path("configs/toy_rnn.yaml"));
  for (auto* f : {&c.data.train_src, &c.data.train_tgt, &c.data.valid_src, &c.data.valid_tgt})
    *f = nmt::testing::source_path(*f);
  c.data.spm_src = toy_spm();
  c.model.dropout = 0.3;
  c.train.model_dir = model_dir;
  c.train.target_ppl = 0;
  c.train.valid_every = 3;
  c.train.log_every = 1000;
  c.train.lr_schedule = v.schedule;
  c.train.lr_patience = 0;
  c.train.warmup_steps = 4;
  c.train.accum_steps = v.accum_steps;
  c.train.max_steps = max_steps;
  c.train.ema_decay = v.ema_decay;
  return c;
}

/// Trains `model_dir` for `first` updates, then resumes it up to `total`; `reseed` drops the
/// stored generator state first (as a checkpoint of an older nmt would lack it).
void train_in_two_parts(const std::string& model_dir, const Variant& v, int64_t first, int64_t total,
                        bool reseed = false) {
  nmt::train::train_new(toy_config(model_dir, v, first));
  auto ck = nmt::io::load_checkpoint(model_dir + "/last.pt", torch::kCPU);
  ASSERT_EQ(ck.state.step, first);
  ck.config.train.max_steps = total;
  if (reseed) ck.state.cpu_rng_state = torch::Tensor();
  nmt::train::resume_training(std::move(ck), model_dir);
}

std::unique_ptr<torch::optim::Adam> optimizer_of(nmt::io::Checkpoint& ck, const std::string& path) {
  auto opt = nmt::train::make_optimizer(*ck.model, ck.config.train);
  nmt::io::load_optimizer_state(path, *opt, torch::kCPU);
  return opt;
}

bool same_weights(const nmt::models::Seq2Seq& a, const nmt::models::Seq2Seq& b) {
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (auto& p : pa)
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  return true;
}

class ExactResume : public ::testing::TestWithParam<Variant> {};

TEST_P(ExactResume, ResumedRunEqualsTheUninterruptedOneBitwise) {
  const Variant v = GetParam();
  TempDir dir;
  constexpr int64_t kTotal = 11;
  const std::string whole = dir.file("whole");
  nmt::train::train_new(toy_config(whole, v, kTotal));
  auto a = nmt::io::load_checkpoint(whole + "/last.pt", torch::kCPU);
  auto opt_a = optimizer_of(a, whole + "/last.pt");
  ASSERT_EQ(a.state.step, kTotal);
  // Stopped between validations (a last validation for best.pt follows the write of last.pt)
  // and at a validation step.
  for (int64_t first : {4, 6}) {
    const std::string part = dir.file("part" + std::to_string(first));
    train_in_two_parts(part, v, first, kTotal);
    auto b = nmt::io::load_checkpoint(part + "/last.pt", torch::kCPU);
    SCOPED_TRACE(std::string(v.name) + ", resumed after " + std::to_string(first) + " updates");
    nmt::testing::expect_same_parameters(*a.model, *b.model);
    ASSERT_EQ(a.ema != nullptr, v.ema_decay > 0);
    ASSERT_EQ(b.ema != nullptr, v.ema_decay > 0);
    if (a.ema) {
      nmt::testing::expect_same_parameters(*a.ema, *b.ema);
      EXPECT_FALSE(same_weights(a.model, a.ema)) << "the moving average equals the trained weights";
    }
    nmt::testing::expect_same_adam_state(*opt_a, *optimizer_of(b, part + "/last.pt"));
    EXPECT_EQ(b.state.step, a.state.step);
    EXPECT_EQ(b.state.epoch, a.state.epoch);
    EXPECT_EQ(b.state.batch_in_epoch, a.state.batch_in_epoch);
    EXPECT_EQ(b.state.best_metric, a.state.best_metric);
    EXPECT_EQ(b.state.best_step, a.state.best_step);
    EXPECT_EQ(b.state.bad_validations, a.state.bad_validations);
    EXPECT_EQ(b.state.lr_base, a.state.lr_base);
    EXPECT_EQ(b.state.lr_bad_count, a.state.lr_bad_count);
    EXPECT_TRUE(torch::equal(b.state.cpu_rng_state, a.state.cpu_rng_state));
  }
  // The control: reseeding at the resume (nmt's old behaviour) gives other dropout masks and
  // so other weights; the equality above is not an accident of dropout doing nothing.
  const std::string reseeded = dir.file("reseeded");
  train_in_two_parts(reseeded, v, 4, kTotal, /*reseed=*/true);
  EXPECT_FALSE(same_weights(a.model, nmt::io::load_checkpoint(reseeded + "/last.pt", torch::kCPU).model));
}

INSTANTIATE_TEST_SUITE_P(Schedules, ExactResume,
                         ::testing::Values(Variant{"plateau", nmt::LrSchedule::Plateau, 1},
                                           Variant{"noam", nmt::LrSchedule::Noam, 1},
                                           Variant{"plateau_accum2", nmt::LrSchedule::Plateau, 2},
                                           Variant{"noam_accum2", nmt::LrSchedule::Noam, 2},
                                           Variant{"plateau_ema", nmt::LrSchedule::Plateau, 1, 0.9}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace

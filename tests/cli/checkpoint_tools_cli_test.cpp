// train.keep_checkpoints, `nmt average` and `nmt info` end to end on the toy RNN.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/io/checkpoint.h"
#include "support/test_util.h"

namespace {

using nmt::testing::contains;
using nmt::testing::run_nmt;
using nmt::testing::TempDir;
namespace fs = std::filesystem;

std::string digest_of(const std::string& checkpoint) {
  auto r = run_nmt("info -m " + checkpoint);
  const auto at = r.output.find("weights digest: ");
  return at == std::string::npos ? r.output : r.output.substr(at);
}

TEST(CheckpointToolsCli, KeepsTheLastCheckpointsAndAveragesThem) {
  TempDir tmp;
  const auto dir = tmp.file("run");
  auto r = run_nmt("train -c configs/toy_rnn.yaml --set train.model_dir=" + dir +
                   " --set train.threads=1 --set train.target_ppl=0 --set train.max_steps=10"
                   " --set train.save_every=2 --set train.keep_checkpoints=3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto kept = nmt::io::numbered_checkpoints(dir);
  ASSERT_EQ(kept.size(), 3u);
  // The newest three of the saves (every 2 updates and after each validation), oldest first.
  EXPECT_EQ(fs::path(kept[2]).filename(), "step-10.pt");
  auto step = [](const std::string& p) { return std::stoi(fs::path(p).stem().string().substr(5)); };
  EXPECT_LT(step(kept[0]), step(kept[1]));
  EXPECT_LT(step(kept[1]), step(kept[2]));
  EXPECT_GE(step(kept[0]), 6);  // saves every 2 updates, plus the validations: the oldest went
  EXPECT_EQ(digest_of(kept[2]), digest_of(dir + "/last.pt"));  // the same weights as last.pt

  // The mean of the last two, written as a model directory that translates.
  auto avg = run_nmt("average -o " + tmp.file("avg") + " --last 2 " + dir);
  ASSERT_EQ(avg.exit_code, 0) << avg.output;
  auto a = nmt::io::load_checkpoint(kept[1], torch::kCPU);
  auto b = nmt::io::load_checkpoint(kept[2], torch::kCPU);
  auto m = nmt::io::load_checkpoint(tmp.file("avg") + "/best.pt", torch::kCPU);
  auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  bool moved = false;
  for (const auto& p : m.model->named_parameters()) {
    EXPECT_TRUE(torch::allclose(p.value(), (pa[p.key()] + pb[p.key()]) / 2, 1e-6, 1e-7)) << p.key();
    moved = moved || !torch::equal(pa[p.key()], pb[p.key()]);
  }
  EXPECT_TRUE(moved);  // the two checkpoints differ, so the test can tell a mean from either
  auto tr = run_nmt("translate -m " + tmp.file("avg") + " -i data/toy/valid.de");
  EXPECT_EQ(tr.exit_code, 0) << tr.output;

  // A checkpoint averaged with itself is itself; an existing model is never overwritten.
  auto self = run_nmt("average -o " + tmp.file("self") + " " + kept[2] + " " + kept[2]);
  ASSERT_EQ(self.exit_code, 0) << self.output;
  EXPECT_EQ(digest_of(tmp.file("self") + "/best.pt"), digest_of(kept[2]));
  auto again = run_nmt("average -o " + tmp.file("self") + " " + kept[0] + " " + kept[1]);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(contains(again.output, "already holds a model")) << again.output;
  auto none = run_nmt("average -o " + tmp.file("x") + " --last 2 " + tmp.file("avg"));
  EXPECT_NE(none.exit_code, 0);
  EXPECT_TRUE(contains(none.output, "no step-<N>.pt checkpoints")) << none.output;
}

}  // namespace

// train.keep_checkpoints, train.ema_decay, `nmt average` and `nmt info` end to end on the toy RNN.
#include <filesystem>
#include <sstream>

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

// train.ema_decay: the checkpoints hold the moving average beside the trained weights, `nmt info`
// shows both, and translation uses the average: the same output as a checkpoint whose weights
// are the average, another output than the trained weights give. The average never feeds back
// into training: with a schedule that validation does not steer, the trained weights equal
// those of the same run without it (the comparison of the README rests on this), and
// `nmt average --trained-weights` recovers them.
TEST(CheckpointToolsCli, TranslationUsesTheMovingAverageOfTheWeights) {
  TempDir tmp;
  const auto dir = tmp.file("run");
  // No learning-rate decay and no early stopping, which validation (of the average) would steer.
  const std::string train = "train -c configs/toy_rnn.yaml --set train.threads=1 --set train.target_ppl=0"
                            " --set train.max_steps=12 --set train.lr_patience=1000 --set train.patience=1000";
  auto r = run_nmt(train + " --set train.model_dir=" + dir + " --set train.ema_decay=0.9");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto plain = run_nmt(train + " --set train.model_dir=" + tmp.file("plain"));
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  auto plain_ck = nmt::io::load_checkpoint(tmp.file("plain") + "/last.pt", torch::kCPU);
  auto ema_last = nmt::io::load_checkpoint(dir + "/last.pt", torch::kCPU);
  EXPECT_EQ(ema_last.state.step, 12);
  EXPECT_EQ(nmt::io::weights_digest(*ema_last.model), nmt::io::weights_digest(*plain_ck.model));
  auto raw = run_nmt("average --trained-weights -o " + tmp.file("raw") + " " + dir + "/last.pt");
  ASSERT_EQ(raw.exit_code, 0) << raw.output;
  auto raw_ck = nmt::io::load_checkpoint(tmp.file("raw") + "/best.pt", torch::kCPU);
  EXPECT_FALSE(raw_ck.ema);
  EXPECT_EQ(raw_ck.config.train.ema_decay, 0);
  EXPECT_EQ(nmt::io::weights_digest(*raw_ck.model), nmt::io::weights_digest(*plain_ck.model));

  EXPECT_TRUE(contains(r.output, "moving average of the weights: train.ema_decay 0.9")) << r.output;
  auto ck = nmt::io::load_checkpoint(dir + "/best.pt", torch::kCPU);
  ASSERT_TRUE(ck.ema) << "best.pt holds no moving average";
  auto info = run_nmt("info -m " + dir);
  EXPECT_TRUE(contains(info.output, "moving average (train.ema_decay 0.9, used by translate) digest: ")) << info.output;
  EXPECT_NE(nmt::io::weights_digest(*ck.ema), nmt::io::weights_digest(*ck.model));

  // The same checkpoint with the average as its only weights, and with the trained ones only.
  const auto averaged = tmp.file("averaged"), trained = tmp.file("trained");
  fs::create_directories(averaged);
  fs::create_directories(trained);
  nmt::io::Checkpoint only = ck;
  only.model = ck.ema;
  only.ema = nullptr;
  nmt::io::save_checkpoint(averaged + "/best.pt", only, nullptr);
  only.model = ck.model;
  nmt::io::save_checkpoint(trained + "/best.pt", only, nullptr);
  const std::string args = " -i data/toy/valid.de --scores --threads 1";
  auto with_ema = run_nmt("translate -m " + dir + args);
  auto with_average = run_nmt("translate -m " + averaged + args);
  auto with_trained = run_nmt("translate -m " + trained + args);
  ASSERT_EQ(with_ema.exit_code, 0) << with_ema.output;
  EXPECT_TRUE(contains(with_ema.output, "translating with its moving average of the weights")) << with_ema.output;
  auto stdout_of = [](const std::string& out) {  // the scored lines (score TAB translation)
    std::string lines;
    std::istringstream in(out);
    for (std::string l; std::getline(in, l);)
      if (!l.empty() && l.find('\t') != std::string::npos && l[0] != '[') lines += l + "\n";
    return lines;
  };
  EXPECT_EQ(stdout_of(with_ema.output), stdout_of(with_average.output));
  EXPECT_NE(stdout_of(with_ema.output), stdout_of(with_trained.output));
  EXPECT_FALSE(stdout_of(with_ema.output).empty()) << with_ema.output;
}

}  // namespace

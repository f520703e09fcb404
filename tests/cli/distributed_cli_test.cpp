// `nmt train` as several data-parallel processes (c10d over loopback), end to end.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/io/checkpoint.h"
#include "nmt/cli/launch.h"
#include "support/test_util.h"

namespace {

using nmt::testing::contains;
using nmt::testing::run_nmt;
using nmt::testing::run_shell;
using nmt::testing::TempDir;
using nmt::cli::free_loopback_port;

// A toy run without early stop: exactly train.max_steps updates, one thread per process.
std::string toy(const std::string& dir) {
  return "train -c configs/toy_rnn.yaml --set train.model_dir=" + dir +
         " --set train.threads=1 --set train.target_ppl=0 --set train.dist_timeout=60";
}

// PyTorch DDP's contract: N processes with batch B make the update of one process that
// accumulates N batches (the gradient is normalised by the update's global token count).
TEST(DistributedCli, TwoProcessesMakeTheUpdatesOfOneAccumulatingTwoBatches) {
  TempDir tmp;
  const auto two = tmp.file("two"), one = tmp.file("one");
  auto r2 = run_nmt(toy(two) + " --set train.max_steps=12 --nproc 2");
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_TRUE(contains(r2.output, "data-parallel training: 2 processes")) << r2.output;
  const auto spm = two + "/spm.model";
  auto r1 = run_nmt(toy(one) + " --set train.max_steps=12 --set train.accum_steps=2 --set data.spm_src=" + spm +
                    " --set data.spm_tgt=" + spm);
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  auto a = nmt::io::load_checkpoint(two + "/last.pt", torch::kCPU);
  auto b = nmt::io::load_checkpoint(one + "/last.pt", torch::kCPU);
  EXPECT_EQ(a.state.step, 12);
  EXPECT_EQ(b.state.step, 12);
  EXPECT_EQ(a.state.epoch, b.state.epoch);
  EXPECT_EQ(a.state.batch_in_epoch, b.state.batch_in_epoch);
  auto pb = b.model->named_parameters();
  double worst = 0;
  for (const auto& p : a.model->named_parameters())
    worst = std::max(worst, (p.value() - pb[p.key()]).abs().max().item<double>());
  EXPECT_LT(worst, 1e-5);
  // Only rank 0 logs to train.log.
  EXPECT_FALSE(contains(nmt::testing::read_text(two + "/train.log"), "[rank 1]"));

  // Rank 0's checkpoint resumes in one process.
  auto resumed = run_nmt("train --resume " + two + " --set train.max_steps=16");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "resuming " + two + " at step 12")) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "16 updates")) << resumed.output;
}

// A rank killed with SIGKILL: the other one must not hang; it exits non-zero, naming the lost rank.
TEST(DistributedCli, LosingARankIsALoudErrorNamingIt) {
  TempDir tmp;
  const std::string env = "WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
                          std::to_string(free_loopback_port());
  const std::string args = toy(tmp.file("run")) + " --set train.max_steps=100000 --set train.max_epochs=100000";
  auto r = run_shell(env + " RANK=0 LOCAL_RANK=0 \"$NMT\" " + args + " > " + tmp.file("rank0.log") +
                     " 2>&1 & p0=$!; " + env + " RANK=1 LOCAL_RANK=1 \"$NMT\" " + args +
                     " > /dev/null 2>&1 & p1=$!; "
                     "i=0; until grep -q \"step 20 \" " + tmp.file("run") + "/train.log 2>/dev/null; do "
                     "sleep 0.2; i=$((i+1)); [ $i -gt 600 ] && break; done; "
                     "kill -9 $p1; start=$(date +%s); wait $p0; echo \"rank0 exit $?\"; "
                     "echo \"after $(( $(date +%s) - start )) s\"; cat " + tmp.file("rank0.log"));
  EXPECT_TRUE(contains(r.output, "rank0 exit 1")) << r.output;
  EXPECT_TRUE(contains(r.output, "lost rank 1")) << r.output;
  EXPECT_FALSE(contains(r.output, "after 6")) << r.output;  // well within train.dist_timeout (60 s)
}

// SIGTERM to the `--nproc` launcher reaches every rank once: they stop after the same update,
// rank 0 writes last.pt, and the launcher exits 143 as one process would.
TEST(DistributedCli, SignalToTheLauncherStopsAllRanksWithACheckpoint) {
  TempDir tmp;
  const auto dir = tmp.file("run");
  auto r = run_shell("\"$NMT\" " + toy(dir) + " --set train.max_steps=100000 --set train.max_epochs=100000 --nproc 2 > " +
                     tmp.file("out.log") + " 2>&1 & p=$!; i=0; until grep -q \"step 20 \" " + dir +
                     "/train.log 2>/dev/null; do sleep 0.2; i=$((i+1)); [ $i -gt 600 ] && break; done; "
                     "kill -TERM $p; wait $p; echo \"launcher exit $?\"; cat " + tmp.file("out.log"));
  EXPECT_TRUE(contains(r.output, "launcher exit 143")) << r.output;
  EXPECT_TRUE(contains(r.output, "interrupted at step")) << r.output;
  EXPECT_FALSE(contains(r.output, "lost rank")) << r.output;
  ASSERT_TRUE(std::filesystem::exists(dir + "/last.pt")) << r.output;
  auto resumed = run_nmt("train --resume " + dir + " --set train.max_steps=1");  // already past it: stops
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
}

TEST(DistributedCli, LauncherNamesTheRankThatFailed) {
  TempDir tmp;
  // Rank 1 cannot read a corpus that rank 0 can: simulate by a path relative to nothing.
  auto r = run_nmt(toy(tmp.file("run")) + " --set data.train_src=/nonexistent/train.de --nproc 2");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "/nonexistent/train.de")) << r.output;
  EXPECT_TRUE(contains(r.output, "exited with status 1")) << r.output;
}

TEST(DistributedCli, BadRendezvousSettingsAreClearErrors) {
  TempDir tmp;
  const std::string args = toy(tmp.file("run")) + " --set train.dist_timeout=3";
  auto bad_host = run_shell("WORLD_SIZE=2 RANK=1 MASTER_ADDR=nmt-no-such-host.invalid MASTER_PORT=" +
                            std::to_string(free_loopback_port()) + " \"$NMT\" " + args);
  EXPECT_EQ(bad_host.exit_code, 1) << bad_host.output;
  EXPECT_TRUE(contains(bad_host.output, "nmt-no-such-host.invalid")) << bad_host.output;
  auto bad_rank = run_shell("WORLD_SIZE=2 RANK=2 \"$NMT\" " + args);
  EXPECT_EQ(bad_rank.exit_code, 1) << bad_rank.output;
  EXPECT_TRUE(contains(bad_rank.output, "RANK")) << bad_rank.output;
  auto bad_port = run_shell("WORLD_SIZE=2 RANK=0 MASTER_PORT=http \"$NMT\" " + args);
  EXPECT_EQ(bad_port.exit_code, 1) << bad_port.output;
  EXPECT_TRUE(contains(bad_port.output, "MASTER_PORT")) << bad_port.output;
}

}  // namespace

namespace {

// `nmt preprocess` builds the SentencePiece model and the token file once; `nmt train` with the
// same config and its resumption reuse both instead of training/encoding again.
TEST(PreprocessCli, TrainingReusesThePreprocessedDirectory) {
  TempDir tmp;
  const auto dir = tmp.file("run");
  const std::string set = " --set train.model_dir=" + dir + " --set train.threads=1";
  auto pre = run_nmt("preprocess -c configs/toy_rnn.yaml" + set);
  ASSERT_EQ(pre.exit_code, 0) << pre.output;
  EXPECT_TRUE(contains(pre.output, "kept 50 of 50 pairs")) << pre.output;
  std::string token_file;
  for (const auto& f : std::filesystem::directory_iterator(dir))
    if (f.path().extension() == ".tok") token_file = f.path().string();
  ASSERT_FALSE(token_file.empty());
  auto train = run_nmt("train -c configs/toy_rnn.yaml" + set + " --set train.max_steps=3");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_FALSE(contains(train.output, "training SentencePiece")) << train.output;
  EXPECT_TRUE(contains(train.output, "training corpus: reusing " + token_file)) << train.output;
  // `nmt info` tells the state and a digest of the weights, which change with training.
  auto info3 = run_nmt("info -m " + dir + "/last.pt");
  ASSERT_EQ(info3.exit_code, 0) << info3.output;
  EXPECT_TRUE(contains(info3.output, "training: step 3,")) << info3.output;
  EXPECT_EQ(run_nmt("info -m " + dir + "/last.pt").output, info3.output);
  auto resumed = run_nmt("train --resume " + dir + " --set train.max_steps=5");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(contains(resumed.output, "training corpus: reusing " + token_file)) << resumed.output;
  auto info5 = run_nmt("info -m " + dir + "/last.pt");
  EXPECT_TRUE(contains(info5.output, "training: step 5,")) << info5.output;
  auto digest = [](const std::string& out) { return out.substr(out.find("weights digest: ")); };
  EXPECT_NE(digest(info5.output), digest(info3.output));
  // Another config in the same directory is a new run: the model is trained anew, not reused.
  auto other = run_nmt("preprocess -c configs/toy_rnn.yaml" + set + " --set data.max_len=20");
  ASSERT_EQ(other.exit_code, 0) << other.output;
  EXPECT_FALSE(std::filesystem::exists(token_file));  // replaced by the new inputs' token file
}

}  // namespace

// Fault tolerance end to end: a changed checkpoint byte, a checkpoint write that fails
// (`ulimit -f`), SIGTERM/SIGINT mid-run (and an exact resume after it), and a second run on a
// locked model directory.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/io/checkpoint.h"
#include "nmt/train/run_guard.h"
#include "support/test_util.h"

namespace {

using nmt::testing::contains;
using nmt::testing::read_text;
using nmt::testing::run_nmt;
using nmt::testing::run_shell;
using nmt::testing::TempDir;
using nmt::testing::write_text;
namespace fs = std::filesystem;

const std::string kToy = "train -c configs/toy_rnn.yaml --set train.threads=1 --set train.target_ppl=0 ";

/// A toy model trained for 3 updates, once for all tests of this file.
class FaultToleranceCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto r = run_nmt(kToy + "--set train.max_steps=3 --set train.model_dir=" + dir_->file("model"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  /// A fresh copy of the trained model directory.
  static std::string copy_model(const TempDir& into) {
    fs::copy(dir_->file("model"), into.file("m"), fs::copy_options::recursive);
    return into.file("m");
  }
  static bool has_temporary_file(const std::string& dir) {
    for (const auto& e : fs::directory_iterator(dir))
      if (contains(e.path().filename().string(), ".tmp.")) return true;
    return false;
  }
  static TempDir* dir_;
};
TempDir* FaultToleranceCli::dir_ = nullptr;

// A changed byte inside the stored SentencePiece model used to crash SentencePiece's normaliser
// (SIGSEGV); now the checksum is checked first.
TEST_F(FaultToleranceCli, ChangedCheckpointByteIsAClearErrorInTranslate) {
  TempDir tmp;
  const std::string m = copy_model(tmp);
  auto bytes = read_text(m + "/best.pt");
  const auto spm = read_text(m + "/spm.model");
  const size_t at = bytes.find(spm);
  ASSERT_NE(at, std::string::npos);
  bytes[at + spm.size() / 2] ^= 0x5a;
  write_text(m + "/best.pt", bytes);
  auto r = run_nmt("translate -m " + m + " -i data/toy/valid.de");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, m + "/best.pt: invalid nmt checkpoint: checksum mismatch in part 'src_spm'"))
      << r.output;
}

// Writing past `ulimit -f` (EFBIG; SIGXFSZ ignored) stops training with a message naming the
// file; the previous last.pt is untouched and still loads, and no temporary file is left.
TEST_F(FaultToleranceCli, FailedCheckpointWriteStopsTrainingCleanly) {
  TempDir tmp;
  const std::string m = copy_model(tmp);
  const auto before = read_text(m + "/last.pt");
  // A quarter of the checkpoint's size or less, whether the shell counts 512- or 1024-byte blocks.
  const std::string blocks = std::to_string(before.size() / 4096);
  auto r = run_shell("ulimit -f " + blocks + "; exec \"$NMT\" train --resume " + m +
                     " --set train.max_steps=5 --set train.threads=1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "error: " + m + "/last.pt: write failed (File too large)")) << r.output;
  EXPECT_EQ(read_text(m + "/last.pt"), before);
  EXPECT_EQ(nmt::io::load_checkpoint(m + "/last.pt", torch::kCPU).state.step, 3);
  EXPECT_FALSE(has_temporary_file(m));
  EXPECT_FALSE(fs::exists(m + "/lock"));
}

// The first SIGTERM (SIGINT) finishes the update, writes last.pt, says how to resume and exits
// 143 (130); the run then resumes from that checkpoint.
TEST_F(FaultToleranceCli, SignalStopsAfterTheUpdateWithACheckpoint) {
  for (const auto& [name, code] : {std::pair<std::string, int>{"TERM", 143}, {"INT", 130}}) {
    TempDir tmp;
    const std::string m = tmp.file("m"), log = tmp.file("log");
    auto r = run_shell("\"$NMT\" " + kToy + "--set train.log_every=1 --set train.model_dir=" + m + " > " + log +
                       " 2>&1 & pid=$!\n"
                       "i=0; while ! grep -q 'step 3 ' " + log + " && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done\n"
                       "kill -" + name + " $pid; wait $pid; echo \"exit status $?\"");
    const std::string out = read_text(log);
    EXPECT_TRUE(contains(r.output, "exit status " + std::to_string(code))) << name << ": " << r.output << out;
    EXPECT_TRUE(contains(out, "SIG" + name + " received: interrupted at step ")) << out;
    EXPECT_TRUE(contains(out, "resume with: nmt train --resume " + m)) << out;
    ASSERT_TRUE(fs::exists(m + "/last.pt")) << out;
    EXPECT_FALSE(fs::exists(m + "/lock"));
    const int64_t step = nmt::io::load_checkpoint(m + "/last.pt", torch::kCPU).state.step;
    EXPECT_GE(step, 3);
    auto resumed = run_nmt("train --resume " + m + " --set train.threads=1 --set train.max_steps=" + std::to_string(step + 2));
    EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_TRUE(contains(resumed.output, "at step " + std::to_string(step))) << resumed.output;
  }
}

// Issue 13: a SIGINT mid-run (between validations; dropout on, plateau schedule) writes a
// checkpoint from which the resumed run ends bitwise where the uninterrupted run ends: the same
// weights digest (nmt info) in last.pt and best.pt, the same step and best validation.
TEST_F(FaultToleranceCli, RunInterruptedBySigintResumesExactly) {
  TempDir tmp;
  const std::string run = kToy + "--set model.dropout=0.3 --set train.lr_schedule=plateau --set train.lr_patience=1 "
                                 "--set train.valid_every=40 --set train.max_steps=120 --set train.log_every=1 ";
  const std::string whole = tmp.file("whole"), part = tmp.file("part"), log = tmp.file("log");
  auto w = run_nmt(run + "--set train.model_dir=" + whole);
  ASSERT_EQ(w.exit_code, 0) << w.output;
  auto r = run_shell("\"$NMT\" " + run + "--set train.model_dir=" + part + " > " + log + " 2>&1 & pid=$!\n"
                     "i=0; while ! grep -q 'step 5 ' " + log + " && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n"
                     "kill -INT $pid; wait $pid; echo \"exit status $?\"");
  ASSERT_TRUE(contains(r.output, "exit status 130")) << r.output << read_text(log);
  const int64_t stopped = nmt::io::load_checkpoint(part + "/last.pt", torch::kCPU).state.step;
  ASSERT_GE(stopped, 5);
  ASSERT_LT(stopped, 120) << "the signal came too late to interrupt the run";
  auto resumed = run_nmt("train --resume " + part + " --set train.threads=1");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  auto digest = [](const std::string& file) {
    const auto out = run_nmt("info -m " + file).output;
    const size_t at = out.find("weights digest: ");
    return at == std::string::npos ? "none in: " + out : out.substr(at, 32);
  };
  EXPECT_EQ(digest(part + "/last.pt"), digest(whole + "/last.pt")) << "interrupted at step " << stopped;
  EXPECT_EQ(digest(part + "/best.pt"), digest(whole + "/best.pt")) << "interrupted at step " << stopped;
  const auto a = nmt::io::load_checkpoint(whole + "/last.pt", torch::kCPU).state;
  const auto b = nmt::io::load_checkpoint(part + "/last.pt", torch::kCPU).state;
  EXPECT_EQ(b.step, 120);
  EXPECT_EQ(b.step, a.step);
  EXPECT_EQ(b.best_metric, a.best_metric);
  EXPECT_EQ(b.best_step, a.best_step);
  EXPECT_EQ(b.lr_base, a.lr_base);
}

TEST_F(FaultToleranceCli, SecondRunOnALockedModelDirIsRefused) {
  TempDir tmp;
  const std::string m = copy_model(tmp);
  const auto before = read_text(m + "/last.pt");
  {
    nmt::train::RunLock lock(m);  // this test process is "the other run"
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    auto r = run_nmt("train --resume " + m + " --set train.max_steps=5 --set train.threads=1");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, m + " is in use by another training run (pid " + std::to_string(getpid()) +
                                       " on host " + host)) << r.output;
    EXPECT_EQ(read_text(m + "/last.pt"), before);
  }
  EXPECT_FALSE(fs::exists(m + "/lock"));
}

// A lock and temporary files left by a killed run (their pid is gone) are taken over and removed.
TEST_F(FaultToleranceCli, StaleLockAndTemporaryFilesOfAKilledRunAreCleanedUp) {
  TempDir tmp;
  const std::string m = copy_model(tmp);
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  write_text(m + "/lock", std::to_string(dead) + " thishost\n");
  write_text(m + "/last.pt.tmp." + std::to_string(dead), "partial");
  auto r = run_nmt("train --resume " + m + " --set train.max_steps=4 --set train.threads=1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "taking over a stale lock left by pid " + std::to_string(dead))) << r.output;
  EXPECT_TRUE(contains(r.output, "removed " + m + "/last.pt.tmp." + std::to_string(dead))) << r.output;
  EXPECT_FALSE(has_temporary_file(m));
  EXPECT_FALSE(fs::exists(m + "/lock"));
}

}  // namespace

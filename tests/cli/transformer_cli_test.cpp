// End-to-end tests of the Transformer through the nmt program: a tiny Transformer memorises the
// toy corpus (train -> translate -> eval), and `nmt bench` reports every figure it promises, for
// the Transformer and ConvS2S.
#include <filesystem>
#include <regex>

#include <gtest/gtest.h>

#include "nmt/openmp_env.h"
#include "support/test_util.h"

namespace {

using nmt::testing::bleu_of;
using nmt::testing::contains;
using nmt::testing::run_nmt;
using nmt::testing::run_shell;
using nmt::testing::TempDir;
namespace fs = std::filesystem;

TEST(TransformerCli, TinyTransformerMemorisesTheToyCorpus) {
  TempDir dir;
  const std::string model = dir.file("model");
  auto train = run_nmt("train -c configs/toy_transformer.yaml --set train.model_dir=" + model +
                       " --set train.threads=1" + nmt::testing::learning_overrides());
  ASSERT_EQ(train.exit_code, 0) << train.output;
  // Trained until the perplexity on the training corpus is at most 1.05 (train.target_ppl);
  // the epochs needed and the BLEU per CPU are in attention_cli_test.cpp (95 epochs, BLEU 98-100 on AMD EPYC).
  EXPECT_TRUE(contains(train.output, "target perplexity reached")) << train.output;
  EXPECT_TRUE(fs::exists(fs::path(model) / "best.pt"));
  auto tr = run_nmt("translate -m " + model + " -i data/toy/train.de -o " + dir.file("train.hyp"));
  ASSERT_EQ(tr.exit_code, 0) << tr.output;
  auto ev = run_nmt("eval --hyp " + dir.file("train.hyp") + " --ref data/toy/train.en");
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  EXPECT_GE(bleu_of(ev.output), 90.0) << ev.output << "\ntraining log:\n" << train.output;
}

struct BenchCase {
  const char* config;
  const char* model_type;  ///< as the bench names it
  const char* precision = "fp32";  ///< train.precision
};

class BenchCli : public ::testing::TestWithParam<BenchCase> {};

TEST_P(BenchCli, ReportsSpeedFlopsMemoryAndProfile) {
  TempDir dir;
  // Without the OpenMP and OpenBLAS variables (ctest sets OMP_WAIT_POLICY), as a user runs it:
  // the front end sets them before it loads the model library, and bench reports what the
  // process runs with.
  auto r = run_shell(std::string("env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u OPENBLAS_THREAD_TIMEOUT \"$NMT\" bench -c ") +
                     GetParam().config +
                     " --work-dir " + dir.file("work") +
                     " --threads 1 --warmup 1 --steps 2 --profile-steps 1 --sentences 4 --beam 2 --top 5" +
                     " --set train.precision=" + GetParam().precision);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, std::string("(") + GetParam().model_type + ", ")) << r.output;
  EXPECT_TRUE(contains(r.output, std::string(" model=") + GetParam().model_type + " ")) << r.output;
  const std::string precision = GetParam().precision;
  for (const std::string& field : std::vector<std::string>{"CPU: ", "GEMM ceilings (at::mm", "GFLOP/s, bf16 ", "precision: train.precision",
                                  "target tokens/s", "MFLOP per target token", "of the " + precision + " GEMM ceiling",
                                  "sentences/s", "peak resident memory", "self CPU time", " precision=" + precision,
                                  std::string("OpenMP: OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=") + nmt::kOpenMpSpinCount,
                                  std::string("OPENBLAS_THREAD_TIMEOUT=") + nmt::kOpenBlasThreadTimeout})
    EXPECT_NE(r.output.find(field), std::string::npos) << "no '" << field << "' in:\n" << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("train_mflop_per_tok=([0-9.]+)"))) << r.output;
  EXPECT_GT(std::stod(m[1]), 0.0) << "the profiler counted no matrix-product FLOPs:\n" << r.output;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("decode_sent_s=([0-9.]+)"))) << r.output;
  EXPECT_GT(std::stod(m[1]), 0.0);
  EXPECT_TRUE(std::regex_search(r.output, std::regex("aten::(addmm|mm|bmm)"))) << r.output;
}

TEST(BenchShapes, ListsTheInputShapesOfTrainingAndDecodingOperators) {
  TempDir dir;
  auto r = run_shell(std::string("\"$NMT\" bench -c configs/toy_transformer.yaml --work-dir ") + dir.file("work") +
                     " --threads 1 --warmup 0 --steps 1 --profile-steps 1 --sentences 3 --profile-sentences 2 --beam 2"
                     " --top 4 --shapes 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const std::string& what : {std::string("1 training updates"), std::string("translating the first 2 of those sentences")}) {
    const auto at = r.output.find("input shapes of the top 4 operators of " + what);
    ASSERT_NE(at, std::string::npos) << "no shapes for " << what << " in:\n" << r.output;
    // The first listed operator, then at least one line "  self-ms  calls  [shape], ..." under it.
    EXPECT_TRUE(std::regex_search(r.output.substr(at), std::regex("\n  aten::[a-z_]+ \\([0-9.]+ ms\\)\n +[0-9.]+ +[0-9]+  \\[")))
        << r.output.substr(at);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, BenchCli,
                         ::testing::Values(BenchCase{"configs/toy_transformer.yaml", "transformer"},
                                           BenchCase{"configs/toy_convs2s.yaml", "convs2s"},
                                           BenchCase{"configs/toy_transformer.yaml", "transformer", "bf16"}),
                         [](const auto& info) {
                           return std::string(info.param.model_type) + "_" + info.param.precision;
                         });

}  // namespace

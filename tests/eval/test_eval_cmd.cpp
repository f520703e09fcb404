// `nmt eval` end to end (in-process): options, output formats and error messages.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <sstream>

#include "support/test_util.h"
#include "nmt/cli/eval_cmd.h"

using nmt::cli::EvalOptions;

namespace {

std::string write_temp(const std::string& name, const std::string& content) {
  // ctest runs each test in its own process, several at once: a directory of the process's own
  // keeps tests from overwriting one another's files.
  static const nmt::testing::TempDir dir;
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

struct Files {
  std::string hyp = write_temp("hyp.txt",
                               "The dog bit the man.\nIt wasn't surprising.\nThe man had just bitten him.\n");
  std::string ref1 = write_temp("ref1.txt",
                                "The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n");
  std::string ref2 = write_temp("ref2.txt",
                                "The dog had bit the man.\nNo one was surprised.\nThe man had bitten the dog.\n");
};

std::string run(const EvalOptions& options, const nmt::cli::TranslateFn& translate = {}) {
  std::ostringstream out;
  nmt::cli::run_eval(options, translate, out);
  return out.str();
}

std::string error_of(const EvalOptions& options) {
  try {
    run(options);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

const std::string kVersion = "nmt-" NMT_VERSION;

}  // namespace

TEST(EvalCmd, DefaultTextOutputIsSacrebleuLike) {
  Files f;
  EvalOptions o;
  o.hyp_files = {f.hyp};
  o.ref_files = {f.ref1, f.ref2};
  EXPECT_EQ(run(o),
            "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)\n"
            "nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:" + kVersion + "\n");
  o.score_only = true;
  o.tokenize = "intl";
  EXPECT_EQ(run(o), "43.92\n");
}

TEST(EvalCmd, ChrfAndChrfPlusPlus) {
  Files f;
  EvalOptions o;
  o.hyp_files = {f.hyp};
  o.ref_files = {f.ref1};
  o.metrics = {"chrf", "bleu"};
  o.chrf_word_order = 2;
  const std::string out = run(o);
  EXPECT_EQ(out.find("BLEU = "), 0u);  // sacreBLEU's metric order
  EXPECT_NE(out.find("\nchrF2++ = "), std::string::npos);
  EXPECT_NE(out.find("nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:" + kVersion), std::string::npos);
}

TEST(EvalCmd, JsonWithConfidence) {
  Files f;
  EvalOptions o;
  o.hyp_files = {f.hyp};
  o.ref_files = {f.ref1, f.ref2};
  o.format = "json";
  o.confidence = true;
  const std::string out = run(o);
  EXPECT_EQ(out.find("{\n \"name\": \"BLEU\",\n \"score\": 48.53,\n \"signature\": "
                     "\"nrefs:2|bs:1000|seed:12345|case:mixed|eff:no|tok:13a|smooth:exp|version:"),
            0u) << out;
  EXPECT_NE(out.find("\"confidence\": \"μ = "), std::string::npos);
}

TEST(EvalCmd, SentenceLevelUsesEffectiveOrder) {
  const auto hyp = write_temp("s_hyp.txt", "a test\ntest\n");
  const auto ref = write_temp("s_ref.txt", "a test\na test\n");
  EvalOptions o;
  o.hyp_files = {hyp};
  o.ref_files = {ref};
  o.sentence_level = true;
  o.score_only = true;
  // Hand-computed: "test" against "a test" has only a unigram order, so with effective order
  // BLEU = BP * p1 = exp(1 - 2/1) * 100 = 36.79 (sacreBLEU's test_effective_order: 0.3679).
  EXPECT_EQ(run(o), "100.00\n36.79\n");
  o.score_only = false;
  EXPECT_NE(run(o).find("eff:yes"), std::string::npos);
}

TEST(EvalCmd, PairedBootstrap) {
  Files f;
  const auto worse = write_temp("worse.txt", "The cat.\nIt is.\nA man.\n");
  EvalOptions o;
  o.hyp_files = {worse};
  o.hyp2_file = f.hyp;
  o.ref_files = {f.ref1, f.ref2};
  o.paired_bs = true;
  o.metrics = {"bleu", "chrf"};
  const std::string out = run(o);
  EXPECT_NE(out.find("Baseline: " + worse), std::string::npos) << out;
  EXPECT_NE(out.find("(p = "), std::string::npos) << out;
  EXPECT_NE(out.find("BLEU: nrefs:2|bs:1000|seed:12345|"), std::string::npos) << out;
  EXPECT_EQ(run(o), out);  // seeded: reproducible
  o.format = "json";
  EXPECT_NE(run(o).find("\"test\": \"paired-bs\""), std::string::npos);
}

TEST(EvalCmd, ModelTranslationIsScored) {
  Files f;
  EvalOptions o;
  o.model_dir = "runs/m";
  o.src_file = "src.txt";
  o.ref_files = {f.ref1, f.ref2};
  o.score_only = true;
  std::string seen;
  const auto translate = [&](const std::string& model, const std::string& src) {
    seen = model + "|" + src;
    return std::vector<std::string>{"The dog bit the man.", "It wasn't surprising.",
                                    "The man had just bitten him."};
  };
  EXPECT_EQ(run(o, translate), "48.53\n");
  EXPECT_EQ(seen, "runs/m|src.txt");
}

TEST(EvalCmd, EmptyHypothesisFileScoresZero) {
  Files f;
  EvalOptions o;
  o.hyp_files = {write_temp("empty.txt", "")};
  o.ref_files = {f.ref1};
  EXPECT_EQ(run(o).substr(0, 55), "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 h");
}

TEST(EvalCmd, ErrorsNameFilesAndCounts) {
  Files f;
  EvalOptions o;
  o.hyp_files = {write_temp("two.txt", "a\nb\n")};
  o.ref_files = {f.ref1};
  const std::string mismatch = error_of(o);
  EXPECT_NE(mismatch.find(o.hyp_files[0]), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find(f.ref1), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find("has 2 lines"), std::string::npos) << mismatch;
  EXPECT_NE(mismatch.find("has 3 lines"), std::string::npos) << mismatch;

  o.hyp_files = {write_temp("bad.txt", "ok\nok\n\xfe\n")};
  const std::string utf8 = error_of(o);
  EXPECT_NE(utf8.find(o.hyp_files[0]), std::string::npos) << utf8;
  EXPECT_NE(utf8.find("line 3"), std::string::npos) << utf8;

  o.hyp_files = {"/nonexistent/hyp.txt"};
  EXPECT_NE(error_of(o).find("/nonexistent/hyp.txt"), std::string::npos);

  o.hyp_files = {f.hyp};
  o.paired_bs = true;
  EXPECT_NE(error_of(o).find("--paired-bs"), std::string::npos);
}

TEST(EvalCmd, CommandLineParsing) {
  Files f;
  CLI::App app{"nmt"};
  nmt::cli::setup_eval(app, {});
  const std::vector<std::string> args = {"nmt", "eval", "--hyp", f.hyp, "--ref", f.ref1, f.ref2,
                                         "--smooth-method", "floor", "--smooth-value", "0.5",
                                         "--tokenize", "intl", "--lowercase", "--metrics", "bleu"};
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  testing::internal::CaptureStdout();
  app.parse(static_cast<int>(argv.size()), argv.data());
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("nrefs:2|case:lc|eff:no|tok:intl|smooth:floor[0.50]|version:"), std::string::npos)
      << out;
}

TEST(EvalCmd, EmptyReferenceFileWithPairedTestIsAnError) {
  EvalOptions o;
  o.hyp_files = {write_temp("e1.txt", "")};
  o.hyp2_file = write_temp("e2.txt", "");
  o.ref_files = {write_temp("eref.txt", "")};
  o.paired_bs = true;
  EXPECT_THROW(run(o), std::runtime_error);
  o.paired_bs = false;
  o.score_only = true;
  EXPECT_EQ(run(o), "== " + o.hyp_files[0] + " ==\n0.00\n== " + o.hyp2_file + " ==\n0.00\n");
}

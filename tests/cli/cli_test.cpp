// End-to-end tests of the nmt program: train -> translate -> eval on the toy corpus, and the
// errors users meet most (missing file, mismatched corpora, unknown config key, corrupt model).
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "support/child.h"
#include "support/test_util.h"
#include "support/toy_model.h"

namespace {

using nmt::testing::bleu_of;
using nmt::testing::contains;
using nmt::testing::lines_of;
using nmt::testing::read_text;
using nmt::testing::run_nmt;
using nmt::testing::shared_toy_dir;
using nmt::testing::toy_training;
using nmt::testing::TempDir;
using nmt::testing::write_text;
namespace fs = std::filesystem;

// The fixture's set-up test (ctest runs it once before every ToyModel test; it is filtered out of
// the tests ctest discovers): trains the toy RNN into $NMT_TEST_TOY_RNN_DIR, replacing any old one,
// and keeps the training output beside it.
TEST(ToyModelFixture, TrainsTheSharedToyModel) {
  const std::string dir = shared_toy_dir();
  if (dir.empty()) GTEST_SKIP() << "NMT_TEST_TOY_RNN_DIR is not set (ctest sets it)";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto r = run_nmt(toy_training(dir + "/model"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  write_text(dir + "/train.out", r.output);
}

/// Trains the toy RNN once for all tests of this file, or uses the one the ctest fixture trained.
class ToyModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    toy_ = new nmt::testing::ToyRnn();
    train_log_ = &toy_->train_log();
    ASSERT_TRUE(toy_->ok()) << toy_->error();
  }
  static void TearDownTestSuite() {
    delete toy_;
    toy_ = nullptr;
  }
  static std::string model() { return toy_->model(); }
  /// A file in this test's own scratch directory.
  std::string file(const std::string& name) const { return scratch_.file(name); }
  TempDir scratch_;
  static nmt::testing::ToyRnn* toy_;
  static const std::string* train_log_;
};
nmt::testing::ToyRnn* ToyModel::toy_ = nullptr;
const std::string* ToyModel::train_log_ = nullptr;

TEST_F(ToyModel, TrainingWritesModelDirectoryAndLogsProgress) {
  for (const char* f : {"best.pt", "last.pt", "config.yaml", "spm.model", "train.log"})
    EXPECT_TRUE(fs::exists(fs::path(model()) / f)) << f;
  // The learning curves, drawn at each validation (a build with Cairo).
  const auto png = read_text(model() + "/curves.png");
  EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n") << "curves.png is not a PNG file";
  EXPECT_EQ(nmt::testing::png_size(png).first, 880);
  EXPECT_EQ(read_text(model() + "/curves.svg").rfind("<?xml", 0), 0u);
  for (const char* field : {"step ", "epoch ", "loss ", "ppl ", "lr ", "tgt tok/s", "elapsed ", "ETA "})
    EXPECT_TRUE(contains(*train_log_, field)) << "log lacks '" << field << "'";
  EXPECT_TRUE(contains(*train_log_, "validation step"));
  // The resolved config names every section.
  auto saved = read_text(model() + "/config.yaml");
  for (const char* section : {"data:", "model:", "train:", "search:"}) EXPECT_TRUE(contains(saved, section));
}

// The toy config trains until the perplexity on its training corpus is at most 1.05
// (train.target_ppl), within a cap of 200 epochs. Measured with scripts/numeric_spread.sh (epochs
// to the target / training-corpus BLEU): 58 / 96.35 native, 56 / 97.56 with OpenBLAS's Sandybridge
// kernels, 57 / 97.99 with ATen's default (non-AVX) kernels (AMD EPYC; attention_cli_test.cpp). An untrained model, or one trained
// with a learning rate of 1e-9, stays near perplexity 100 and BLEU 0, and fails both checks.
TEST_F(ToyModel, MemorisesTheToyCorpusEndToEnd) {
  EXPECT_TRUE(contains(*train_log_, "target perplexity reached")) << *train_log_;
  auto tr = run_nmt("translate -m " + model() + " -i data/toy/train.de -o " + file("train.hyp"));
  ASSERT_EQ(tr.exit_code, 0) << tr.output;
  auto ev = run_nmt("eval --hyp " + file("train.hyp") + " --ref data/toy/train.en");
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  EXPECT_GE(bleu_of(ev.output), 90.0) << ev.output << "\ntraining log:\n" << *train_log_;
  EXPECT_TRUE(contains(ev.output, "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")) << ev.output;
  // eval -m translates and scores in one go, with the same result.
  auto ev2 = run_nmt("eval -m " + model() + " --src data/toy/train.de --ref data/toy/train.en");
  ASSERT_EQ(ev2.exit_code, 0) << ev2.output;
  EXPECT_DOUBLE_EQ(bleu_of(ev2.output), bleu_of(ev.output));
}

// translate --precision int8 (dynamic quantisation of the linear layers): the memorised corpus
// still comes out, within a few BLEU of fp32 decoding; the log names the precision and engine.
TEST_F(ToyModel, Int8DecodingKeepsTheTranslations) {
  auto bleu_at = [&](const std::string& precision, std::string* log) {
    auto tr = run_nmt("translate -m " + model() + " --threads 1 -i data/toy/train.de -o " + file(precision) +
                      " --precision " + precision);
    EXPECT_EQ(tr.exit_code, 0) << tr.output;
    if (log) *log = tr.output;
    return bleu_of(run_nmt("eval --hyp " + file(precision) + " --ref data/toy/train.en").output);
  };
  std::string log;
  const double int8 = bleu_at("int8", &log), fp32 = bleu_at("fp32", nullptr);
  EXPECT_TRUE(contains(log, "precision: --precision: int8, linear layers dynamically quantised (engine ")) << log;
  EXPECT_GE(int8, fp32 - 5.0) << "int8 " << int8 << " vs fp32 " << fp32;
  EXPECT_GE(fp32, 90.0);
  auto bad = run_nmt("translate -m " + model() + " --precision int4 -i data/toy/valid.de");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(contains(bad.output, "int8")) << bad.output;  // the choices are listed
}

TEST_F(ToyModel, TranslatesStdinToStdoutAndGreedyEqualsBeamOne) {
  auto a = run_nmt("translate -m " + model() + " --beam 1 < data/toy/valid.de");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  auto b = run_nmt("translate -m " + model() + " --beam 1 -i data/toy/valid.de");
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(std::count(a.output.begin(), a.output.end(), '\n'), 8);
}

// n-best lists (Moses format) come from one beam search: sorted by score, K distinct entries,
// the first the 1-best translation; --scores prefixes the 1-best with that score.
TEST_F(ToyModel, NBestListsAreSortedDistinctAndStartWithTheOneBest) {
  const std::string base = "translate -m " + model() + " --beam 4 -i data/toy/valid.de";
  auto one = run_nmt(base);
  auto nbest = run_nmt(base + " --n-best 4");
  auto scored = run_nmt(base + " --scores");
  ASSERT_EQ(nbest.exit_code, 0) << nbest.output;
  ASSERT_EQ(scored.exit_code, 0) << scored.output;
  std::vector<std::string> best, scored_lines;
  std::istringstream one_in(one.output), scored_in(scored.output), in(nbest.output);
  for (std::string l; std::getline(one_in, l);) best.push_back(l);
  for (std::string l; std::getline(scored_in, l);) scored_lines.push_back(l);
  ASSERT_EQ(best.size(), 8u);
  ASSERT_EQ(scored_lines.size(), 8u);
  std::map<size_t, std::vector<std::pair<std::string, double>>> lists;  // sentence -> (hyp + features, score)
  const std::regex moses(R"(^([0-9]+) \|\|\| (.*) \|\|\| (LogProb= \S+ Length= [0-9]+) \|\|\| (\S+)$)");
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(l, m, moses)) << l;
    lists[std::stoul(m[1])].emplace_back(m[2].str() + " | " + m[3].str(), std::stod(m[4]));
  }
  ASSERT_EQ(lists.size(), 8u);
  for (const auto& [i, list] : lists) {
    ASSERT_EQ(list.size(), 4u) << i;
    EXPECT_EQ(list.front().first.substr(0, list.front().first.find(" | ")), best[i]) << i;
    std::set<std::string> distinct;
    for (size_t k = 0; k < list.size(); ++k) {
      distinct.insert(list[k].first);
      if (k > 0) EXPECT_GE(list[k - 1].second, list[k].second) << i;
    }
    EXPECT_EQ(distinct.size(), 4u) << i;
    const auto tab = scored_lines[i].find('\t');
    ASSERT_NE(tab, std::string::npos) << scored_lines[i];
    EXPECT_EQ(scored_lines[i].substr(tab + 1), best[i]);
    EXPECT_NEAR(std::stod(scored_lines[i].substr(0, tab)), list.front().second, 1e-5);
  }
  auto too_many = run_nmt(base + " --n-best 5");
  EXPECT_NE(too_many.exit_code, 0);
  EXPECT_TRUE(contains(too_many.output, "--n-best 5 is larger than the beam (4)")) << too_many.output;
}

// An ensemble of the model with itself (any weights) gives the model's own translations and
// scores; a model with another vocabulary, or weights that do not match, are clear errors.
TEST_F(ToyModel, AnEnsembleOfTheModelWithItselfTranslatesAsTheModelAlone) {
  const std::string base = "translate -i data/toy/valid.de --beam 3 --scores -m " + model();
  auto alone = run_nmt(base);
  auto twice = run_nmt(base + " -m " + model() + " --weights 1,2");
  ASSERT_EQ(alone.exit_code, 0) << alone.output;
  ASSERT_EQ(twice.exit_code, 0) << twice.output;
  std::istringstream a(alone.output), b(twice.output);
  size_t lines = 0;
  for (std::string la, lb; std::getline(a, la);) {
    ASSERT_TRUE(std::getline(b, lb)) << lines;
    const auto ta = la.find('\t'), tb = lb.find('\t');
    ASSERT_NE(ta, std::string::npos) << la;
    ASSERT_NE(tb, std::string::npos) << lb;
    EXPECT_EQ(la.substr(ta + 1), lb.substr(tb + 1)) << lines;
    EXPECT_NEAR(std::stod(la.substr(0, ta)), std::stod(lb.substr(0, tb)), 1e-4) << lines;
    ++lines;
  }
  EXPECT_EQ(lines, 8u);

  auto weights = run_nmt(base + " -m " + model() + " --weights 1,2,3");
  EXPECT_NE(weights.exit_code, 0);
  EXPECT_TRUE(contains(weights.output, "--weights gives 3 weights for 2 models")) << weights.output;

  const std::string other = file("other_vocab");
  auto r = run_nmt("train -c configs/toy_rnn.yaml --set data.vocab_size=100 --set train.max_steps=1 --set train.threads=1 "
                   "--set train.model_dir=" + other);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto mixed = run_nmt(base + " -m " + other);
  EXPECT_NE(mixed.exit_code, 0);
  EXPECT_TRUE(contains(mixed.output, other + ": its target vocabulary differs from that of " + model())) << mixed.output;
}

// On a pipe that stays open, `translate` answers each line before the next one is written (and
// before the end of input), with the translation it gives the line in a whole file.
TEST_F(ToyModel, AnswersLineByLineOnAnInteractivePipe) {
  const auto lines = lines_of(read_text(nmt::testing::source_path("data/toy/valid.de")));
  auto whole = run_nmt("translate -m " + model() + " -i data/toy/valid.de");
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  const auto expected = lines_of(whole.output);
  ASSERT_EQ(expected.size(), lines.size());

  nmt::testing::Child child({NMT_BINARY, "translate", "-m", model(), "--threads", "1"});
  for (size_t i = 0; i < 3; ++i) {
    child.write_line(lines[i]);
    const auto answer = child.read_line(/*timeout_s=*/120);  // stdin still open
    ASSERT_TRUE(answer.has_value()) << "no answer to line " << i + 1 << " within 120 s";
    EXPECT_EQ(*answer, expected[i]) << "line " << i + 1;
  }
  child.close_input();
  EXPECT_FALSE(child.read_line(60).has_value());  // nothing more: the end of its output
  EXPECT_EQ(child.wait(), 0);
}

TEST_F(ToyModel, ResumeContinuesFromTheLastCheckpoint) {
  TempDir copy;
  fs::copy(model(), copy.file("m"), fs::copy_options::recursive);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*train_log_, m, std::regex("; ([0-9]+) updates in"))) << *train_log_;
  const int64_t steps = std::stoll(m[1]);
  // Ten more updates past the first run's end, with the target perplexity switched off.
  auto r = run_nmt("train --resume " + copy.file("m") + " --set train.target_ppl=0 --set train.max_steps=" +
                   std::to_string(steps + 10) + " --set train.threads=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "resuming " + copy.file("m") + " at step " + std::to_string(steps))) << r.output;
  EXPECT_TRUE(contains(r.output, "maximum steps reached; " + std::to_string(steps + 10) + " updates")) << r.output;
}

TEST_F(ToyModel, NewRunRefusesToOverwriteAnExistingModel) {
  auto before = read_text(model() + "/best.pt");
  auto r = run_nmt("train -c configs/toy_rnn.yaml --set train.model_dir=" + model());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "--resume")) << r.output;
  EXPECT_EQ(read_text(model() + "/best.pt"), before);
}

TEST_F(ToyModel, MissingInputFileIsAClearErrorAndWritesNothing) {
  auto r = run_nmt("translate -m " + model() + " -i /nonexistent/in.de -o " + file("none.out"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "/nonexistent/in.de")) << r.output;
  EXPECT_FALSE(fs::exists(file("none.out")));
}

TEST_F(ToyModel, CorruptCheckpointIsAClearErrorAndKeepsTheOldOutput) {
  TempDir bad;
  fs::create_directories(bad.file("m"));
  write_text(bad.file("m/best.pt"), read_text(model() + "/best.pt").substr(0, 5000));
  write_text(file("keep.out"), "previous output\n");
  auto r = run_nmt("translate -m " + bad.file("m") + " -i data/toy/valid.de -o " + file("keep.out"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, bad.file("m/best.pt"))) << r.output;
  EXPECT_EQ(read_text(file("keep.out")), "previous output\n");
}

TEST_F(ToyModel, StdinIsCheckedForUtf8AsFilesAre) {
  TempDir dir;
  write_text(dir.file("bad.de"), "ein Hund\n\xff\xfe kaputt\n");
  auto r = run_nmt("translate -m " + model() + " < " + dir.file("bad.de"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "standard input:2: invalid UTF-8")) << r.output;
}

TEST_F(ToyModel, OutputThroughASymlinkKeepsTheLinkAndThePermissions) {
  TempDir dir;
  write_text(dir.file("target.txt"), "old\n");
  fs::permissions(dir.file("target.txt"), fs::perms::owner_read | fs::perms::owner_write);
  fs::create_symlink(dir.file("target.txt"), dir.file("link.txt"));
  auto r = run_nmt("translate -m " + model() + " -i data/toy/valid.de -o " + dir.file("link.txt"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::is_symlink(dir.file("link.txt")));
  const auto written = read_text(dir.file("target.txt"));
  EXPECT_EQ(std::count(written.begin(), written.end(), '\n'), 8);
  EXPECT_EQ(fs::status(dir.file("target.txt")).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  for (const auto& entry : fs::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << entry.path();
}

TEST_F(ToyModel, BadBeamIsAPlainMessage) {
  auto r = run_nmt("translate -m " + model() + " --beam 0 -i data/toy/valid.de");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "must be a positive integer, got '0'")) << r.output;
}

TEST(Cli, DirectoriesAreNotTextFiles) {
  TempDir dir;
  auto hyp = run_nmt("eval --hyp " + dir.path().string() + " --ref data/toy/valid.en");
  EXPECT_NE(hyp.exit_code, 0);
  EXPECT_TRUE(contains(hyp.output, "is a directory")) << hyp.output;
  auto ref = run_nmt("eval --hyp data/toy/valid.en --ref " + dir.path().string());
  EXPECT_NE(ref.exit_code, 0);
  EXPECT_TRUE(contains(ref.output, "is a directory")) << ref.output;
  auto train = run_nmt("train -c configs/toy_rnn.yaml --set train.model_dir=" + dir.file("m") +
                       " --set data.valid_src=" + dir.path().string());
  EXPECT_NE(train.exit_code, 0);
  EXPECT_TRUE(contains(train.output, "is a directory")) << train.output;
}

TEST(Cli, BlankTrainingCorpusIsAClearError) {
  TempDir dir;
  write_text(dir.file("blank.de"), "  \n\t\n \n");
  write_text(dir.file("blank.en"), " \n \n\n");
  auto r = run_nmt("train -c configs/toy_rnn.yaml --set train.model_dir=" + dir.file("m") + " --set data.train_src=" +
                   dir.file("blank.de") + " --set data.train_tgt=" + dir.file("blank.en"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, dir.file("blank.de") + ": no line with text")) << r.output;
}

TEST(Cli, SetWithInvalidYamlNamesTheArgument) {
  auto r = run_nmt("train -c configs/toy_rnn.yaml --set 'model.dropout=[0.1,'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, "--set 'model.dropout=[0.1,'")) << r.output;
}

TEST(Cli, MismatchedLineCountsNameBothFilesAndCounts) {
  TempDir dir;
  write_text(dir.file("a.de"), "eins\nzwei\ndrei\n");
  write_text(dir.file("a.en"), "one\ntwo\n");
  auto r = run_nmt("train -c configs/toy_rnn.yaml --set train.model_dir=" + dir.file("m") +
                   " --set data.valid_src=" + dir.file("a.de") + " --set data.valid_tgt=" + dir.file("a.en"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, dir.file("a.de")) && contains(r.output, dir.file("a.en"))) << r.output;
  EXPECT_TRUE(contains(r.output, "3") && contains(r.output, "2")) << r.output;
  EXPECT_FALSE(fs::exists(dir.file("m/best.pt")));
}

TEST(Cli, UnknownConfigKeyIsAnErrorNamingFileAndKey) {
  TempDir dir;
  write_text(dir.file("c.yaml"), "model:\n  type: rnn\n  hiden_size: 64\n");
  auto r = run_nmt("train -c " + dir.file("c.yaml"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, dir.file("c.yaml"))) << r.output;
  EXPECT_TRUE(contains(r.output, "model.hiden_size")) << r.output;
  auto s = run_nmt("train -c configs/toy_rnn.yaml --set train.nonsense=1");
  EXPECT_NE(s.exit_code, 0);
  EXPECT_TRUE(contains(s.output, "train.nonsense")) << s.output;
}

TEST(Cli, EvalLineCountMismatchNamesBothFiles) {
  TempDir dir;
  write_text(dir.file("h.txt"), "a\nb\n");
  write_text(dir.file("r.txt"), "a\n");
  auto r = run_nmt("eval --hyp " + dir.file("h.txt") + " --ref " + dir.file("r.txt"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(contains(r.output, dir.file("h.txt")) && contains(r.output, dir.file("r.txt"))) << r.output;
}

TEST(Cli, VerboseFlagWorks) {
  for (const char* flag : {"-v", "--verbose"}) {
    auto r = run_nmt(std::string(flag) + " eval --hyp data/toy/valid.en --ref data/toy/valid.en");
    EXPECT_EQ(r.exit_code, 0) << flag << ": " << r.output;
    EXPECT_EQ(bleu_of(r.output), 100.0) << r.output;
  }
}

}  // namespace

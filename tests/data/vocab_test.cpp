// SentencePiece and LibTorch in one process: trains, loads, encodes and decodes through the
// dlopen'ed shim while libtorch_cpu (and its protobuf) is loaded and used.
#include "nmt/data/vocab.h"

#include <gtest/gtest.h>
#include <torch/types.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nmt/data/batch.h"

namespace fs = std::filesystem;
using nmt::data::SpmTrainOptions;
using nmt::data::Vocab;

namespace {

fs::path make_temp_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("nmt_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

const std::vector<std::string> kToyCorpus = {
    "Ein Hund läuft über die Wiese.",
    "Eine Katze schläft auf dem Sofa.",
    "Zwei Männer trinken Bier in einer Bar.",
    "Ein Mädchen spielt mit einem Ball.",
    "Die Frau öffnet die Tür.",
    "Der Junge isst einen grünen Apfel.",
    "Ein älterer Mann liest eine Zeitung.",
    "Kinder spielen Fußball auf der Straße.",
    "A dog runs across the meadow.",
    "A cat sleeps on the sofa.",
    "Two men drink beer in a bar.",
    "A girl plays with a ball.",
    "The woman opens the door.",
    "The boy eats a green apple.",
    "An older man reads a newspaper.",
    "Children play soccer in the street.",
};

}  // namespace

/// Trains one small model for all tests of this file (training takes a fraction of a second).
/// Outside the anonymous namespace: the TEST_F classes derive from it, and in the unity build
/// (CMakeLists.txt) a base from an anonymous namespace draws -Wsubobject-linkage.
class VocabTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(make_temp_dir("vocab_test"));
    const fs::path corpus = *dir_ / "corpus.txt";
    std::ofstream out(corpus);
    for (int rep = 0; rep < 3; ++rep)
      for (const auto& line : kToyCorpus) out << line << '\n';
    out.close();
    SpmTrainOptions o;
    o.input_files = {corpus.string()};
    o.model_prefix = (*dir_ / "spm").string();
    o.vocab_size = 120;
    o.hard_vocab_limit = false;
    nmt::data::train_sentencepiece(o);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::string model_file() { return (*dir_ / "spm.model").string(); }
  static fs::path* dir_;
};
fs::path* VocabTest::dir_ = nullptr;

TEST_F(VocabTest, TrainsEncodesAndDecodesWithLibTorchLoaded) {
  // Really use libtorch_cpu in this process, before and after SentencePiece.
  const auto t = torch::arange(6, torch::kFloat).reshape({2, 3});
  ASSERT_FLOAT_EQ(t.sum().item<float>(), 15.0f);

  const Vocab v = Vocab::load(model_file());
  EXPECT_GT(v.size(), 40);
  EXPECT_LE(v.size(), 120);
  for (const auto& line : kToyCorpus) {
    const auto ids = v.encode(line);
    ASSERT_FALSE(ids.empty()) << line;
    for (int64_t id : ids) {
      EXPECT_GE(id, 4) << "special id inside an encoding of: " << line;
      EXPECT_LT(id, v.size());
    }
    EXPECT_EQ(v.decode(ids), line);
  }
  // Umlauts and ß survive, also in a sentence the model never saw.
  const std::string unseen = "Die Männer öffnen große Türen über dem Fluß.";
  EXPECT_EQ(v.decode(v.encode(unseen)), unseen);

  const auto t2 = torch::ones({4}, torch::kLong) * 3;
  EXPECT_EQ(t2.sum().item<int64_t>(), 12);
}

TEST_F(VocabTest, SpecialIds) {
  const Vocab v = Vocab::load(model_file());
  EXPECT_EQ(v.piece(nmt::data::kPad), "<pad>");
  EXPECT_EQ(v.piece(nmt::data::kUnk), "<unk>");
  EXPECT_EQ(v.piece(nmt::data::kBos), "<s>");
  EXPECT_EQ(v.piece(nmt::data::kEos), "</s>");
  EXPECT_EQ(v.piece_to_id("<pad>"), nmt::data::kPad);
  EXPECT_EQ(v.piece_to_id("</s>"), nmt::data::kEos);
  EXPECT_EQ(v.piece_to_id("no-such-piece-xyz"), nmt::data::kUnk);
  // decode skips PAD/BOS/EOS.
  auto ids = v.encode("Ein Hund.");
  std::vector<int64_t> framed = {nmt::data::kBos};
  framed.insert(framed.end(), ids.begin(), ids.end());
  framed.push_back(nmt::data::kEos);
  framed.push_back(nmt::data::kPad);
  framed.push_back(nmt::data::kPad);
  EXPECT_EQ(v.decode(framed), "Ein Hund.");
  EXPECT_THROW(v.decode({v.size()}), std::out_of_range);
  EXPECT_THROW(v.piece(-1), std::out_of_range);
  // An unseen character becomes <unk>.
  const auto with_unk = v.encode("\xe4\xb8\xad");  // U+4E2D, never in the corpus
  EXPECT_NE(std::find(with_unk.begin(), with_unk.end(), nmt::data::kUnk), with_unk.end());
}

TEST_F(VocabTest, PiecesAndBatchEncodeAgree) {
  const Vocab v = Vocab::load(model_file());
  const auto pieces = v.encode_pieces("Ein Hund läuft.");
  const auto ids = v.encode("Ein Hund läuft.");
  ASSERT_EQ(pieces.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(v.piece(ids[i]), pieces[i]);
  EXPECT_EQ(pieces.front().rfind("\xe2\x96\x81", 0), 0u);  // starts with U+2581 '▁'

  std::vector<std::string> many;
  for (int r = 0; r < 200; ++r)
    for (const auto& line : kToyCorpus) many.push_back(line);
  many.push_back("");
  const auto batch = v.encode_batch(many, 2);
  ASSERT_EQ(batch.size(), many.size());
  for (size_t i = 0; i < many.size(); ++i) ASSERT_EQ(batch[i], v.encode(many[i])) << i;
  EXPECT_TRUE(batch.back().empty());
}

TEST_F(VocabTest, LoadsFromBytesAndCopiesCheaply) {
  const Vocab v = Vocab::load(model_file());
  std::ifstream in(model_file(), std::ios::binary);
  const std::string file_bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(v.bytes(), file_bytes);

  const Vocab w = Vocab::from_bytes(v.bytes());
  EXPECT_EQ(w.size(), v.size());
  EXPECT_EQ(w.source(), "<bytes>");
  for (const auto& line : kToyCorpus) EXPECT_EQ(w.encode(line), v.encode(line));

  Vocab copy = w;  // shares the handle
  EXPECT_EQ(&copy.bytes(), &w.bytes());
  Vocab moved = std::move(copy);
  EXPECT_EQ(moved.decode(moved.encode("Ein Hund.")), "Ein Hund.");
}

TEST_F(VocabTest, Errors) {
  try {
    Vocab::load("/nonexistent/dir/model.model");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/model.model"), std::string::npos);
  }
  EXPECT_THROW(Vocab::from_bytes("this is not a model"), std::runtime_error);
  EXPECT_THROW(Vocab::from_bytes(""), std::runtime_error);
  EXPECT_THROW(Vocab().size(), std::logic_error);
  EXPECT_FALSE(Vocab().valid());

  SpmTrainOptions o;
  o.input_files = {"/nonexistent/corpus.txt"};
  o.model_prefix = (*dir_ / "never").string();
  try {
    nmt::data::train_sentencepiece(o);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/corpus.txt"), std::string::npos) << e.what();
  }
}

TEST_F(VocabTest, TooLargeVocabularyIsExplained) {
  const fs::path corpus = *dir_ / "tiny.txt";
  std::ofstream(corpus) << "ein hund .\nzwei hunde .\n";
  SpmTrainOptions o;
  o.input_files = {corpus.string()};
  o.model_prefix = (*dir_ / "tiny").string();
  o.vocab_size = 500;
  try {
    nmt::data::train_sentencepiece(o);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(corpus.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("hard_vocab_limit=false"), std::string::npos) << msg;
  }
  o.hard_vocab_limit = false;
  nmt::data::train_sentencepiece(o);
  const Vocab v = Vocab::load(o.model_prefix + ".model");
  EXPECT_LT(v.size(), 500);
  EXPECT_EQ(v.decode(v.encode("zwei hunde .")), "zwei hunde .");
}

TEST_F(VocabTest, TrainsBpeOnToyCorpus) {
  const std::string root = NMT_SOURCE_DIR;
  SpmTrainOptions o;
  o.input_files = {root + "/data/toy/train.de", root + "/data/toy/train.en"};
  o.model_prefix = (*dir_ / "bpe").string();
  o.model_type = "bpe";
  o.vocab_size = 200;
  nmt::data::train_sentencepiece(o);
  const Vocab v = Vocab::load(o.model_prefix + ".model");
  EXPECT_EQ(v.size(), 200);
  EXPECT_EQ(v.piece(nmt::data::kPad), "<pad>");
  EXPECT_EQ(v.decode(v.encode("ein hund läuft .")), "ein hund läuft .");
}

// A stored model whose normalisation rules (precompiled_charsmap) point outside themselves used to
// crash SentencePiece's normaliser while encoding (SIGSEGV; issue 13's crash on a changed
// checkpoint byte); now loading it is a clear error, from a file and from bytes.
TEST_F(VocabTest, CorruptNormalisationRulesAreAClearError) {
  const fs::path rules = *dir_ / "rules.tsv";
  std::ofstream(rules) << "41\t61\n42\t62\nC4\t41 308\n";  // A -> a, B -> b, Ä -> A + combining diaeresis
  SpmTrainOptions o;
  o.input_files = {(*dir_ / "corpus.txt").string()};
  o.model_prefix = (*dir_ / "rules").string();
  o.vocab_size = 60;
  o.hard_vocab_limit = false;
  o.extra = {{"normalization_rule_tsv", rules.string()}};
  nmt::data::train_sentencepiece(o);
  const auto good = Vocab::load(o.model_prefix + ".model");
  EXPECT_EQ(good.decode(good.encode("AB")), "ab");  // the rules are in use
  std::string bytes = good.bytes();
  const std::string strings("A\xcc\x88\0a\0b\0", 8);  // the replacements, each NUL-terminated
  const size_t at = bytes.find(strings);
  ASSERT_NE(at, std::string::npos);
  for (size_t i = at; i < at + strings.size(); ++i)
    if (bytes[i] == '\0') bytes[i] = 'x';  // no replacement ends inside the rules any more
  const std::string expected = "corrupt normalisation rules (a replacement outside the string area)";
  try {
    Vocab::from_bytes(bytes).encode("AB");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("SentencePiece model <bytes>: " + expected), std::string::npos) << e.what();
  }
  const std::string file = (*dir_ / "corrupt.model").string();
  std::ofstream(file, std::ios::binary) << bytes;
  try {
    Vocab::load(file).encode("AB");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("SentencePiece model " + file + ": " + expected), std::string::npos) << e.what();
  }
}

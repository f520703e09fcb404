#include "nmt/data/corpus.h"
#include "nmt/data/batching.h"
#include "nmt/data/token_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <string>
#include <tuple>

namespace fs = std::filesystem;
using namespace nmt::data;

namespace {

class CorpusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("nmt_corpus_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& content) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

  /// A small unigram model trained on the repository's toy corpus (both languages).
  Vocab toy_vocab() {
    const std::string root = NMT_SOURCE_DIR;
    SpmTrainOptions o;
    o.input_files = {root + "/data/toy/train.de", root + "/data/toy/train.en"};
    o.model_prefix = (dir_ / "toy").string();
    o.vocab_size = 150;
    o.hard_vocab_limit = false;
    train_sentencepiece(o);
    return Vocab::load(o.model_prefix + ".model");
  }

  fs::path dir_;
};

std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}

}  // namespace

TEST_F(CorpusTest, ReadLinesKeepsTextVerbatim) {
  const std::string path =
      write("a.txt", "\xEF\xBB\xBF" "eins\r\nzwei\tdrei\n  vier  \n\xC2\xA0" "f\xC3\xBC" "nf\n\nsechs");
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0], "eins");                 // BOM and \r stripped
  EXPECT_EQ(lines[1], "zwei\tdrei");           // TAB kept
  EXPECT_EQ(lines[2], "  vier  ");             // spaces kept
  EXPECT_EQ(lines[3], "\xC2\xA0" "f\xC3\xBC" "nf");  // nbsp + umlaut kept
  EXPECT_EQ(lines[4], "");
  EXPECT_EQ(lines[5], "sechs");                // last line without '\n'
  EXPECT_EQ(read_lines(write("b.txt", "x\ny\n")).size(), 2u);  // final '\n' adds no line
  EXPECT_TRUE(read_lines(write("c.txt", "")).empty());
}

TEST_F(CorpusTest, MissingFileIsNamed) {
  const std::string missing = (dir_ / "missing.de").string();
  const std::string msg = what_of([&] { read_lines(missing); });
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;
}

TEST_F(CorpusTest, InvalidUtf8NamesFileAndLine) {
  const std::string path = write("bad.txt", "gut\nauch gut\nschl\xE4" "cht\n");  // latin-1 ä
  const std::string msg = what_of([&] { read_lines(path); });
  EXPECT_NE(msg.find(path + ":3"), std::string::npos) << msg;
  // Overlong encoding and a lone continuation byte are rejected too.
  EXPECT_NE(what_of([&] { read_lines(write("o.txt", "\xC0\xAF")); }).find(":1"),
            std::string::npos);
  EXPECT_NE(what_of([&] { read_lines(write("c.txt", "ok\n\x80")); }).find(":2"),
            std::string::npos);
  EXPECT_EQ(read_lines(write("ok.txt", "\xF0\x9F\x98\x80 \xE2\x82\xAC")).size(), 1u);
}

TEST_F(CorpusTest, LineCountMismatchNamesBothFilesAndCounts) {
  const std::string de = write("x.de", "a\nb\nc\n");
  const std::string en = write("x.en", "a\nb\n");
  const std::string msg = what_of([&] { read_parallel(de, en); });
  EXPECT_NE(msg.find(de), std::string::npos) << msg;
  EXPECT_NE(msg.find(en), std::string::npos) << msg;
  EXPECT_NE(msg.find("3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2"), std::string::npos) << msg;
  const auto ok = read_parallel(de, write("y.en", "1\n2\n3"));
  EXPECT_EQ(ok.size(), 3u);
  EXPECT_EQ(ok.src_path, de);
}

TEST_F(CorpusTest, EncodeDropsEmptyAndTooLongPairs) {
  const Vocab v = toy_vocab();
  const std::string long_de = "ein hund läuft . eine katze schläft . der mann trinkt ein bier .";
  const auto text = read_parallel(
      write("t.de", "ein hund läuft .\n   \neine katze schläft .\n" + long_de +
                        "\n\xC2\xA0\nder hund bellt laut .\n"),
      write("t.en", "a dog runs .\na cat .\n\na man .\n the woman smiles .\nthe dog barks loudly .\n"));
  ASSERT_EQ(text.size(), 6u);
  // The limit: the longest side of the pairs that must be kept.
  int max_len = 0;
  for (const char* s : {"ein hund läuft .", "a dog runs .", "der hund bellt laut .",
                        "the dog barks loudly ."})
    max_len = std::max(max_len, static_cast<int>(v.encode(s).size()));
  ASSERT_GT(static_cast<int>(v.encode(long_de).size()), max_len);
  FilterStats stats;
  const auto examples = encode_corpus(text, v, v, max_len, &stats);
  EXPECT_EQ(stats.total, 6u);
  EXPECT_EQ(stats.empty, 3u);  // blank source, empty target, nbsp-only source
  EXPECT_EQ(stats.too_long, 1u);
  EXPECT_EQ(stats.kept, 2u);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].index, 0u);
  EXPECT_EQ(examples[1].index, 5u);
  EXPECT_EQ(examples[0].src, v.encode("ein hund läuft ."));
  EXPECT_EQ(examples[1].tgt, v.encode("the dog barks loudly ."));
  EXPECT_EQ(v.decode(examples[1].src), "der hund bellt laut .");

  // No length limit: the long pair is kept.
  const auto all = encode_corpus(text, v, v, 0, &stats);
  EXPECT_EQ(stats.too_long, 0u);
  EXPECT_EQ(all.size(), 3u);
}

TEST_F(CorpusTest, ToyCorpusIsAligned) {
  const std::string root = NMT_SOURCE_DIR;
  const auto train = read_parallel(root + "/data/toy/train.de", root + "/data/toy/train.en");
  const auto valid = read_parallel(root + "/data/toy/valid.de", root + "/data/toy/valid.en");
  EXPECT_GE(train.size(), 40u);
  EXPECT_GE(valid.size(), 5u);
}

// The memory-mapped token file holds exactly the pairs encode_corpus() keeps, built in several
// chunks, and gives the same batches.
TEST_F(CorpusTest, TokenFileHoldsWhatEncodeCorpusKeeps) {
  const auto vocab = toy_vocab();
  const std::string root = NMT_SOURCE_DIR;
  auto text = read_parallel(root + "/data/toy/train.de", root + "/data/toy/train.en");
  text.src[3] = "   ";  // an empty pair
  for (int k = 0; k < 4; ++k) text.tgt[7] += " " + text.tgt[7];  // 16 sentences: too long for max_len 40
  const auto src = write("train.de", [&] { std::string t; for (auto& l : text.src) t += l + "\n"; return t; }());
  const auto tgt = write("train.en", [&] { std::string t; for (auto& l : text.tgt) t += l + "\n"; return t; }());
  FilterStats expected_stats;
  const auto expected = encode_corpus(read_parallel(src, tgt), vocab, vocab, 40, &expected_stats);
  const auto path = (dir_ / "corpus.tok").string();
  const auto stats = build_token_file(src, tgt, vocab, vocab, 40, path, /*chunk_lines=*/7);
  EXPECT_EQ(stats.kept, expected_stats.kept);
  EXPECT_EQ(stats.empty, 1u);
  EXPECT_EQ(stats.too_long, 1u);
  EXPECT_EQ(stats.total, text.size());
  TokenCorpus corpus(path, vocab.size(), vocab.size());
  ASSERT_EQ(corpus.size(), expected.size());
  for (size_t i = 0; i < corpus.size(); ++i) {
    const auto e = corpus.example(i);
    EXPECT_EQ(e.src, expected[i].src) << i;
    EXPECT_EQ(e.tgt, expected[i].tgt) << i;
    EXPECT_EQ(e.index, expected[i].index) << i;
  }
  EXPECT_EQ(make_token_batches(corpus.lengths(), 60, true, 5), make_token_batches(expected, 60, true, 5));
  EXPECT_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST_F(CorpusTest, DamagedTokenFileIsAClearError) {
  const auto vocab = toy_vocab();
  const std::string root = NMT_SOURCE_DIR;
  const auto path = (dir_ / "corpus.tok").string();
  build_token_file(root + "/data/toy/train.de", root + "/data/toy/train.en", vocab, vocab, 0, path);
  const auto bytes = [&] { std::ifstream in(path, std::ios::binary); return std::string(std::istreambuf_iterator<char>(in), {}); }();
  auto damaged = [&](const std::string& content) {
    const auto p = write("damaged.tok", content);
    return what_of([&] { TokenCorpus(p, vocab.size(), vocab.size()); });
  };
  EXPECT_NE(damaged(bytes.substr(0, bytes.size() - 5)).find("damaged.tok: not a valid nmt token file"), std::string::npos);
  EXPECT_NE(damaged(bytes.substr(0, 10)).find("shorter than its header"), std::string::npos);
  std::string magic = bytes;
  magic[0] = 'X';
  EXPECT_NE(damaged(magic).find("wrong magic"), std::string::npos);
  const auto small = what_of([&] { TokenCorpus(path, 3, 3); });  // ids beyond a 3-piece vocabulary
  EXPECT_NE(small.find("outside the vocabulary"), std::string::npos) << small;
  EXPECT_NE(what_of([&] { TokenCorpus((dir_ / "none.tok").string(), 5, 5); }).find("none.tok"), std::string::npos);
}

// A hand-made token file (layout: token_file.h) whose one pair starts at offset 2^64 - 1: the
// bounds check used to add the lengths to the offset, which wrapped around to 1 and let the pair
// be read from before the token area. Three tokens also put the index 4 bytes off an 8-byte
// boundary, as in real files with an odd token count (read with memcpy since the fuzzer's UBSan
// found the misaligned reads; tests/fuzz/corpus/corpus/toy.tok is such a file).
TEST_F(CorpusTest, TokenFilePairOutsideTheTokenAreaIsAClearError) {
  auto token_file = [&](uint64_t offset, uint32_t src_len, uint32_t tgt_len) {
    std::string f("NMTTOK01", 8);
    auto put = [&](uint64_t v, int bytes) { f.append(reinterpret_cast<const char*>(&v), bytes); };
    const uint64_t tokens = 3;
    for (uint64_t v : {uint64_t{1}, 64 + 4 * tokens, tokens, uint64_t{1}, uint64_t{0}, uint64_t{0}, uint64_t{0}}) put(v, 8);
    for (uint32_t id : {4u, 5u, 6u}) put(id, 4);
    put(offset, 8);
    put(src_len, 4);
    put(tgt_len, 4);
    put(0, 8);  // corpus line
    return write("hand.tok", f);
  };
  TokenCorpus ok(token_file(1, 1, 1), 10, 10);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok.example(0).src, std::vector<int64_t>({5}));
  EXPECT_EQ(ok.example(0).tgt, std::vector<int64_t>({6}));
  for (const auto& [offset, src_len, tgt_len] : {std::tuple<uint64_t, uint32_t, uint32_t>{~uint64_t{0}, 1, 1},
                                                 {2, 1, 1}, {4, 1, 1}, {0, 0xffffffffu, 2}}) {
    const auto path = token_file(offset, src_len, tgt_len);
    const auto msg = what_of([&] { TokenCorpus(path, 10, 10); });
    EXPECT_NE(msg.find(path + ": not a valid nmt token file (pair 0 lies outside the token area)"), std::string::npos)
        << offset << " " << src_len << " " << tgt_len << ": " << msg;
  }
}

TEST_F(CorpusTest, TokenFileNeedsAlignedFilesAndValidText) {
  const auto vocab = toy_vocab();
  const auto a = write("a.de", "eins\nzwei\ndrei\n"), b = write("b.en", "one\ntwo\n");
  const auto msg = what_of([&] { build_token_file(a, b, vocab, vocab, 0, (dir_ / "x.tok").string()); });
  EXPECT_NE(msg.find(a), std::string::npos) << msg;
  EXPECT_NE(msg.find(b), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir_ / "x.tok"));
  const auto bad = write("bad.en", "one\ntw\xFFo\nthree\n");
  const auto utf8 = what_of([&] { build_token_file(a, bad, vocab, vocab, 0, (dir_ / "x.tok").string()); });
  EXPECT_NE(utf8.find(bad + ":2: invalid UTF-8"), std::string::npos) << utf8;
}

TEST_F(CorpusTest, TokenFileNameFollowsItsInputs) {
  const auto vocab = toy_vocab();
  const auto a = write("a.de", "eins\n"), b = write("b.en", "one\n");
  const auto name = token_file_name(a, b, vocab, vocab, 100);
  EXPECT_EQ(token_file_name(a, b, vocab, vocab, 100), name);
  EXPECT_NE(token_file_name(a, b, vocab, vocab, 50), name);
  EXPECT_NE(token_file_name(b, a, vocab, vocab, 100), name);
  write("b.en", "one two\n");  // a changed corpus (size and time)
  EXPECT_NE(token_file_name(a, b, vocab, vocab, 100), name);
}

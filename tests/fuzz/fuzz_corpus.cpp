// libFuzzer target: the corpus readers on arbitrary file bytes.
//  - the input as a text file: read_lines() (path and stream) and LineReader must agree; only a
//    std::runtime_error may come out, and it must name the file; every line they return is valid
//    UTF-8 by eval/unicode.h's independent decoder, and holds no '\n';
//  - split in two at a point the first byte chooses, as a parallel corpus: read_parallel() must
//    succeed exactly when both halves read and have the same number of lines; when it does,
//    build_token_file() (SentencePiece model trained from data/toy at start-up) must write a
//    token file that TokenCorpus opens, holding exactly encode_corpus()'s pairs;
//  - the input as a token file (the mmap'ed open-and-check of token_file.h): it opens or throws
//    std::runtime_error naming the file; when it opens, every pair lies inside the file and its
//    ids inside the vocabularies (ASan checks each read).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

#include "nmt/data/corpus.h"
#include "nmt/data/token_file.h"
#include "nmt/data/vocab.h"
#include "nmt/eval/unicode.h"

namespace {

namespace fs = std::filesystem;

fs::path g_dir;  // a private directory on tmpfs (fsync is free there)
nmt::data::Vocab g_vocab;
constexpr int64_t kVocabSize = 40;  // the seed token file's vocabulary (tests/fuzz/corpus/corpus/)

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::string write(const std::string& name, const char* data, size_t size) {
  const std::string path = (g_dir / name).string();
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(data, static_cast<std::streamsize>(size));
  return path;
}

bool names(const std::runtime_error& e, const std::string& path) {
  return std::string(e.what()).find(path) != std::string::npos;
}

/// read_lines(path), or false when it throws (the message naming the file).
bool read_text(const std::string& path, std::vector<std::string>& lines) {
  try {
    lines = nmt::data::read_lines(path);
  } catch (const std::runtime_error& e) {
    check(names(e, path));
    return false;
  }
  for (const auto& line : lines) {
    check(nmt::eval::find_invalid_utf8(line) == std::string_view::npos);
    check(line.find('\n') == std::string::npos);  // (one trailing '\r' is stripped: "a\r\r\n" reads "a\r")
  }
  return true;
}

void fuzz_text(const char* data, size_t size) {
  const std::string path = write("text", data, size);
  std::vector<std::string> lines;
  const bool ok = read_text(path, lines);
  std::istringstream in(std::string(data, size));
  std::vector<std::string> from_stream;
  bool stream_ok = true;
  try {
    from_stream = nmt::data::read_lines(in, "stdin");
  } catch (const std::runtime_error& e) {
    check(names(e, "stdin"));
    stream_ok = false;
  }
  check(stream_ok == ok && (!ok || from_stream == lines));
  std::vector<std::string> streamed;
  try {
    nmt::data::LineReader reader(path);
    std::string line;
    while (reader.next(line)) streamed.push_back(line);
    check(ok && streamed == lines && reader.lines_read() == lines.size());
  } catch (const std::runtime_error& e) {
    check(!ok && names(e, path));
  }
}

void fuzz_parallel(const char* data, size_t size) {
  if (size == 0) return;
  const size_t cut = 1 + (size - 1) * static_cast<unsigned char>(data[0]) / 255;
  const std::string src = write("src", data + 1, cut - 1), tgt = write("tgt", data + cut, size - cut);
  std::vector<std::string> src_lines, tgt_lines;
  const bool both = read_text(src, src_lines) && read_text(tgt, tgt_lines);
  nmt::data::ParallelText text;
  try {
    text = nmt::data::read_parallel(src, tgt);
    check(both && src_lines.size() == tgt_lines.size() && text.src == src_lines && text.tgt == tgt_lines);
  } catch (const std::runtime_error& e) {
    check(names(e, src) || names(e, tgt));
    check(!both || src_lines.size() != tgt_lines.size());
    return;
  }
  const std::string tok = (g_dir / "built.tok").string();
  const auto stats = nmt::data::build_token_file(src, tgt, g_vocab, g_vocab, 8, tok, 3);
  const auto expected = nmt::data::encode_corpus(text, g_vocab, g_vocab, 8);
  nmt::data::TokenCorpus corpus(tok, g_vocab.size(), g_vocab.size());
  check(corpus.size() == expected.size() && stats.kept == expected.size() && stats.total == text.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto e = corpus.example(i);
    check(e.src == expected[i].src && e.tgt == expected[i].tgt && e.index == expected[i].index);
  }
}

void fuzz_token_file(const char* data, size_t size) {
  const std::string path = write("tokens", data, size);
  try {
    nmt::data::TokenCorpus corpus(path, kVocabSize, kVocabSize);
    const auto lengths = corpus.lengths();
    check(lengths.size() == corpus.size());
    for (size_t i = 0; i < corpus.size(); ++i) {
      const auto e = corpus.example(i);
      check(e.src.size() == lengths[i].first && e.tgt.size() == lengths[i].second);
      check(!e.src.empty() && !e.tgt.empty());
      for (const auto& side : {e.src, e.tgt})
        for (int64_t id : side) check(id >= 0 && id < kVocabSize);
    }
  } catch (const std::runtime_error& e) {
    check(names(e, path));
  }
}

}  // namespace

// SentencePiece is dlopen'ed with RTLD_DEEPBIND (see vocab.cpp's open_library), so its operator
// new is libstdc++'s, calling malloc, while its operator delete may be ASan's: a false
// alloc-dealloc mismatch. Every other check stays on.
extern "C" const char* __asan_default_options() { return "alloc_dealloc_mismatch=0"; }

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  g_dir = fs::path(fs::exists("/dev/shm") ? "/dev/shm" : fs::temp_directory_path()) /
          ("nmt-fuzz-corpus-" + std::to_string(getpid()));
  fs::create_directories(g_dir);
  nmt::data::SpmTrainOptions o;
  o.input_files = {NMT_SOURCE_DIR "/data/toy/train.de", NMT_SOURCE_DIR "/data/toy/train.en"};
  o.model_prefix = (g_dir / "spm").string();
  o.vocab_size = kVocabSize;
  nmt::data::train_sentencepiece(o);
  g_vocab = nmt::data::Vocab::load(o.model_prefix + ".model");
  std::atexit([] { fs::remove_all(g_dir); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const auto* data = reinterpret_cast<const char*>(bytes);
  fuzz_text(data, size);
  fuzz_parallel(data, size);
  fuzz_token_file(data, size);
  return 0;
}

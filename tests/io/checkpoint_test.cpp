// Checkpoints (io/checkpoint.h): exact round trips, checksummed parts, format 1, atomic writes.
#include "nmt/io/checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/data/vocab.h"
#include "support/test_util.h"
#include "support/train_util.h"

namespace {

using nmt::testing::TempDir;

/// A toy SentencePiece model, trained once for the checkpoint tests.
const nmt::data::Vocab& toy_vocab() {
  static TempDir dir;
  static nmt::data::Vocab vocab = [] {
    nmt::data::SpmTrainOptions o;
    o.input_files = {nmt::testing::source_path("data/toy/train.de"), nmt::testing::source_path("data/toy/train.en")};
    o.model_prefix = dir.file("spm");
    o.vocab_size = 60;
    nmt::data::train_sentencepiece(o);
    return nmt::data::Vocab::load(dir.file("spm.model"));
  }();
  return vocab;
}

nmt::io::Checkpoint make_checkpoint() {
  nmt::io::Checkpoint ck;
  ck.config = nmt::default_config();
  ck.config.model.embed_dim = 8;
  ck.config.model.hidden_size = 12;
  ck.src_vocab = ck.tgt_vocab = toy_vocab();
  ck.model = nmt::models::make_model(ck.config.model, ck.src_vocab.size(), ck.tgt_vocab.size());
  ck.state.step = 42;
  ck.state.epoch = 3;
  ck.state.batch_in_epoch = 7;
  ck.state.best_metric = 12.5;
  ck.state.lr_base = 2.5e-4;
  ck.state.elapsed_seconds = 99.5;
  nmt::io::capture_generators(ck.state);
  return ck;
}

/// An Adam optimizer over `ck`'s model after one real update, so that it has state to save.
std::unique_ptr<torch::optim::Adam> stepped_adam(nmt::io::Checkpoint& ck) {
  auto adam = std::make_unique<torch::optim::Adam>(ck.model->parameters(), torch::optim::AdamOptions(1e-3));
  auto loss = torch::zeros({});
  for (auto& p : ck.model->parameters()) loss = loss + p.sum();
  loss.backward();
  adam->step();
  return adam;
}

TEST(Checkpoint, RoundTripsExactly) {
  TempDir dir;
  auto ck = make_checkpoint();
  auto stepped = stepped_adam(ck);
  auto& adam = *stepped;
  ck.state.train_curve = {{100, 12.25, 4.5, 90.0, -1}, {200, 24.5, 3.25, 25.8, -1}};
  ck.state.valid_curve = {{200, 30.0, 3.5, 33.1, 7.25}};
  ck.ema = nmt::models::make_model(ck.config.model, ck.src_vocab.size(), ck.tgt_vocab.size());
  const std::string path = dir.file("ck.pt");
  nmt::io::save_checkpoint(path, ck, &adam);

  auto back = nmt::io::load_checkpoint(path, torch::kCPU);
  EXPECT_EQ(nmt::to_yaml(back.config), nmt::to_yaml(ck.config));
  EXPECT_EQ(back.src_vocab.bytes(), ck.src_vocab.bytes());
  EXPECT_EQ(back.state.step, 42);
  EXPECT_EQ(back.state.epoch, 3);
  EXPECT_EQ(back.state.batch_in_epoch, 7);
  EXPECT_DOUBLE_EQ(back.state.best_metric, 12.5);
  EXPECT_DOUBLE_EQ(back.state.lr_base, 2.5e-4);
  EXPECT_DOUBLE_EQ(back.state.elapsed_seconds, 99.5);
  nmt::testing::expect_same_parameters(*ck.model, *back.model);
  ASSERT_TRUE(back.ema);
  nmt::testing::expect_same_parameters(*ck.ema, *back.ema);
  ASSERT_EQ(back.state.train_curve.size(), 2u);
  ASSERT_EQ(back.state.valid_curve.size(), 1u);
  EXPECT_EQ(back.state.train_curve[1].step, 200);
  EXPECT_DOUBLE_EQ(back.state.train_curve[1].seconds, 24.5);
  EXPECT_DOUBLE_EQ(back.state.train_curve[1].loss, 3.25);
  EXPECT_DOUBLE_EQ(back.state.train_curve[1].perplexity, 25.8);
  EXPECT_DOUBLE_EQ(back.state.valid_curve[0].bleu, 7.25);

  torch::optim::Adam adam2(back.model->parameters(), torch::optim::AdamOptions(1e-3));
  nmt::io::load_optimizer_state(path, adam2, torch::kCPU);
  nmt::testing::expect_same_adam_state(adam, adam2);
  // The generator state is stored, and restoring it repeats the same random numbers.
  ASSERT_TRUE(back.state.cpu_rng_state.defined());
  ASSERT_TRUE(nmt::io::restore_generators(back.state));
  const auto first = torch::rand({8});
  nmt::io::restore_generators(back.state);
  EXPECT_TRUE(torch::equal(first, torch::rand({8})));
}

TEST(Checkpoint, CorruptOrMissingFilesGiveAClearError) {
  TempDir dir;
  auto ck = make_checkpoint();
  const std::string path = dir.file("ck.pt");
  nmt::io::save_checkpoint(path, ck, nullptr);
  auto bytes = nmt::testing::read_text(path);
  nmt::testing::write_text(dir.file("truncated.pt"), bytes.substr(0, bytes.size() / 2));
  nmt::testing::write_text(dir.file("garbage.pt"), "this is not a checkpoint");
  for (const auto& name : {"truncated.pt", "garbage.pt", "missing.pt"}) {
    try {
      nmt::io::load_checkpoint(dir.file(name), torch::kCPU);
      ADD_FAILURE() << name << " loaded";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(dir.file(name)), std::string::npos) << e.what();
    }
  }
}

/// A checkpoint with optimizer state, so that every part of the format is present.
std::string save_full_checkpoint(const TempDir& dir) {
  auto ck = make_checkpoint();
  const std::string path = dir.file("ck.pt");
  nmt::io::save_checkpoint(path, ck, stepped_adam(ck).get());
  return path;
}

/// The error load_checkpoint throws for `path`, or "" when it loads.
std::string load_error(const std::string& path) {
  try {
    nmt::io::load_checkpoint(path, torch::kCPU);
    return "";
  } catch (const std::runtime_error& e) {
    return e.what();
  }
}

// A changed byte anywhere (the header, a part's size or checksum, the weights, the optimizer
// state, the config, the SentencePiece model) is an error naming the file: never a crash inside
// SentencePiece or LibTorch, never a silently different model.
TEST(Checkpoint, EveryChangedByteIsAClearError) {
  TempDir dir;
  const auto bytes = nmt::testing::read_text(save_full_checkpoint(dir));
  const std::string bad = dir.file("bad.pt");
  std::mt19937_64 rng(13);
  for (int i = 0; i < 200; ++i) {
    auto changed = bytes;
    const size_t pos = std::uniform_int_distribution<size_t>(0, bytes.size() - 1)(rng);
    changed[pos] = static_cast<char>(changed[pos] ^ std::uniform_int_distribution<int>(1, 255)(rng));
    nmt::testing::write_text(bad, changed);
    const auto error = load_error(bad);
    EXPECT_TRUE(nmt::testing::contains(error, bad)) << "byte " << pos << " of " << bytes.size() << ": '" << error << "'";
    torch::optim::Adam adam(make_checkpoint().model->parameters(), torch::optim::AdamOptions(1e-3));
    EXPECT_THROW(nmt::io::load_optimizer_state(bad, adam, torch::kCPU), std::runtime_error) << "byte " << pos;
  }
}

TEST(Checkpoint, AChangedByteNamesItsPart) {
  TempDir dir;
  const auto ck = make_checkpoint();
  const auto bytes = nmt::testing::read_text(save_full_checkpoint(dir));
  const std::string bad = dir.file("bad.pt");
  // The SentencePiece model's bytes (src_spm comes first) and the config text, found in the file.
  for (const auto& [part, content] : {std::pair<std::string, std::string>{"src_spm", ck.src_vocab.bytes()},
                                      {"config", nmt::to_yaml(ck.config)}}) {
    const size_t at = bytes.find(content);
    ASSERT_NE(at, std::string::npos) << part;
    auto changed = bytes;
    changed[at + content.size() / 2] ^= 0x20;
    nmt::testing::write_text(bad, changed);
    EXPECT_TRUE(nmt::testing::contains(load_error(bad), "checksum mismatch in part '" + part + "'")) << load_error(bad);
  }
  auto newer = bytes;
  newer[8] = 3;  // the format version, a little-endian uint32 after the 8-byte magic
  nmt::testing::write_text(bad, newer);
  EXPECT_TRUE(nmt::testing::contains(load_error(bad), "checkpoint format version 3")) << load_error(bad);
}

// Checkpoints of nmt before checksums (format 1: one LibTorch archive) still load.
TEST(Checkpoint, FormatOneStillLoads) {
  TempDir dir;
  const auto ck = make_checkpoint();
  torch::serialize::OutputArchive a, model;
  a.write("nmt_format", c10::IValue(int64_t{1}));
  a.write("config", c10::IValue(nmt::to_yaml(ck.config)));
  for (const char* part : {"src_spm", "tgt_spm"}) a.write(part, c10::IValue(ck.src_vocab.bytes()));
  const std::vector<std::pair<std::string, c10::IValue>> state = {
      {"step", int64_t{42}}, {"epoch", int64_t{3}}, {"batch_in_epoch", int64_t{7}}, {"best_metric", 12.5},
      {"best_step", int64_t{0}}, {"bad_validations", int64_t{0}}, {"lr_base", 2.5e-4},
      {"lr_bad_count", int64_t{0}}, {"elapsed_seconds", 99.5}};
  for (const auto& [key, value] : state) a.write("state." + key, value);
  ck.model->save(model);
  a.write("model", model);
  const std::string path = dir.file("old.pt");
  a.save_to(path);
  auto back = nmt::io::load_checkpoint(path, torch::kCPU);
  EXPECT_EQ(back.state.step, 42);
  EXPECT_EQ(back.state.batch_in_epoch, 7);
  EXPECT_FALSE(back.state.cpu_rng_state.defined());
  nmt::testing::expect_same_parameters(*ck.model, *back.model);
}

TEST(Checkpoint, SavingLeavesNoTemporaryFileBehind) {
  TempDir dir;
  auto ck = make_checkpoint();
  nmt::io::save_checkpoint(dir.file("ck.pt"), ck, nullptr);
  nmt::io::save_checkpoint(dir.file("ck.pt"), ck, nullptr);  // overwrite in place
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(Checkpoint, FindCheckpointPrefersBest) {
  TempDir dir;
  EXPECT_THROW(nmt::io::find_checkpoint(dir.path().string()), std::runtime_error);
  nmt::testing::write_text(dir.file("last.pt"), "x");
  EXPECT_EQ(nmt::io::find_checkpoint(dir.path().string()), dir.file("last.pt"));
  nmt::testing::write_text(dir.file("best.pt"), "x");
  EXPECT_EQ(nmt::io::find_checkpoint(dir.path().string()), dir.file("best.pt"));
}

// An optimizer part that does not load (found by tests/fuzz/fuzz_checkpoint: with valid checksums,
// a changed type name in the archive made LibTorch throw torch::jit::ErrorReport, which escaped
// load_optimizer_state as it was and ended `nmt train --resume` without naming the file) is an
// error naming the file and the part.
TEST(Checkpoint, AnOptimizerStateThatDoesNotLoadNamesFileAndPart) {
  TempDir dir;
  const std::string path = save_full_checkpoint(dir);
  auto other = make_checkpoint();
  other.config.model.encoder_layers = 3;  // more parameters: the stored Adam state does not fit
  other.model = nmt::models::make_model(other.config.model, other.src_vocab.size(), other.tgt_vocab.size());
  torch::optim::Adam adam(other.model->parameters(), torch::optim::AdamOptions(1e-3));
  try {
    nmt::io::load_optimizer_state(path, adam, torch::kCPU);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(nmt::testing::contains(e.what(), path + ": invalid nmt checkpoint: part 'optimizer': ")) << e.what();
  }
}

/// The LibTorch archive `archive` with its record `record` transformed by `change`: a well-formed
/// zip file again, as a crafted file would be.
std::string with_changed_record(const std::string& archive, const std::string& record,
                                const std::function<std::string(std::string)>& change) {
  std::istringstream in(archive);
  caffe2::serialize::PyTorchStreamReader reader(&in);
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&out](const void* p, size_t n) {
    out.append(static_cast<const char*>(p), n);
    return n;
  });
  bool found = false;
  for (const auto& name : reader.getAllRecords()) {
    if (name == "version" || name == ".data/version") continue;  // writeEndOfFile writes it
    auto [data, size] = reader.getRecord(name);
    std::string bytes(static_cast<const char*>(data.get()), size);
    if (name == record) {
      bytes = change(bytes);
      found = true;
    }
    writer.writeRecord(name, bytes.data(), bytes.size());
  }
  writer.writeEndOfFile();
  EXPECT_TRUE(found) << "no record " << record;
  return out;
}

/// `archive` with the first `from` in its code/__torch__.py replaced by `to`.
std::string with_changed_code(const std::string& archive, const std::string& from, const std::string& to) {
  return with_changed_record(archive, "code/__torch__.py", [&](std::string code) {
    EXPECT_NE(code.find(from), std::string::npos) << "no '" << from << "' in code/__torch__.py";
    if (code.find(from) != std::string::npos) code.replace(code.find(from), from.size(), to);
    return code;
  });
}

uint64_t le(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
void put_le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

/// The format-2 file `file` (layout: checkpoint.h) with part `part` transformed by `change`, every
/// checksum recomputed: only the parsers behind the checksums can tell.
std::string with_changed_part(const std::string& file, const std::string& part,
                              const std::function<std::string(const std::string&)>& change) {
  size_t pos = 12;
  const uint64_t count = le(file, pos, 4);
  pos += 4;
  std::vector<std::string> names;
  std::vector<uint64_t> sizes;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t len = le(file, pos, 4);
    names.push_back(file.substr(pos + 4, len));
    sizes.push_back(le(file, pos + 4 + len, 8));
    pos += 4 + len + 16;
  }
  pos += 8;
  std::vector<std::string> parts;
  for (size_t i = 0; i < names.size(); ++i) {
    parts.push_back(file.substr(pos, sizes[i]));
    pos += sizes[i];
    if (names[i] == part) parts.back() = change(parts.back());
  }
  std::string out = file.substr(0, 16);
  for (size_t i = 0; i < names.size(); ++i) {
    put_le(out, names[i].size(), 4);
    out += names[i];
    put_le(out, parts[i].size(), 8);
    put_le(out, nmt::io::checksum64(parts[i].data(), parts[i].size()), 8);
  }
  put_le(out, nmt::io::checksum64(out.data(), out.size()), 8);
  for (const auto& p : parts) out += p;
  return out;
}

// Found by tests/fuzz/fuzz_checkpoint: an archive part whose TorchScript declares a class constant
// without a type (`name = int`, one changed character with recomputed checksums) crashed LibTorch
// 1.13's importer (SIGSEGV in ScriptTypeParser::parseClassConstant). It is now refused before
// LibTorch parses it, naming the file, the part and the line; so is any code nmt never writes,
// and a type nested so deep that LibTorch's recursive type parser overflows the stack.
// An unchanged rewrite still loads, so the check does not refuse what LibTorch writes.
TEST(Checkpoint, UnexpectedCodeInAnArchivePartIsAClearErrorNotACrash) {
  TempDir dir;
  const std::string path = save_full_checkpoint(dir);
  const auto bytes = nmt::testing::read_text(path);
  auto write_changed = [&](const std::string& part, const std::string& from, const std::string& to) {
    const std::string bad = dir.file("changed-" + part + ".pt");
    std::ofstream(bad, std::ios::binary)
        << with_changed_part(bytes, part, [&](const std::string& a) { return with_changed_code(a, from, to); });
    return bad;
  };
  EXPECT_EQ(load_error(write_changed("state", "__buffers__", "__buffers__")), "");
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"rng_cuda_count : int", "rng_cuda_count = int"},
           {"rng_cpu : Tensor", "rng_cpu : Final[int] = 3"},
           // LibTorch's type parser recursed into this one until the stack overflowed (SIGSEGV).
           {"rng_cuda_count : int", "rng_cuda_count : " + repeat("List[", 50000) + "int" + repeat("]", 50000)}}) {
    const std::string bad = write_changed("state", from, to);
    const std::string error = load_error(bad);
    EXPECT_TRUE(nmt::testing::contains(error, bad + ": invalid nmt checkpoint: part 'state': unexpected TorchScript"))
        << error;
    EXPECT_TRUE(nmt::testing::contains(error, "code/__torch__.py, line ")) << error;
  }
  const std::string bad_model = write_changed("model", "output_bias : Tensor", "output_bias = int");
  EXPECT_TRUE(nmt::testing::contains(load_error(bad_model), "part 'model': unexpected TorchScript"))
      << load_error(bad_model);
  const std::string bad_optimizer = write_changed("optimizer", "pytorch_version : str", "pytorch_version = str");
  auto ck = make_checkpoint();
  torch::optim::Adam adam(ck.model->parameters(), torch::optim::AdamOptions(1e-3));
  try {
    nmt::io::load_optimizer_state(bad_optimizer, adam, torch::kCPU);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(nmt::testing::contains(e.what(), bad_optimizer + ": invalid nmt checkpoint: part 'optimizer': "
                                                                 "unexpected TorchScript"))
        << e.what();
  }
}

// Found by tests/fuzz/fuzz_checkpoint: a state part whose zip record `version` claims an
// unsupported compression method (checksums recomputed). LibTorch's error names the record; the
// message carries neither LibTorch's C++ backtrace nor anything but one line.
TEST(Checkpoint, ACorruptArchiveIsOneLineNamingThePartWithoutLibTorchsBacktrace) {
  const std::string path =
      nmt::testing::source_path("tests/fuzz/corpus/checkpoint/regression-unsupported-zip-method.pt");
  const std::string error = load_error(path);
  EXPECT_TRUE(nmt::testing::contains(error, path + ": invalid nmt checkpoint: part 'state': ")) << error;
  EXPECT_TRUE(nmt::testing::contains(error, "version")) << error;
  EXPECT_FALSE(nmt::testing::contains(error, "Exception raised from")) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

// Found by tests/fuzz/fuzz_checkpoint: a changed string length in a part's pickle (checksums
// recomputed) made LibTorch's unpickler allocate the stated length (~1.9 GB there) before it found
// the record too short. The length is now checked against the record first: the error names the
// part and the record, and it is not LibTorch's "Unexpected end of pickler archive" after the
// allocation.
TEST(Checkpoint, AStringLengthPastTheEndOfAPickleIsRefusedBeforeLibTorchAllocatesIt) {
  TempDir dir;
  const std::string path = save_full_checkpoint(dir);
  const auto bytes = nmt::testing::read_text(path);
  const std::string key = "rng_cuda_count";  // a BINUNICODE string of the state's attribute dict
  std::string binunicode = "X";
  put_le(binunicode, key.size(), 4);
  binunicode += key;
  for (const bool one_byte_too_many : {false, true}) {  // ~2 GB, then the shortest length past the end
    uint64_t length = 0x7ffffff0;
    const std::string bad = dir.file(std::string("long-string-") + (one_byte_too_many ? "1" : "2G") + ".pt");
    std::ofstream(bad, std::ios::binary) << with_changed_part(bytes, "state", [&](const std::string& a) {
      return with_changed_record(a, "data.pkl", [&](std::string pickle) {
        const size_t at = pickle.find(binunicode);
        EXPECT_NE(at, std::string::npos) << "no BINUNICODE '" << key << "' in data.pkl";
        if (at == std::string::npos) return pickle;
        if (one_byte_too_many) length = pickle.size() - (at + 5) + 1;
        std::string changed = "X";
        put_le(changed, length, 4);
        return pickle.replace(at, 5, changed);
      });
    });
    const std::string error = load_error(bad);
    EXPECT_TRUE(nmt::testing::contains(error, bad + ": invalid nmt checkpoint: part 'state': corrupt data.pkl: a string of " +
                                                  std::to_string(length) + " bytes at byte "))
        << error;
    EXPECT_TRUE(nmt::testing::contains(error, "runs past its end")) << error;
  }
}

/// A full checkpoint saved in `dir` and written again as `file` with its part `part` changed by
/// `change` (checksums recomputed): that file's path and the error loading it gives.
std::pair<std::string, std::string> error_of_changed_part(const TempDir& dir, const std::string& file,
                                                          const std::string& part,
                                                          const std::function<std::string(const std::string&)>& change) {
  const auto bytes = nmt::testing::read_text(save_full_checkpoint(dir));
  const std::string bad = dir.file(file);
  std::ofstream(bad, std::ios::binary) << with_changed_part(bytes, part, change);
  return {bad, load_error(bad)};
}

/// A change of the model part: its data.pkl edited by `change(pickle, at)` in place, `at` the
/// byte after the first storage's location string 'cpu' (and its BINPUT), where the storage's
/// element count follows.
std::function<std::string(const std::string&)> change_first_storage(const std::function<void(std::string&, size_t)>& change) {
  return [change](const std::string& a) {
    return with_changed_record(a, "data.pkl", [&](std::string pickle) {
      const std::string cpu = std::string("X\x03\x00\x00\x00", 5) + "cpu";
      size_t at = pickle.find(cpu);
      EXPECT_NE(at, std::string::npos) << "no storage location in data.pkl";
      if (at == std::string::npos) return pickle;
      at += cpu.size();
      if (pickle[at] == 'q') at += 2;  // BINPUT
      change(pickle, at);
      return pickle;
    });
  };
}

TEST(Checkpoint, AStorageLargerThanItsRecordIsRefusedBeforeLibTorchReadsIt) {
  // LibTorch 1.13 sizes a storage by the element count in the pickle and fills it from the
  // record without comparing the two; every later read overran the record (a fuzz_checkpoint
  // finding: a storage key changed to a smaller tensor's record, under ASan in weights_digest).
  TempDir dir;
  int64_t numel = -1;
  const auto [bad, error] = error_of_changed_part(dir, "storage-past-record.pt", "model",
                                                  change_first_storage([&](std::string& pickle, size_t at) {
    ASSERT_EQ(pickle[at], 'K') << "the first storage's element count is not a BININT1";
    numel = static_cast<unsigned char>(pickle[at + 1]);
    pickle[at + 1] = static_cast<char>(numel + 1);  // one element more than the record holds
  }));
  EXPECT_TRUE(nmt::testing::contains(error, bad + ": invalid nmt checkpoint: part 'model': corrupt data.pkl: a storage of " +
                                                std::to_string(numel + 1) + " elements of 4 bytes in record data/0 of " +
                                                std::to_string(4 * numel) + " bytes"))
      << error;
  // A negative count (BININT −1) would be a storage of 2^64 − 4 bytes without data.
  const auto [negative, negative_error] = error_of_changed_part(dir, "storage-negative.pt", "model",
                                                                change_first_storage([](std::string& pickle, size_t at) {
    pickle.replace(at, 2, std::string("J\xff\xff\xff\xff", 5));
  }));
  EXPECT_TRUE(nmt::testing::contains(negative_error, negative + ": invalid nmt checkpoint: part 'model': corrupt data.pkl: "
                                                              "a storage of -1 elements at byte "))
      << negative_error;
}

TEST(Checkpoint, ATensorReachingPastItsStorageIsRefused) {
  // The pickle's storage offset, sizes and strides are taken as they come: an offset of 1 puts
  // the first tensor's last element one past its storage.
  TempDir dir;
  const auto [bad, error] = error_of_changed_part(dir, "tensor-past-storage.pt", "model",
                                                  change_first_storage([](std::string& pickle, size_t at) {
    // numel (BININT1), TUPLE, BINPERSID, BINPUT, then the storage offset: BININT1 0.
    at += 2;
    ASSERT_EQ(pickle.substr(at, 2), "tQ");
    at += 2;
    if (pickle[at] == 'q') at += 2;
    ASSERT_EQ(pickle.substr(at, 2), std::string("K\0", 2)) << "the first tensor's offset is not 0";
    pickle[at + 1] = 1;
  }));
  EXPECT_TRUE(nmt::testing::contains(error, bad + ": invalid nmt checkpoint: part 'model': tensor '")) << error;
  EXPECT_TRUE(nmt::testing::contains(error, "at offset 1) reaches past the end of its storage of ")) << error;
}

TEST(Checkpoint, AMemoIndexAsLargeAsThePickleIsRefusedBeforeLibTorchGrowsItsMemo) {
  // LibTorch 1.13's Unpickler grows its memo to a BINPUT's index without a bound: an index of
  // 671,107,869 made it allocate 10.7 GB (a fuzz_checkpoint finding).
  TempDir dir;
  const auto [bad, error] = error_of_changed_part(dir, "memo-index.pt", "model", [](const std::string& a) {
    return with_changed_record(a, "data.pkl", [](std::string pickle) {
      const size_t at = pickle.find(std::string("\nq\0", 3));  // the BINPUT 0 after the first GLOBAL
      EXPECT_NE(at, std::string::npos) << "no BINPUT 0 in data.pkl";
      if (at == std::string::npos) return pickle;
      return pickle.replace(at + 1, 2, std::string("r\x1d\x00\x00\x28", 5));  // LONG_BINPUT 671088669 (0x2800001d)
    });
  });
  EXPECT_TRUE(nmt::testing::contains(error, bad + ": invalid nmt checkpoint: part 'model': corrupt data.pkl: a memo index "
                                                "of 671088669 in a pickle of ")) << error;
}

TEST(Checkpoint, ARecordSizeOfFourGiBIsRefusedBeforeLibTorchAllocatesIt) {
  // LibTorch's zip reader allocates a record's stated size first: a size field of 0xffffffff
  // (zip64's marker) without a zip64 size was an allocation of 4 GiB (a fuzz_checkpoint finding).
  TempDir dir;
  const auto [bad, error] = error_of_changed_part(dir, "record-size.pt", "state", [](const std::string& a) {
    std::string zip = a;
    // The central directory entry of data.pkl: its uncompressed size (offset 24).
    for (size_t at = zip.find("PK\x01\x02"); at != std::string::npos; at = zip.find("PK\x01\x02", at + 4)) {
      const size_t name_len = le(zip, at + 28, 2);
      const std::string name = zip.substr(at + 46, name_len);
      if (name.size() >= 8 && name.compare(name.size() - 8, 8, "data.pkl") == 0) {
        zip.replace(at + 24, 4, std::string(4, '\xff'));
        return zip;
      }
    }
    ADD_FAILURE() << "no central directory entry for data.pkl";
    return zip;
  });
  EXPECT_TRUE(nmt::testing::contains(error, bad + ": invalid nmt checkpoint: part 'state': ")) << error;
  EXPECT_TRUE(nmt::testing::contains(error, "data.pkl has no zip64 size")) << error;
}

TEST(Checkpoint, APickleThatPopsAnEmptyStackIsRefused) {
  // LibTorch's Unpickler pops without checking (undefined behaviour on an empty stack).
  TempDir dir;
  const auto [bad, error] = error_of_changed_part(dir, "pops-empty-stack.pt", "model", [](const std::string& a) {
    return with_changed_record(a, "data.pkl", [](std::string pickle) {
      return pickle.substr(0, 2) + "\x85" + pickle.substr(2);  // PROTO 2, then TUPLE1 of nothing
    });
  });
  EXPECT_TRUE(nmt::testing::contains(error, bad + ": invalid nmt checkpoint: part 'model': corrupt data.pkl: an opcode "
                                                "that pops 1 of 0 values at byte 2")) << error;
}

}  // namespace

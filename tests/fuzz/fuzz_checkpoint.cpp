// libFuzzer target: the checkpoint loader on arbitrary bytes as a checkpoint file, as
// `nmt translate -m` and `nmt train --resume` load one: load_checkpoint() (container and
// checksums, stored config, both stored SentencePiece models, training state, weights), then
// load_optimizer_state() into an Adam optimizer over the loaded model, and both vocabularies
// encode and decode a sentence. The only accepted failure is a std::runtime_error that names the
// file.
//
// A changed byte almost always fails a checksum, which would keep the fuzzer at the container.
// The custom mutator below therefore recomputes, after libFuzzer's mutation, the checksums of a
// format-2 file whose part table still parses (7 mutations in 8), so that mutated bytes reach
// the parsers behind the checksums: yaml-cpp, SentencePiece's model loading, LibTorch's archive
// reader. The checksums themselves are fuzzed by the 8th.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adam.h>

#include "nmt/io/checkpoint.h"

namespace {

std::string g_path;

uint64_t get_le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
void put_le(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

/// Rewrites the checksums of the format-2 container in data[0, size) (layout: checkpoint.h),
/// as far as its part table parses.
void fix_checksums(uint8_t* data, size_t size) {
  if (size < 16 || std::memcmp(data, "NMTCKPT\n", 8) != 0) return;
  size_t pos = 12;
  const uint64_t count = get_le(data + pos, 4);
  pos += 4;
  if (count > 64) return;
  struct Part { size_t sum_at; uint64_t size; };
  std::vector<Part> parts;
  for (uint64_t i = 0; i < count; ++i) {
    if (pos + 4 > size) return;
    const uint64_t len = get_le(data + pos, 4);
    if (len > 64 || pos + 4 + len + 16 > size) return;
    pos += 4 + len;
    parts.push_back({pos + 8, get_le(data + pos, 8)});
    pos += 16;
  }
  if (pos + 8 > size) return;
  size_t at = pos + 8;
  for (const auto& p : parts) {
    if (p.size > size - at) break;
    put_le(data + p.sum_at, nmt::io::checksum64(data + at, p.size), 8);
    at += p.size;
  }
  put_le(data + pos, nmt::io::checksum64(data, pos), 8);
}

}  // namespace

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  size = LLVMFuzzerMutate(data, size, max_size);
  if (seed % 8 != 0) fix_checksums(data, size);
  return size;
}

// SentencePiece is dlopen'ed with RTLD_DEEPBIND (see vocab.cpp's open_library), so its operator
// new is libstdc++'s, calling malloc, while its operator delete may be ASan's: a false
// alloc-dealloc mismatch. Every other check stays on (but for the LibTorch leak below).
extern "C" const char* __asan_default_options() { return "alloc_dealloc_mismatch=0"; }

// LibTorch 1.13's PyTorchStreamReader leaks miniz's reader state (602 bytes in 4 blocks) when its
// constructor throws on a corrupt zip (e.g. a record with an unsupported compression method):
// the exception skips mz_zip_reader_end. That is LibTorch's own failure path, reached by every
// load of such a file, so leaks allocated inside libtorch_cpu are not reported. Tensors are
// allocated in libc10, so a leaked tensor of ours is still found.
extern "C" const char* __lsan_default_suppressions() { return "leak:libtorch_cpu.so\n"; }

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // format-1 warnings
  at::set_num_threads(1);
  const auto dir = std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                        : std::filesystem::temp_directory_path();
  g_path = (dir / ("nmt-fuzz-checkpoint-" + std::to_string(getpid()) + ".pt")).string();
  std::atexit([] { std::filesystem::remove(g_path); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::ofstream(g_path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  try {
    auto ck = nmt::io::load_checkpoint(g_path, torch::kCPU);
    nmt::io::weights_digest(*ck.model);
    for (const auto* vocab : {&ck.src_vocab, &ck.tgt_vocab}) {  // as translate and train use them
      const auto ids = vocab->encode("Zwei Hunde spielen im Schnee. ÄÖÜ ß ¼ Ａ");
      vocab->decode(ids);
    }
    torch::optim::Adam adam(ck.model->parameters());
    nmt::io::load_optimizer_state(g_path, adam, torch::kCPU);
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).find(g_path) == std::string::npos) __builtin_trap();
  }
  return 0;
}

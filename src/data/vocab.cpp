#include "nmt/data/vocab.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include <spdlog/spdlog.h>

#include "nmt/data/batch.h"
#include "nmt/data/spm_c_api.h"
#include "nmt/library_paths.h"

namespace nmt::data {
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// Loading libnmt_spm.so
// ---------------------------------------------------------------------------------------------

#if defined(__SANITIZE_ADDRESS__)
#define NMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NMT_ASAN 1
#endif
#endif

/// dlopen(), but under AddressSanitizer (the fuzz build, tests/fuzz) glibc's own: ASan's dlopen
/// refuses RTLD_DEEPBIND (google/sanitizers#611) because a deep-bound library calls glibc's
/// malloc instead of ASan's. That is harmless here: no memory changes owner across the shim's C
/// interface (every buffer it hands out is released by nmt_spm_free, inside the shim).
void* open_library(const char* path, int flags) {
#ifdef NMT_ASAN
  static const auto real = reinterpret_cast<void* (*)(const char*, int)>(dlsym(RTLD_NEXT, "dlopen"));
  return real(path, flags);
#else
  return dlopen(path, flags);
#endif
}

/// The shim's entry points, resolved once per process.
struct SpmApi {
  std::string path;
  decltype(&nmt_spm_free) free_ = nullptr;
  decltype(&nmt_spm_train) train = nullptr;
  decltype(&nmt_spm_load_file) load_file = nullptr;
  decltype(&nmt_spm_load_bytes) load_bytes = nullptr;
  decltype(&nmt_spm_destroy) destroy = nullptr;
  decltype(&nmt_spm_serialize) serialize = nullptr;
  decltype(&nmt_spm_piece_size) piece_size = nullptr;
  decltype(&nmt_spm_id_to_piece) id_to_piece = nullptr;
  decltype(&nmt_spm_piece_to_id) piece_to_id = nullptr;
  decltype(&nmt_spm_encode_ids) encode_ids = nullptr;
  decltype(&nmt_spm_encode_pieces) encode_pieces = nullptr;
  decltype(&nmt_spm_decode_ids) decode_ids = nullptr;
};

std::vector<std::string> candidate_paths() {
#ifdef NMT_SPM_BUILD_PATH
  return library_paths("NMT_SPM_LIB", "libnmt_spm.so", NMT_SPM_BUILD_PATH);
#else
  return library_paths("NMT_SPM_LIB", "libnmt_spm.so", "");
#endif
}

template <typename F>
void resolve(void* handle, const std::string& path, const char* name, F& fn) {
  dlerror();
  void* sym = dlsym(handle, name);
  if (!sym) {
    throw std::runtime_error("SentencePiece shim " + path + " lacks symbol " + name +
                             " (stale build? rebuild target nmt_spm)");
  }
  fn = reinterpret_cast<F>(sym);
}

SpmApi load_api() {
  std::ostringstream tried;
  for (const auto& path : candidate_paths()) {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      tried << "\n  " << path << ": no such file";
      continue;
    }
    // RTLD_LOCAL | RTLD_DEEPBIND: the shim and SentencePiece resolve their symbols (above all
    // protobuf) in their own scope first, never in LibTorch's protobuf, and export nothing to us.
    void* handle = open_library(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!handle) {
      const char* err = dlerror();
      tried << "\n  " << path << ": " << (err ? err : "dlopen failed");
      continue;
    }
    SpmApi api;
    api.path = path;
    decltype(&nmt_spm_abi_version) abi = nullptr;
    resolve(handle, path, "nmt_spm_abi_version", abi);
    if (abi() != NMT_SPM_ABI_VERSION) {
      tried << "\n  " << path << ": interface version " << abi() << ", expected "
            << NMT_SPM_ABI_VERSION << " (stale build)";
      continue;  // leave it loaded; harmless
    }
    resolve(handle, path, "nmt_spm_free", api.free_);
    resolve(handle, path, "nmt_spm_train", api.train);
    resolve(handle, path, "nmt_spm_load_file", api.load_file);
    resolve(handle, path, "nmt_spm_load_bytes", api.load_bytes);
    resolve(handle, path, "nmt_spm_destroy", api.destroy);
    resolve(handle, path, "nmt_spm_serialize", api.serialize);
    resolve(handle, path, "nmt_spm_piece_size", api.piece_size);
    resolve(handle, path, "nmt_spm_id_to_piece", api.id_to_piece);
    resolve(handle, path, "nmt_spm_piece_to_id", api.piece_to_id);
    resolve(handle, path, "nmt_spm_encode_ids", api.encode_ids);
    resolve(handle, path, "nmt_spm_encode_pieces", api.encode_pieces);
    resolve(handle, path, "nmt_spm_decode_ids", api.decode_ids);
    if (const char* env = std::getenv("NMT_SPM_LIB"); env && *env && path != env)
      spdlog::warn("NMT_SPM_LIB={} is unusable; loaded the SentencePiece shim from {} instead:{}",
                   env, path, tried.str());
    spdlog::debug("loaded SentencePiece shim {}", path);
    return api;
  }
  throw std::runtime_error(
      "cannot load the SentencePiece shim libnmt_spm.so; set NMT_SPM_LIB to its path. Tried:" +
      tried.str());
}

const SpmApi& api() {
  // Function-local static: initialised once, thread-safe; a failed load throws and is retried by
  // the next call.
  static const SpmApi instance = load_api();
  return instance;
}

/// Owns a malloc'ed buffer handed out by the shim.
struct ShimBuffer {
  void* p = nullptr;
  ShimBuffer() = default;
  explicit ShimBuffer(void* ptr) : p(ptr) {}
  ShimBuffer(const ShimBuffer&) = delete;
  ShimBuffer& operator=(const ShimBuffer&) = delete;
  ~ShimBuffer() {
    if (p) api().free_(p);
  }
};

/// Takes ownership of a shim error string and returns it as std::string.
std::string take_error(char* err) {
  ShimBuffer guard(err);
  return err ? std::string(err) : std::string("unknown error");
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Vocab
// ---------------------------------------------------------------------------------------------

struct Vocab::Impl {
  nmt_spm_model* model = nullptr;
  std::string bytes;
  std::string source;
  int64_t size = 0;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (model) api().destroy(model);
  }
};

namespace {

// ---------------------------------------------------------------------------------------------
// Checking a model's normalisation rules
// ---------------------------------------------------------------------------------------------
// SentencePiece 0.1.97 trusts a model's precompiled_charsmap (NormalizerSpec field 2: a uint32
// trie size, a Darts-clone double array, then NUL-terminated replacement strings): a changed byte
// there can make Normalizer::NormalizePrefix read outside it while encoding (SIGSEGV: issue 13's
// crash on a changed checkpoint byte, which checksums now catch, but not in a crafted file or a
// .model file). So before a model is used, every path a lookup can take through the double array
// is checked to stay inside it, and every replacement offset to point at a NUL-terminated string
// inside the string area.

/// Reads a protobuf varint at `p` (advanced); false past `end` or after 10 bytes.
bool read_varint(const unsigned char*& p, const unsigned char* end, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70 && p < end; shift += 7) {
    const unsigned char c = *p++;
    v |= static_cast<uint64_t>(c & 0x7f) << shift;
    if (c < 0x80) return true;
  }
  return false;
}

/// Calls `f(field, bytes)` for every length-delimited field of the protobuf message `msg`.
/// Throws std::runtime_error when the message is not well-formed wire format.
template <class F>
void for_each_bytes_field(std::string_view msg, F&& f) {
  const auto* p = reinterpret_cast<const unsigned char*>(msg.data());
  const auto* end = p + msg.size();
  while (p < end) {
    uint64_t key, n = 0;
    if (!read_varint(p, end, key)) throw std::runtime_error("malformed model (a broken field key)");
    const uint64_t type = key & 7;
    if (type == 0) {
      if (!read_varint(p, end, n)) throw std::runtime_error("malformed model (a broken number)");
      continue;
    }
    if (type == 1) {
      n = 8;
    } else if (type == 5) {
      n = 4;
    } else if (type != 2) {
      throw std::runtime_error("malformed model (wire type " + std::to_string(type) + ")");
    } else if (!read_varint(p, end, n)) {
      throw std::runtime_error("malformed model (a broken length)");
    }
    if (n > static_cast<uint64_t>(end - p)) throw std::runtime_error("malformed model (a field past its end)");
    if (type == 2) f(key >> 3, std::string_view(reinterpret_cast<const char*>(p), n));
    p += n;
  }
}

/// Throws std::runtime_error saying what is wrong when Darts-clone lookups (commonPrefixSearch,
/// as in SentencePiece's normaliser) in the precompiled charsmap `blob` could read outside it.
void check_charsmap(std::string_view blob) {
  uint32_t trie_bytes = 0;
  if (blob.size() <= 4) return;  // SentencePiece refuses such a blob itself
  std::memcpy(&trie_bytes, blob.data(), 4);
  if (trie_bytes >= blob.size() - 4) return;  // refused by SentencePiece too ("exceeds the blob")
  const size_t n = trie_bytes / 4;            // double-array units
  const std::string_view strings = blob.substr(4 + trie_bytes);
  auto unit = [&](size_t i) {
    uint32_t u;
    std::memcpy(&u, blob.data() + 4 + 4 * i, 4);
    return u;
  };
  auto offset = [](uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); };
  auto label = [](uint32_t u) { return u & ((1u << 31) | 0xFF); };
  auto bad = [](const std::string& what) { throw std::runtime_error("corrupt normalisation rules (" + what + ")"); };
  if (n == 0) bad("an empty trie");
  // A lookup at node position p reads unit p ^ c for the next byte c (any of 0..255); a unit with
  // that label moves it to position (p ^ c) ^ offset, where a leaf's value unit lies.
  std::vector<char> seen(n, 0);
  std::vector<size_t> todo{static_cast<size_t>(offset(unit(0)))};
  while (!todo.empty()) {
    const size_t pos = todo.back();
    todo.pop_back();
    if ((pos | 0xFF) >= n) bad("a trie node outside the trie");
    if (seen[pos]) continue;
    seen[pos] = 1;
    for (uint32_t c = 0; c < 256; ++c) {
      const uint32_t u = unit(pos ^ c);
      if (label(u) != c) continue;
      const size_t next = (pos ^ c) ^ offset(u);
      if ((u >> 8) & 1) {  // has a leaf: the value unit at `next` is an offset into the strings
        if (next >= n) bad("a trie leaf outside the trie");
        const uint32_t value = unit(next) & ((1u << 31) - 1);
        if (value >= strings.size() || strings.find('\0', value) == std::string_view::npos)
          bad("a replacement outside the string area");
      }
      todo.push_back(next);
    }
  }
}

/// Checks the normalisation rules (normalizer_spec and denormalizer_spec) of the serialized
/// ModelProto `model`; throws std::runtime_error naming `source` and the problem.
void check_normalizers(const std::string& model, const std::string& source) {
  try {
    for_each_bytes_field(model, [](uint64_t field, std::string_view spec) {
      if (field != 3 && field != 5) return;  // ModelProto.normalizer_spec, denormalizer_spec
      for_each_bytes_field(spec, [](uint64_t f, std::string_view charsmap) {
        if (f == 2) check_charsmap(charsmap);  // NormalizerSpec.precompiled_charsmap
      });
    });
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("SentencePiece model " + source + ": " + e.what());
  }
}

void check_special_ids(const Vocab& v, const std::string& source) {
  if (v.size() < 4 || v.piece(kUnk) != "<unk>" || v.piece(kBos) != "<s>" ||
      v.piece(kEos) != "</s>") {
    spdlog::warn(
        "SentencePiece model {} does not use nmt's special ids (pad=0, unk=1, bos=2, eos=3); "
        "pieces 0..3 are '{}' '{}' '{}' '{}'",
        source, v.size() > 0 ? v.piece(0) : "", v.size() > 1 ? v.piece(1) : "",
        v.size() > 2 ? v.piece(2) : "", v.size() > 3 ? v.piece(3) : "");
  }
}
}  // namespace

Vocab Vocab::load(const std::string& model_file) {
  const SpmApi& a = api();
  std::error_code ec;
  if (!fs::is_regular_file(model_file, ec))
    throw std::runtime_error("SentencePiece model file not found: " + model_file);
  auto impl = std::make_shared<Impl>();
  char* err = nullptr;
  if (a.load_file(model_file.c_str(), &impl->model, &err) != 0)
    throw std::runtime_error("cannot load SentencePiece model " + model_file + ": " +
                             take_error(err));
  char* bytes = nullptr;
  size_t n = 0;
  if (a.serialize(impl->model, &bytes, &n, &err) != 0)
    throw std::runtime_error("cannot serialize SentencePiece model " + model_file + ": " +
                             take_error(err));
  ShimBuffer guard(bytes);
  impl->bytes.assign(bytes, n);
  impl->source = model_file;
  check_normalizers(impl->bytes, model_file);
  impl->size = a.piece_size(impl->model);
  Vocab v(std::move(impl));
  check_special_ids(v, model_file);
  spdlog::debug("loaded SentencePiece model {} ({} pieces)", model_file, v.size());
  return v;
}

Vocab Vocab::from_bytes(std::string serialized) {
  const SpmApi& a = api();
  auto impl = std::make_shared<Impl>();
  char* err = nullptr;
  if (serialized.empty() ||
      a.load_bytes(serialized.data(), serialized.size(), &impl->model, &err) != 0)
    throw std::runtime_error("cannot load SentencePiece model from " +
                             std::to_string(serialized.size()) +
                             " serialized bytes: " + (err ? take_error(err) : "empty input"));
  impl->bytes = std::move(serialized);
  impl->source = "<bytes>";
  check_normalizers(impl->bytes, "<bytes>");
  impl->size = a.piece_size(impl->model);
  Vocab v(std::move(impl));
  check_special_ids(v, "<bytes>");
  return v;
}

const Vocab::Impl& Vocab::impl() const {
  if (!impl_) throw std::logic_error("nmt::data::Vocab: used before a model was loaded");
  return *impl_;
}

std::vector<int64_t> Vocab::encode(const std::string& text) const {
  return std::move(encode_batch({text}, 1).front());
}

std::vector<std::vector<int64_t>> Vocab::encode_batch(const std::vector<std::string>& texts,
                                                      int num_threads) const {
  const Impl& m = impl();
  if (texts.empty()) return {};
  if (num_threads <= 0) num_threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<const char*> ptrs(texts.size());
  std::vector<size_t> lens(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    ptrs[i] = texts[i].data();
    lens[i] = texts[i].size();
  }
  int32_t* ids = nullptr;
  size_t* offsets = nullptr;
  char* err = nullptr;
  if (api().encode_ids(m.model, ptrs.data(), lens.data(), texts.size(), num_threads, &ids,
                       &offsets, &err) != 0)
    throw std::runtime_error("SentencePiece encode failed (" + m.source + "): " + take_error(err));
  ShimBuffer g1(ids), g2(offsets);
  std::vector<std::vector<int64_t>> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) out[i].assign(ids + offsets[i], ids + offsets[i + 1]);
  return out;
}

std::vector<std::string> Vocab::encode_pieces(const std::string& text) const {
  const Impl& m = impl();
  char* buf = nullptr;
  size_t size = 0, count = 0;
  char* err = nullptr;
  if (api().encode_pieces(m.model, text.data(), text.size(), &buf, &size, &count, &err) != 0)
    throw std::runtime_error("SentencePiece encode failed (" + m.source + "): " + take_error(err));
  ShimBuffer guard(buf);
  std::vector<std::string> out;
  out.reserve(count);
  for (size_t pos = 0; pos < size;) {
    out.emplace_back(buf + pos);
    pos += out.back().size() + 1;
  }
  return out;
}

std::string Vocab::decode(const std::vector<int64_t>& ids) const {
  const Impl& m = impl();
  std::vector<int32_t> kept;
  kept.reserve(ids.size());
  for (int64_t id : ids) {
    if (id == kPad || id == kBos || id == kEos) continue;
    if (id < 0 || id >= m.size)
      throw std::out_of_range("Vocab::decode: id " + std::to_string(id) + " outside [0, " +
                              std::to_string(m.size) + ")");
    kept.push_back(static_cast<int32_t>(id));
  }
  char* text = nullptr;
  size_t size = 0;
  char* err = nullptr;
  if (api().decode_ids(m.model, kept.data(), kept.size(), &text, &size, &err) != 0)
    throw std::runtime_error("SentencePiece decode failed (" + m.source + "): " + take_error(err));
  ShimBuffer guard(text);
  return std::string(text, size);
}

int64_t Vocab::size() const { return impl().size; }

std::string Vocab::piece(int64_t id) const {
  const Impl& m = impl();
  if (id < 0 || id >= m.size)
    throw std::out_of_range("Vocab::piece: id " + std::to_string(id) + " outside [0, " +
                            std::to_string(m.size) + ")");
  char* p = nullptr;
  char* err = nullptr;
  if (api().id_to_piece(m.model, static_cast<int32_t>(id), &p, &err) != 0)
    throw std::runtime_error("SentencePiece id_to_piece failed: " + take_error(err));
  ShimBuffer guard(p);
  return std::string(p);
}

int64_t Vocab::piece_to_id(const std::string& piece) const {
  return api().piece_to_id(impl().model, piece.data(), piece.size());
}

const std::string& Vocab::bytes() const { return impl().bytes; }

const std::string& Vocab::source() const { return impl().source; }

std::string spm_library_path() { return api().path; }

// ---------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------

void train_sentencepiece(const SpmTrainOptions& o) {
  const std::string files = join(o.input_files, ", ");
  auto fail = [&](const std::string& why) {
    throw std::runtime_error("SentencePiece training on [" + files + "] failed: " + why);
  };
  if (o.input_files.empty()) fail("no input files given");
  for (const auto& f : o.input_files) {
    std::ifstream probe(f);
    if (!probe) fail("cannot read input file " + f);
    if (f.find(',') != std::string::npos)
      fail("input file name contains a comma (SentencePiece splits its input list on commas): " +
           f);
  }
  if (o.model_prefix.empty()) fail("model_prefix is empty");
  if (o.vocab_size < 5) fail("vocab_size must be at least 5, got " + std::to_string(o.vocab_size));
  if (const fs::path parent = fs::path(o.model_prefix).parent_path(); !parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) fail("cannot create directory " + parent.string() + ": " + ec.message());
  }

  std::vector<std::pair<std::string, std::string>> kw = {
      {"input", join(o.input_files, ",")},
      {"model_prefix", o.model_prefix},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"model_type", o.model_type},
      {"character_coverage", std::to_string(o.character_coverage)},
      {"input_sentence_size", std::to_string(o.input_sentence_size)},
      {"shuffle_input_sentence", "true"},
      {"num_threads", std::to_string(std::max(1, o.num_threads))},
      {"hard_vocab_limit", o.hard_vocab_limit ? "true" : "false"},
      {"pad_id", std::to_string(kPad)},
      {"unk_id", std::to_string(kUnk)},
      {"bos_id", std::to_string(kBos)},
      {"eos_id", std::to_string(kEos)},
      {"pad_piece", "<pad>"},
      {"unk_piece", "<unk>"},
      {"bos_piece", "<s>"},
      {"eos_piece", "</s>"},
      {"minloglevel", o.verbose ? "0" : "1"},
  };
  for (const auto& [key, value] : o.extra) {
    for (const auto& [fixed, unused] : kw)
      if (key == fixed) fail("option '" + key + "' may not be set through SpmTrainOptions::extra");
    kw.emplace_back(key, value);
  }
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : kw) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  spdlog::info("training SentencePiece {} model ({} pieces) on {} -> {}.model", o.model_type,
               o.vocab_size, files, o.model_prefix);
  char* err = nullptr;
  if (api().train(keys.data(), values.data(), keys.size(), &err) != 0) {
    std::string msg = take_error(err);
    if (msg.find("Vocabulary size too high") != std::string::npos)
      msg += " — the corpus is too small for vocab_size=" + std::to_string(o.vocab_size) +
             "; use a smaller vocab_size or hard_vocab_limit=false";
    else if (msg.find("Vocabulary size is smaller than required_chars") != std::string::npos)
      msg += " — vocab_size=" + std::to_string(o.vocab_size) +
             " cannot even hold every character of the corpus; raise vocab_size or lower "
             "character_coverage";
    fail(msg);
  }
}

}  // namespace nmt::data

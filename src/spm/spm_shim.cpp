// libnmt_spm.so: the only code in nmt that links SentencePiece (and, through it, SentencePiece's
// private protobuf-lite 3.14). It exposes the C interface of include/nmt/data/spm_c_api.h and is
// loaded by src/data/vocab.cpp with dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND), so that its
// protobuf never shares a symbol scope with LibTorch's protobuf 3.21. No LibTorch here.
#include "nmt/data/spm_c_api.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#define NMT_SPM_EXPORT extern "C" __attribute__((visibility("default")))

struct nmt_spm_model {
  sentencepiece::SentencePieceProcessor sp;
};

namespace {

char* dup_string(const std::string& s) {
  char* p = static_cast<char*>(std::malloc(s.size() + 1));
  if (p) {
    std::memcpy(p, s.data(), s.size());
    p[s.size()] = '\0';
  }
  return p;
}

int fail(char** error, const std::string& message) {
  if (error) *error = dup_string(message);
  return 1;
}

template <typename T>
T* alloc_array(size_t n) {
  return static_cast<T*>(std::malloc(std::max<size_t>(n, 1) * sizeof(T)));
}

// Runs `body`, turning any exception into an error string.
template <typename F>
int guarded(char** error, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return fail(error, std::string("SentencePiece shim: ") + e.what());
  } catch (...) {
    return fail(error, "SentencePiece shim: unknown exception");
  }
}

}  // namespace

NMT_SPM_EXPORT int nmt_spm_abi_version(void) { return NMT_SPM_ABI_VERSION; }

NMT_SPM_EXPORT void nmt_spm_free(void* p) { std::free(p); }

NMT_SPM_EXPORT int nmt_spm_train(const char* const* keys, const char* const* values, size_t n,
                                 char** error) {
  return guarded(error, [&] {
    std::unordered_map<std::string, std::string> kwargs;
    for (size_t i = 0; i < n; ++i) kwargs[keys[i]] = values[i];
    const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs);
    if (!status.ok()) return fail(error, status.ToString());
    return 0;
  });
}

NMT_SPM_EXPORT int nmt_spm_load_file(const char* path, nmt_spm_model** out, char** error) {
  return guarded(error, [&] {
    auto m = std::make_unique<nmt_spm_model>();
    const auto status = m->sp.Load(path);
    if (!status.ok()) return fail(error, status.ToString());
    *out = m.release();
    return 0;
  });
}

NMT_SPM_EXPORT int nmt_spm_load_bytes(const char* data, size_t size, nmt_spm_model** out,
                                      char** error) {
  return guarded(error, [&] {
    auto m = std::make_unique<nmt_spm_model>();
    const auto status = m->sp.LoadFromSerializedProto(std::string_view(data, size));
    if (!status.ok()) return fail(error, status.ToString());
    *out = m.release();
    return 0;
  });
}

NMT_SPM_EXPORT void nmt_spm_destroy(nmt_spm_model* m) { delete m; }

NMT_SPM_EXPORT int nmt_spm_serialize(const nmt_spm_model* m, char** bytes, size_t* size,
                                     char** error) {
  return guarded(error, [&] {
    const std::string s = m->sp.serialized_model_proto();
    if (s.empty()) return fail(error, "model is not loaded");
    char* p = alloc_array<char>(s.size());
    if (!p) return fail(error, "out of memory");
    std::memcpy(p, s.data(), s.size());
    *bytes = p;
    *size = s.size();
    return 0;
  });
}

NMT_SPM_EXPORT int32_t nmt_spm_piece_size(const nmt_spm_model* m) { return m->sp.GetPieceSize(); }

NMT_SPM_EXPORT int nmt_spm_id_to_piece(const nmt_spm_model* m, int32_t id, char** piece,
                                       char** error) {
  return guarded(error, [&] {
    if (id < 0 || id >= m->sp.GetPieceSize())
      return fail(error, "piece id " + std::to_string(id) + " out of range [0, " +
                             std::to_string(m->sp.GetPieceSize()) + ")");
    *piece = dup_string(m->sp.IdToPiece(id));
    return 0;
  });
}

NMT_SPM_EXPORT int32_t nmt_spm_piece_to_id(const nmt_spm_model* m, const char* piece, size_t len) {
  try {
    return m->sp.PieceToId(std::string_view(piece, len));
  } catch (...) {
    return m->sp.unk_id();
  }
}

NMT_SPM_EXPORT int nmt_spm_encode_ids(const nmt_spm_model* m, const char* const* texts,
                                      const size_t* lens, size_t n, int num_threads,
                                      int32_t** ids, size_t** offsets, char** error) {
  return guarded(error, [&] {
    std::vector<std::vector<int>> encoded(n);
    const size_t threads =
        std::max<size_t>(1, std::min<size_t>(num_threads > 0 ? num_threads : 1, n / 256 + 1));
    std::vector<std::string> errors(threads);
    auto work = [&](size_t t) {
      try {
        for (size_t i = t; i < n; i += threads) {
          const auto status = m->sp.Encode(std::string_view(texts[i], lens[i]), &encoded[i]);
          if (!status.ok()) {
            errors[t] = "text " + std::to_string(i) + ": " + status.ToString();
            return;
          }
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    };
    if (threads == 1) {
      work(0);
    } else {
      std::vector<std::thread> pool;
      for (size_t t = 0; t < threads; ++t) pool.emplace_back(work, t);
      for (auto& th : pool) th.join();
    }
    for (const auto& e : errors)
      if (!e.empty()) return fail(error, e);

    size_t total = 0;
    for (const auto& v : encoded) total += v.size();
    int32_t* flat = alloc_array<int32_t>(total);
    size_t* offs = alloc_array<size_t>(n + 1);
    if (!flat || !offs) {
      std::free(flat);
      std::free(offs);
      return fail(error, "out of memory");
    }
    size_t pos = 0;
    for (size_t i = 0; i < n; ++i) {
      offs[i] = pos;
      for (int id : encoded[i]) flat[pos++] = id;
    }
    offs[n] = pos;
    *ids = flat;
    *offsets = offs;
    return 0;
  });
}

NMT_SPM_EXPORT int nmt_spm_encode_pieces(const nmt_spm_model* m, const char* text, size_t len,
                                         char** pieces, size_t* size, size_t* count,
                                         char** error) {
  return guarded(error, [&] {
    std::vector<std::string> out;
    const auto status = m->sp.Encode(std::string_view(text, len), &out);
    if (!status.ok()) return fail(error, status.ToString());
    size_t total = 0;
    for (const auto& p : out) total += p.size() + 1;
    char* buf = alloc_array<char>(total);
    if (!buf) return fail(error, "out of memory");
    size_t pos = 0;
    for (const auto& p : out) {
      std::memcpy(buf + pos, p.data(), p.size());
      pos += p.size();
      buf[pos++] = '\0';
    }
    *pieces = buf;
    *size = total;
    *count = out.size();
    return 0;
  });
}

NMT_SPM_EXPORT int nmt_spm_decode_ids(const nmt_spm_model* m, const int32_t* ids, size_t n,
                                      char** text, size_t* size, char** error) {
  return guarded(error, [&] {
    std::vector<int> v(ids, ids + n);
    std::string out;
    const auto status = m->sp.Decode(v, &out);
    if (!status.ok()) return fail(error, status.ToString());
    *text = dup_string(out);
    if (!*text) return fail(error, "out of memory");
    *size = out.size();
    return 0;
  });
}

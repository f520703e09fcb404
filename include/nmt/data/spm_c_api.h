#pragma once
/// @file spm_c_api.h
/// The narrow C interface of `libnmt_spm.so` (src/spm/spm_shim.cpp), the only code in nmt that
/// links SentencePiece. Debian's libsentencepiece carries a private protobuf 3.14 that clashes with
/// the protobuf 3.21 LibTorch loads, so the shim is loaded with
/// `dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)` by nmt::data::Vocab (vocab.cpp) and never linked
/// into an executable. Application code uses nmt::data::Vocab, not this header.
///
/// Conventions:
///  - Only C types cross the boundary; no C++ exception ever leaves a function.
///  - Functions return 0 on success, non-zero on failure; on failure `*error` (when `error` is not
///    NULL) receives a malloc'ed, NUL-terminated message that the caller releases with
///    nmt_spm_free().
///  - Every buffer handed out (`*ids`, `*offsets`, `*bytes`, `*text`, error strings) is allocated
///    by the shim and released with nmt_spm_free().
///  - A handle may be used from several threads at once for encoding/decoding (SentencePiece's
///    processor is const-thread-safe); nmt_spm_destroy must not race with other calls.
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Version of this interface; bumped on any incompatible change. The loader checks it.
#define NMT_SPM_ABI_VERSION 1

/// Opaque handle to a loaded SentencePiece model.
typedef struct nmt_spm_model nmt_spm_model;

/// Returns NMT_SPM_ABI_VERSION as compiled into the shim.
int nmt_spm_abi_version(void);

/// Releases any buffer the shim handed out (NULL is allowed).
void nmt_spm_free(void* p);

/// Trains a model with SentencePieceTrainer::Train(kwargs): `n` key/value pairs such as
/// {"input", "a.txt,b.txt"}, {"model_prefix", "/tmp/m"}, {"vocab_size", "8000"}. Writes
/// <model_prefix>.model and <model_prefix>.vocab.
int nmt_spm_train(const char* const* keys, const char* const* values, size_t n, char** error);

/// Loads a model from a `.model` file.
int nmt_spm_load_file(const char* path, nmt_spm_model** out, char** error);

/// Loads a model from its serialized ModelProto bytes (`size` bytes at `data`).
int nmt_spm_load_bytes(const char* data, size_t size, nmt_spm_model** out, char** error);

/// Destroys a handle (NULL is allowed).
void nmt_spm_destroy(nmt_spm_model* m);

/// Serializes the model (the bytes of a `.model` file).
int nmt_spm_serialize(const nmt_spm_model* m, char** bytes, size_t* size, char** error);

/// Number of pieces (the vocabulary size).
int32_t nmt_spm_piece_size(const nmt_spm_model* m);

/// Copies piece `id` into a malloc'ed NUL-terminated string. Fails when id is out of range.
int nmt_spm_id_to_piece(const nmt_spm_model* m, int32_t id, char** piece, char** error);

/// Id of `piece` (the unk id when the piece is unknown).
int32_t nmt_spm_piece_to_id(const nmt_spm_model* m, const char* piece, size_t len);

/// Encodes `n` texts (text i is `lens[i]` bytes at `texts[i]`, need not be NUL-terminated) into one
/// flat id array: the ids of text i are `(*ids)[(*offsets)[i] .. (*offsets)[i+1])`; `*offsets` has
/// n+1 entries. No BOS/EOS is added. `num_threads` > 1 splits the texts over that many threads.
int nmt_spm_encode_ids(const nmt_spm_model* m, const char* const* texts, const size_t* lens,
                       size_t n, int num_threads, int32_t** ids, size_t** offsets, char** error);

/// Encodes one text into pieces, returned as one buffer of NUL-terminated strings laid end to
/// end: `*count` pieces, `*size` bytes in total.
int nmt_spm_encode_pieces(const nmt_spm_model* m, const char* text, size_t len, char** pieces,
                          size_t* size, size_t* count, char** error);

/// Decodes `n` ids into a malloc'ed NUL-terminated string (`*size` bytes without the NUL).
int nmt_spm_decode_ids(const nmt_spm_model* m, const int32_t* ids, size_t n, char** text,
                       size_t* size, char** error);

#ifdef __cplusplus
}  // extern "C"
#endif

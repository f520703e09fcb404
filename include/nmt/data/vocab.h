#pragma once
/// @file vocab.h
/// SentencePiece subword vocabulary (training, encoding, decoding).
///
/// SentencePiece lives in a separate shared library, `libnmt_spm.so`, which this class loads with
/// `dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)` once per process (Debian's SentencePiece and
/// LibTorch carry clashing protobuf copies; see README, "SentencePiece isolation"). The library is
/// looked for, in order, at:
///   1. the path in the environment variable `NMT_SPM_LIB`, if set;
///   2. `libnmt_spm.so` next to the running executable (`/proc/self/exe`);
///   3. the build-tree path `NMT_SPM_BUILD_PATH` compiled in by CMake;
///   4. `/usr/local/lib/nmt/libnmt_spm.so`.
/// If none loads, std::runtime_error lists every place tried and why it failed.
///
/// Every model nmt trains has the reserved ids of batch.h: pad=0 (`<pad>`), unk=1 (`<unk>`),
/// bos=2 (`<s>`), eos=3 (`</s>`).
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace nmt::data {

/// Options for train_sentencepiece(). Special ids are not configurable (always pad=0, unk=1,
/// bos=2, eos=3).
struct SpmTrainOptions {
  std::vector<std::string> input_files;  ///< plain text, one sentence per line (joint vocab: both sides)
  std::string model_prefix;              ///< writes <model_prefix>.model and <model_prefix>.vocab
  int vocab_size = 8000;
  std::string model_type = "unigram";    ///< "unigram", "bpe", "char" or "word"
  double character_coverage = 1.0;
  int64_t input_sentence_size = 0;       ///< sample at most this many sentences (0 = all)
  int num_threads = 1;
  /// false lets SentencePiece produce fewer than vocab_size pieces when the corpus is too small
  /// (unigram only); true (the default) makes a too-large vocab_size an error.
  bool hard_vocab_limit = true;
  bool verbose = false;                  ///< SentencePiece's own progress log to stderr
  /// Further SentencePiece trainer flags, e.g. {"split_digits", "true"}; may not override the
  /// special ids, input, model_prefix or the fields above.
  std::vector<std::pair<std::string, std::string>> extra;
};

/// Trains a SentencePiece model. Throws std::runtime_error (naming the input files) when an input
/// file is missing or training fails; a vocab_size too large for the corpus gets a message saying
/// so and suggesting a smaller vocab_size or hard_vocab_limit=false.
void train_sentencepiece(const SpmTrainOptions& options);

/// A loaded SentencePiece model. Cheap to copy (shared, immutable handle); safe to use from several
/// threads at once. A default-constructed Vocab is empty: every method but valid() throws
/// std::logic_error.
class Vocab {
 public:
  Vocab() = default;

  /// Loads a `.model` file. Throws std::runtime_error naming the file.
  static Vocab load(const std::string& model_file);
  /// Loads from serialized model bytes (the content of a `.model` file, e.g. taken from a
  /// checkpoint). Throws std::runtime_error when the bytes are not a model.
  static Vocab from_bytes(std::string serialized);

  bool valid() const { return static_cast<bool>(impl_); }

  /// Subword ids of `text`, without BOS/EOS. SentencePiece normalises the text first (NFKC,
  /// whitespace collapsed); characters it does not know map to kUnk.
  std::vector<int64_t> encode(const std::string& text) const;
  /// encode() of many texts in one call through the shim (and `num_threads` threads; 0 = all
  /// hardware threads). Result i belongs to texts[i].
  std::vector<std::vector<int64_t>> encode_batch(const std::vector<std::string>& texts,
                                                 int num_threads = 0) const;
  /// Subword pieces of `text` (e.g. "▁ein", "▁Hund").
  std::vector<std::string> encode_pieces(const std::string& text) const;
  /// Text of `ids`; kPad, kBos and kEos are skipped. Throws std::out_of_range on an id outside
  /// [0, size()).
  std::string decode(const std::vector<int64_t>& ids) const;

  /// Number of pieces, special ones included.
  int64_t size() const;
  /// Piece of `id`. Throws std::out_of_range on an id outside [0, size()).
  std::string piece(int64_t id) const;
  /// Id of `piece`, or kUnk when it is not in the vocabulary.
  int64_t piece_to_id(const std::string& piece) const;

  /// The serialized model (exactly what from_bytes() accepts), for embedding in checkpoints.
  const std::string& bytes() const;
  /// Where the model came from: the file name, or "<bytes>".
  const std::string& source() const;

 private:
  struct Impl;
  explicit Vocab(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  const Impl& impl() const;
  std::shared_ptr<const Impl> impl_;
};

/// Path of the loaded libnmt_spm.so (loads it if needed; throws std::runtime_error if it cannot).
std::string spm_library_path();

}  // namespace nmt::data

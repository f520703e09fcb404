#pragma once
/// @file translation_api.h
/// The JSON API of `nmt serve` apart from HTTP: reading and checking the body of a
/// POST /translate request, encoding its sentences within the server's limits, and writing the
/// answer. Request: {"text": ["sentence", ...], "beam": K, "n_best": N, "scores": bool,
/// "attention": bool} (all but "text" optional). Answer: {"translations": [...]} with one entry
/// per sentence: its translation, or with "scores" {"text", "score"}, or with "n_best" a list of
/// N {"text", "score"} best first; with "attention" also {"attention": [...]}, per sentence the
/// alignment of its best translation (see translate_response).
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "nmt/data/vocab.h"
#include "nmt/serve/batcher.h"

namespace nmt::cli {

/// What one request may ask for (options of `nmt serve`).
struct ServeLimits {
  size_t max_body_bytes = 1 << 20;   ///< bytes of a request body
  size_t max_sentences = 64;         ///< sentences in one request
  size_t max_sentence_tokens = 256;  ///< subword tokens of one source sentence (EOS not counted)
  int max_beam = 16;                 ///< largest "beam" a request may ask for
};

/// A request the server refuses: `status` is its HTTP status (400: malformed or wrong types,
/// 413: over a limit) and what() says what was wrong, for the {"error": ...} body.
class RequestError : public std::runtime_error {
 public:
  RequestError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

/// A checked POST /translate request.
struct TranslateRequest {
  std::vector<std::string> text;  ///< source sentences, raw
  serve::DecodeOptions options;   ///< beam, n-best and attention as asked (defaults filled in)
  bool n_best_lists = false;      ///< "n_best" was given: answer lists of {"text", "score"}
  bool scores = false;            ///< "scores": answer {"text", "score"} for each 1-best
};

/// Parses a request body. "beam" defaults to `default_beam`, "n_best" to 1. Throws
/// RequestError 400 for malformed JSON, a body that is not an object, an unknown field, a
/// missing "text" or one that is not a list of strings (naming the first bad element), an
/// option of the wrong type, "beam" outside [1, max_beam], "n_best" outside [1, beam]; 413 for
/// more than max_sentences sentences.
TranslateRequest parse_translate_request(const std::string& body, const ServeLimits& limits, int default_beam);

/// The subword ids (without EOS) of each sentence. Throws RequestError 413 naming the first
/// sentence longer than max_sentence_tokens tokens.
serve::Sentences encode_sources(const std::vector<std::string>& text, const data::Vocab& src_vocab,
                                const ServeLimits& limits);

/// The answer body for `request`, whose sentences encoded to `sources` and were translated to
/// `results` (one n-best list per sentence, best first). With options.attention, "attention"
/// holds per sentence {"source": pieces, "target": pieces, "weights": rows} for its best
/// hypothesis: source pieces and "</s>" (|x|+1 columns), target pieces and "</s>" (one row per
/// output step; no "</s>" row when the output was cut at the maximum length), each row the
/// attention weights over the source positions; null for an empty sentence.
std::string translate_response(const TranslateRequest& request, const serve::Sentences& sources,
                               const serve::NBestLists& results, const data::Vocab& src_vocab,
                               const data::Vocab& tgt_vocab);

/// {"error": message}, as every refused request is answered.
std::string error_body(const std::string& message);

}  // namespace nmt::cli

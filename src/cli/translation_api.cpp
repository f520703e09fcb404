#include "nmt/cli/translation_api.h"

#include <nlohmann/json.hpp>

#include "nmt/cli/alignment_pictures.h"

namespace nmt::cli {
namespace {

using nlohmann::json;

RequestError bad_request(const std::string& message) { return RequestError(400, message); }

/// nlohmann's what() without its "[json.exception.parse_error.101] " prefix.
std::string without_exception_id(const std::string& what) {
  const auto end = what.find("] ");
  return what.rfind("[json.exception.", 0) == 0 && end != std::string::npos ? what.substr(end + 2) : what;
}

/// An integer field in [lo, hi] (a bool or a float is not an integer).
int integer_field(const json& body, const char* name, int lo, int hi, const std::string& range) {
  const json& v = body.at(name);
  if (!v.is_number_integer())
    throw bad_request(std::string("\"") + name + "\" must be an integer, got " + v.dump());
  const auto n = v.get<int64_t>();
  if (n < lo || n > hi)
    throw bad_request(std::string("\"") + name + "\" must be " + range + ", got " + std::to_string(n));
  return static_cast<int>(n);
}

bool bool_field(const json& body, const char* name) {
  const json& v = body.at(name);
  if (!v.is_boolean()) throw bad_request(std::string("\"") + name + "\" must be true or false, got " + v.dump());
  return v.get<bool>();
}

json scored(const std::string& text, double score) { return {{"text", text}, {"score", score}}; }

/// {"source", "target", "weights"} of the best hypothesis `h` of `source`, or null.
json alignment(const search::Hypothesis& h, const std::vector<int64_t>& source, const data::Vocab& src_vocab,
               const data::Vocab& tgt_vocab) {
  if (!h.attention.defined()) return nullptr;  // an empty source sentence
  auto target = piece_labels(tgt_vocab, h.tokens);
  target.resize(h.attention.size(0));  // no "</s>" row when cut at the maximum length
  // make_panel drops the columns of batch padding: other requests' longer sentences.
  const auto panel = make_panel("", piece_labels(src_vocab, source), std::move(target), h.attention);
  const size_t S = panel.source.size();
  json rows = json::array();
  for (size_t t = 0; t < panel.target.size(); ++t)
    rows.push_back(std::vector<float>(panel.weights.begin() + t * S, panel.weights.begin() + (t + 1) * S));
  return {{"source", panel.source}, {"target", panel.target}, {"weights", std::move(rows)}};
}

}  // namespace

TranslateRequest parse_translate_request(const std::string& body, const ServeLimits& limits, int default_beam) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    throw bad_request("malformed JSON: " + without_exception_id(e.what()));
  }
  if (!j.is_object()) throw bad_request("the body must be a JSON object such as {\"text\": [\"...\"]}, got " +
                                        std::string(j.type_name()));
  for (const auto& [key, value] : j.items()) {
    if (key != "text" && key != "beam" && key != "n_best" && key != "scores" && key != "attention")
      throw bad_request("unknown field \"" + key + "\" (known: text, beam, n_best, scores, attention)");
  }
  if (!j.contains("text")) throw bad_request("missing field \"text\": a list of sentences");
  const json& text = j["text"];
  if (!text.is_array()) throw bad_request("\"text\" must be a list of strings, got " + std::string(text.type_name()));
  if (text.size() > limits.max_sentences)
    throw RequestError(413, "\"text\" has " + std::to_string(text.size()) + " sentences; at most " +
                                std::to_string(limits.max_sentences) + " per request (--max-sentences)");
  TranslateRequest request;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!text[i].is_string())
      throw bad_request("\"text\" must be a list of strings; text[" + std::to_string(i) + "] is " +
                        std::string(text[i].type_name()));
    request.text.push_back(text[i].get<std::string>());
  }
  auto& o = request.options;
  o.beam_size = default_beam;
  if (j.contains("beam"))
    o.beam_size = integer_field(j, "beam", 1, limits.max_beam, "in [1, " + std::to_string(limits.max_beam) + "]");
  o.n_best = 1;
  if (j.contains("n_best")) {
    o.n_best = integer_field(j, "n_best", 1, o.beam_size,
                             "in [1, beam] = [1, " + std::to_string(o.beam_size) + "] (raise \"beam\")");
    request.n_best_lists = true;
  }
  if (j.contains("scores")) request.scores = bool_field(j, "scores");
  if (j.contains("attention")) o.attention = bool_field(j, "attention");
  return request;
}

serve::Sentences encode_sources(const std::vector<std::string>& text, const data::Vocab& src_vocab,
                                const ServeLimits& limits) {
  serve::Sentences sources = src_vocab.encode_batch(text, /*num_threads=*/1);
  for (size_t i = 0; i < sources.size(); ++i) {
    if (sources[i].size() > limits.max_sentence_tokens)
      throw RequestError(413, "text[" + std::to_string(i) + "] is " + std::to_string(sources[i].size()) +
                                  " subword tokens long; at most " + std::to_string(limits.max_sentence_tokens) +
                                  " (--max-sentence-tokens)");
  }
  return sources;
}

std::string translate_response(const TranslateRequest& request, const serve::Sentences& sources,
                               const serve::NBestLists& results, const data::Vocab& src_vocab,
                               const data::Vocab& tgt_vocab) {
  json translations = json::array();
  for (const auto& list : results) {
    const auto& best = list.front();
    if (request.n_best_lists) {
      json hyps = json::array();
      for (const auto& h : list) hyps.push_back(scored(tgt_vocab.decode(h.tokens), h.score));
      translations.push_back(std::move(hyps));
    } else if (request.scores) {
      translations.push_back(scored(tgt_vocab.decode(best.tokens), best.score));
    } else {
      translations.push_back(tgt_vocab.decode(best.tokens));
    }
  }
  json answer = {{"translations", std::move(translations)}};
  if (request.options.attention) {
    json alignments = json::array();
    for (size_t i = 0; i < results.size(); ++i)
      alignments.push_back(alignment(results[i].front(), sources[i], src_vocab, tgt_vocab));
    answer["attention"] = std::move(alignments);
  }
  return answer.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string error_body(const std::string& message) {
  return json{{"error", message}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace nmt::cli

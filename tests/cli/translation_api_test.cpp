// The request checks of `nmt serve`'s POST /translate (cli/translation_api.h), without a server:
// every malformed or oversize body is a RequestError with a 4xx status and a message that names
// what was wrong.
#include "nmt/cli/translation_api.h"

#include <gtest/gtest.h>

#include "support/test_util.h"

namespace {

using nmt::cli::parse_translate_request;
using nmt::cli::RequestError;
using nmt::cli::ServeLimits;
using nmt::testing::contains;

constexpr int kDefaultBeam = 4;

/// The RequestError parse_translate_request throws for `body` (status 0 when it throws none).
RequestError refusal(const std::string& body, const ServeLimits& limits = {}) {
  try {
    parse_translate_request(body, limits, kDefaultBeam);
  } catch (const RequestError& e) {
    return e;
  }
  return RequestError(0, "accepted");
}

TEST(ServeApi, ParsesTextAndFillsInDefaults) {
  const auto r = parse_translate_request(R"({"text": ["ein Hund", ""]})", {}, kDefaultBeam);
  EXPECT_EQ(r.text, (std::vector<std::string>{"ein Hund", ""}));
  EXPECT_EQ(r.options.beam_size, kDefaultBeam);
  EXPECT_EQ(r.options.n_best, 1);
  EXPECT_FALSE(r.options.attention);
  EXPECT_FALSE(r.n_best_lists);
  EXPECT_FALSE(r.scores);
}

TEST(ServeApi, ParsesEveryOption) {
  const auto r = parse_translate_request(R"({"text": ["a"], "beam": 6, "n_best": 3, "scores": true,
                                             "attention": true})",
                                         {}, kDefaultBeam);
  EXPECT_EQ(r.options.beam_size, 6);
  EXPECT_EQ(r.options.n_best, 3);
  EXPECT_TRUE(r.options.attention);
  EXPECT_TRUE(r.n_best_lists);
  EXPECT_TRUE(r.scores);
}

TEST(ServeApi, RefusesMalformedBodiesNamingWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"text": ["a")", "malformed JSON"},
      {"", "malformed JSON"},
      {"[\"a\"]", "must be a JSON object"},
      {R"({"txt": ["a"]})", "unknown field \"txt\""},
      {R"({"beam": 2})", "missing field \"text\""},
      {R"({"text": "ein Hund"})", "\"text\" must be a list of strings, got string"},
      {R"({"text": ["a", 3]})", "text[1] is number"},
      {R"({"text": [["a"]]})", "text[0] is array"},
      {R"({"text": ["a"], "beam": "5"})", "\"beam\" must be an integer"},
      {R"({"text": ["a"], "beam": 2.5})", "\"beam\" must be an integer"},
      {R"({"text": ["a"], "beam": 0})", "\"beam\" must be in [1, 16]"},
      {R"({"text": ["a"], "beam": 17})", "\"beam\" must be in [1, 16]"},
      {R"({"text": ["a"], "n_best": 5})", "\"n_best\" must be in [1, beam] = [1, 4]"},
      {R"({"text": ["a"], "attention": 1})", "\"attention\" must be true or false"},
      {R"({"text": ["a"], "scores": "yes"})", "\"scores\" must be true or false"},
      {"{\"text\": [\"\xff\"]}", "malformed JSON"},
  };
  for (const auto& [body, message] : cases) {
    const auto e = refusal(body);
    EXPECT_EQ(e.status(), 400) << body;
    EXPECT_TRUE(contains(e.what(), message)) << body << " -> " << e.what();
  }
}

TEST(ServeApi, RefusesTooManySentencesWith413) {
  ServeLimits limits;
  limits.max_sentences = 2;
  EXPECT_EQ(refusal(R"({"text": ["a", "b"]})", limits).status(), 0);
  const auto e = refusal(R"({"text": ["a", "b", "c"]})", limits);
  EXPECT_EQ(e.status(), 413);
  EXPECT_TRUE(contains(e.what(), "3 sentences; at most 2")) << e.what();
}

TEST(ServeApi, ErrorBodyIsJson) {
  EXPECT_EQ(nmt::cli::error_body("bad \"x\""), R"({"error":"bad \"x\""})");
}

}  // namespace

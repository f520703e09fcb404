// End-to-end tests of `nmt serve` on the toy RNN: the server runs as a child process on a free
// port (--port 0, read from its start-up log line) and is talked to with httplib's client.
// Concurrent clients get exactly what `nmt translate` gives, bad requests get a 4xx with a JSON
// error and leave the server serving, and SIGTERM drains the request in flight and exits 0.
#include <signal.h>

#include <future>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/child.h"
#include "support/test_util.h"
#include "support/toy_model.h"

namespace {

using nlohmann::json;
using nmt::testing::Child;
using nmt::testing::contains;
using nmt::testing::lines_of;
using nmt::testing::run_nmt;
using nmt::testing::ToyRnn;

/// `nmt serve` as a child process, with small limits for the tests.
class Server {
 public:
  explicit Server(const std::string& model)
      : child_({NMT_BINARY, "serve", "-m", model, "--port", "0", "--threads", "1", "--max-body-bytes", "4096",
                "--max-sentences", "8", "--max-sentence-tokens", "40"},
               Child::Stderr::kWithOutput) {
    const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
    while (auto line = child_.read_line(/*timeout_s=*/120)) {
      log_ += *line + "\n";
      std::smatch m;
      if (std::regex_search(*line, m, listening)) {
        port_ = std::stoi(m[1]);
        return;
      }
    }
    throw std::runtime_error("nmt serve logged no port:\n" + log_);
  }
  int port() const { return port_; }
  Child& child() { return child_; }
  /// The rest of its log, up to its end (after it exited).
  std::string rest_of_log() {
    while (auto line = child_.read_line(10)) log_ += *line + "\n";
    return log_;
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120);
    return c;
  }

 private:
  Child child_;
  int port_ = -1;
  std::string log_;
};

class ServeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    toy_ = new ToyRnn();
    ASSERT_TRUE(toy_->ok()) << toy_->error();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete toy_;
    toy_ = nullptr;
  }
  /// The suite's server, started on first use (again after a test stopped it).
  static Server& server() {
    if (!server_) server_ = new Server(toy_->model());
    return *server_;
  }
  /// POST /translate with `body`; the response (status and JSON), failing the test without one.
  static std::pair<int, json> post(const std::string& body) {
    auto res = server().client().Post("/translate", body, "application/json");
    if (!res) return {-1, json()};
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    return {res->status, json::parse(res->body, nullptr, /*allow_exceptions=*/false)};
  }
  /// The sentences of the toy corpus and what `nmt translate` makes of them (`args` added).
  static std::pair<std::vector<std::string>, std::vector<std::string>> reference(const std::string& args = "") {
    auto r = run_nmt("translate -m " + toy_->model() + " -i data/toy/train.de --threads 1 " + args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return {lines_of(nmt::testing::read_text(nmt::testing::source_path("data/toy/train.de"))), lines_of(r.output)};
  }
  static ToyRnn* toy_;
  static Server* server_;
};
ToyRnn* ServeCli::toy_ = nullptr;
Server* ServeCli::server_ = nullptr;

TEST_F(ServeCli, ConcurrentClientsGetWhatTranslateGives) {
  const auto ref = reference();
  const auto& sources = ref.first;
  const auto& expected = ref.second;
  ASSERT_EQ(sources.size(), expected.size());
  const auto served_before = json::parse(server().client().Get("/health")->body)["served"];
  constexpr size_t kClients = 4;
  std::vector<std::future<std::vector<std::string>>> mismatches;
  for (size_t c = 0; c < kClients; ++c) {
    mismatches.push_back(std::async(std::launch::async, [&, c] {
      std::vector<std::string> wrong;
      auto client = server().client();
      // Client c sends sentences c, c + kClients, ..., one to three per request.
      std::vector<size_t> mine;
      for (size_t i = c; i < sources.size(); i += kClients) mine.push_back(i);
      for (size_t k = 0; k < mine.size();) {
        const size_t n = std::min<size_t>(1 + (k + c) % 3, mine.size() - k);
        json text = json::array();
        for (size_t j = 0; j < n; ++j) text.push_back(sources[mine[k + j]]);
        auto res = client.Post("/translate", json{{"text", text}}.dump(), "application/json");
        if (!res || res->status != 200) {
          wrong.push_back("request failed: " + (res ? res->body : httplib::to_string(res.error())));
        } else {
          const auto got = json::parse(res->body)["translations"];
          for (size_t j = 0; j < n; ++j) {
            const size_t i = mine[k + j];
            if (j >= got.size() || got[j] != expected[i])
              wrong.push_back("sentence " + std::to_string(i + 1) + ": got " + (j < got.size() ? got[j].dump() : "none") +
                              ", translate gives \"" + expected[i] + "\"");
          }
        }
        k += n;
      }
      return wrong;
    }));
  }
  for (auto& m : mismatches)
    for (const auto& w : m.get()) ADD_FAILURE() << w;
  // Every sentence was translated once; requests that waited together shared a batch (how many
  // did depends on timing, so only the bound is checked).
  auto health = server().client().Get("/health");
  ASSERT_TRUE(health);
  const auto h = json::parse(health->body);
  EXPECT_EQ(h["status"], "ok");
  EXPECT_EQ(h["model_type"], "rnn");
  const auto served = [&](const char* what) { return h["served"][what].get<int64_t>() - served_before[what].get<int64_t>(); };
  EXPECT_EQ(served("sentences"), static_cast<int64_t>(sources.size())) << health->body;
  EXPECT_LE(served("batches"), served("requests")) << health->body;
}

TEST_F(ServeCli, NBestScoresAndAttentionMirrorTranslate) {
  const auto [sources, nbest_lines] = reference("--n-best 3 --beam 3");
  const std::vector<size_t> picked = {0, 7, 19};
  json text = json::array();
  for (size_t i : picked) text.push_back(sources[i]);
  const auto [status, answer] = post(json{{"text", text}, {"beam", 3}, {"n_best", 3}}.dump());
  ASSERT_EQ(status, 200) << answer.dump();
  ASSERT_EQ(answer["translations"].size(), picked.size());
  // Moses lines "i ||| hypothesis ||| LogProb= .. Length= .. ||| score" of translate --n-best.
  const std::regex moses("([0-9]+) \\|\\|\\| (.*) \\|\\|\\| .* \\|\\|\\| (-?[0-9.]+)");
  for (size_t p = 0; p < picked.size(); ++p) {
    std::vector<std::pair<std::string, double>> want;
    for (const auto& line : nbest_lines) {
      std::smatch m;
      if (std::regex_match(line, m, moses) && std::stoul(m[1]) == picked[p]) want.emplace_back(m[2], std::stod(m[3]));
    }
    const auto& got = answer["translations"][p];
    ASSERT_EQ(got.size(), want.size()) << got.dump();
    for (size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(got[k]["text"], want[k].first) << "sentence " << picked[p] << " hypothesis " << k;
      EXPECT_NEAR(got[k]["score"].get<double>(), want[k].second, 1e-5);
    }
  }

  // "scores": the 1-best with its score, as translate --scores; "attention": one row per output
  // token and EOS over the source pieces and EOS.
  const auto [status2, scored] = post(json{{"text", {sources[0], ""}}, {"scores", true}, {"attention", true}}.dump());
  ASSERT_EQ(status2, 200) << scored.dump();
  const auto& best = scored["translations"][0];
  EXPECT_TRUE(best["text"].is_string());
  EXPECT_TRUE(best["score"].is_number());
  const auto& att = scored["attention"][0];
  ASSERT_TRUE(att.is_object()) << scored.dump();
  EXPECT_EQ(att["source"].back(), "</s>");
  EXPECT_EQ(att["target"].back(), "</s>");
  ASSERT_EQ(att["weights"].size(), att["target"].size());
  for (const auto& row : att["weights"]) {
    ASSERT_EQ(row.size(), att["source"].size());
    double sum = 0;
    for (const auto& w : row) sum += w.get<double>();
    EXPECT_NEAR(sum, 1.0, 1e-4);
  }
  EXPECT_TRUE(scored["attention"][1].is_null());  // the empty sentence
  EXPECT_EQ(scored["translations"][1]["text"], "");
}

TEST_F(ServeCli, BadRequestsGetA4xxWithAJsonErrorAndTheServerGoesOn) {
  std::string long_sentence;
  for (int i = 0; i < 30; ++i) long_sentence += "ein hund läuft . ";
  struct Case {
    std::string body;
    int status;
    std::string error;
  };
  const std::vector<Case> cases = {
      {R"({"text": ["ein hund läuft ."])", 400, "malformed JSON"},
      {R"({"text": "ein hund läuft ."})", 400, "\"text\" must be a list of strings"},
      {R"({"text": ["ein hund", 42]})", 400, "text[1] is number"},
      {R"({"sentences": ["ein hund"]})", 400, "unknown field \"sentences\""},
      {R"({"text": ["a"], "beam": 100})", 400, "\"beam\" must be in [1, 16]"},
      {R"({"text": ["a","b","c","d","e","f","g","h","i"]})", 413, "at most 8 per request"},
      {json{{"text", {long_sentence}}}.dump(), 413, "subword tokens long; at most 40 (--max-sentence-tokens)"},
      {json{{"text", {std::string(5000, 'a')}}}.dump(), 413, "larger than 4096 bytes"},
  };
  for (const auto& c : cases) {
    const auto [status, answer] = post(c.body);
    EXPECT_EQ(status, c.status) << c.body.substr(0, 100);
    ASSERT_TRUE(answer.is_object() && answer.contains("error")) << c.body.substr(0, 100) << " -> " << answer.dump();
    EXPECT_TRUE(contains(answer["error"].get<std::string>(), c.error)) << answer.dump();
    const auto [ok, good] = post(R"({"text": ["ein hund läuft ."]})");
    EXPECT_EQ(ok, 200) << "after " << c.body.substr(0, 100) << ": " << good.dump();
  }
  auto missing = server().client().Get("/translate/v2");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(contains(missing->body, "\"error\"")) << missing->body;
  auto wrong_method = server().client().Get("/translate");
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 405);
  EXPECT_TRUE(contains(wrong_method->body, "use POST")) << wrong_method->body;
}

TEST_F(ServeCli, ASecondServerOnTheSamePortIsAnError) {
  // Not a silent share of the port (httplib's default SO_REUSEPORT): a clear error.
  auto r = nmt::testing::run_shell("timeout 120 \"$NMT\" serve -m " + toy_->model() + " --port " +
                                   std::to_string(server().port()));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "cannot listen on 127.0.0.1:" + std::to_string(server().port()) +
                                     ": Address already in use"))
      << r.output;
}

TEST_F(ServeCli, SigtermAnswersTheRequestInFlightAndExitsZero) {
  Server& s = server();
  const std::string body = R"({"text": ["ein hund läuft .", "eine katze schläft ."]})";
  const size_t half = body.size() / 2;
  std::promise<void> half_sent, go_on;
  auto go_on_future = go_on.get_future().share();
  // A request whose body arrives in two parts, SIGTERM in between.
  auto in_flight = std::async(std::launch::async, [&] {
    auto client = s.client();
    return client.Post(
        "/translate", body.size(),
        [&](size_t offset, size_t, httplib::DataSink& sink) {
          if (offset == 0) {
            sink.write(body.data(), half);
            half_sent.set_value();
            return true;
          }
          go_on_future.wait();
          sink.write(body.data() + offset, body.size() - offset);
          return true;
        },
        "application/json");
  });
  half_sent.get_future().wait();
  {
    // Connections are accepted in order: once this one is answered, the one in flight is accepted.
    auto health = s.client().Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
  }
  s.child().signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  go_on.set_value();
  auto res = in_flight.get();
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(json::parse(res->body)["translations"].size(), 2u) << res->body;
  const auto status = s.child().wait_for(60);
  ASSERT_TRUE(status.has_value()) << "nmt serve still runs 60 s after SIGTERM";
  EXPECT_EQ(*status, 0) << s.rest_of_log();
  const std::string log = s.rest_of_log();
  EXPECT_TRUE(contains(log, "stopped after")) << log;
  EXPECT_FALSE(s.client().Get("/health")) << "still accepting connections after SIGTERM";
  delete server_;
  server_ = nullptr;
}

}  // namespace

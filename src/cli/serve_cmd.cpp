// `nmt serve`: an HTTP JSON translation server (POST /translate, GET /health) over one model or
// an ensemble. HTTP worker threads parse and encode requests (cli/translation_api.h) and queue
// them; one model thread translates what is waiting as one batch (serve/batcher.h).
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "nmt/cli/command_list.h"
#include "nmt/cli/commands.h"
#include "nmt/cli/model_io.h"
#include "nmt/cli/translation_api.h"
#include "nmt/cli/validators.h"
#include "nmt/serve/batcher.h"

namespace nmt::cli {
namespace {

struct ServeOptions {
  std::vector<std::string> model_dirs;  ///< several: an ensemble
  std::vector<double> weights;          ///< ensemble weights (empty: equal)
  std::string host = "127.0.0.1";
  int port = 8080;                      ///< 0: any free port (logged)
  std::string device, precision;
  int threads = 0;                      ///< 0: the model's train.threads
  int beam = 0;                         ///< default beam; 0: the model's search.beam_size
  double length_penalty = -1;
  int batch_tokens = 0;                 ///< 0: the model's search.batch_tokens
  int batch_sentences = 64;
  int http_threads = 32;
  ServeLimits limits;
};

/// The first SIGINT or SIGTERM calls `on_stop(signal)` on a thread of its own (a signal handler
/// may do next to nothing, so it only writes to a pipe that thread waits on); a second one ends
/// the process at once with status 128 + signal. The destructor restores the previous handlers.
class StopSignals {
 public:
  explicit StopSignals(std::function<void(int)> on_stop) {
    if (::pipe2(pipe_, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    signal_ = 0;
    struct sigaction sa {};
    sa.sa_handler = &StopSignals::handle;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
    watcher_ = std::thread([this, on_stop = std::move(on_stop)] {
      char c;
      while (::read(pipe_[0], &c, 1) < 0 && errno == EINTR) {
      }
      if (const int sig = signal_.load()) on_stop(sig);
    });
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    wake();  // no signal came: the watcher returns without on_stop
    watcher_.join();
    ::close(pipe_[0]);
    ::close(pipe_[1]);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  static void handle(int sig) {
    if (signal_.exchange(sig) != 0) _exit(128 + sig);
    wake();
  }
  static void wake() {
    const char c = 1;
    [[maybe_unused]] auto n = ::write(pipe_[1], &c, 1);
  }
  static inline int pipe_[2] = {-1, -1};
  static inline std::atomic<int> signal_{0};
  struct sigaction old_int_ {}, old_term_ {};
  std::thread watcher_;
};

void json_answer(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

/// The body, read as it arrives. httplib refuses a Content-Length over the limit itself (the
/// reader then skips the body and fails); a chunked body is cut off here once it passes the
/// limit. Throws RequestError 413 past `max_bytes`, 400 when the body could not be read.
std::string read_body(const httplib::Request& req, const httplib::ContentReader& reader, size_t max_bytes) {
  std::string body;
  bool over = req.has_header("Content-Length") &&
              req.get_header_value<uint64_t>("Content-Length") > static_cast<uint64_t>(max_bytes);
  const bool complete = reader([&](const char* data, size_t size) {
    over = over || body.size() + size > max_bytes;
    if (!over) body.append(data, size);
    return !over;
  });
  if (over)
    throw RequestError(413, "the request body is larger than " + std::to_string(max_bytes) +
                                " bytes (--max-body-bytes)");
  if (!complete) throw RequestError(400, "the request body could not be read");
  return body;
}

constexpr const char* kEndpoints = "the API: POST /translate with a JSON body, GET /health";

/// The {"error": ...} of an answer httplib made itself (an unknown path, a bad HTTP request, a
/// body over the Content-Length limit); answers that have a body already keep it.
void describe_http_error(const httplib::Request& req, httplib::Response& res, size_t max_body_bytes) {
  if (!res.body.empty()) return;
  std::string message;
  switch (res.status) {
    case 404: message = "no such endpoint: " + req.method + " " + req.path + " (" + kEndpoints + ")"; break;
    case 413:
      message = "the request body is larger than " + std::to_string(max_body_bytes) + " bytes (--max-body-bytes)";
      break;
    default:
      message = "HTTP status " + std::to_string(res.status) + " for " + req.method + " " + req.path + " (" +
                kEndpoints + ")";
  }
  res.set_content(error_body(message), "application/json");
}

/// The answer to a known path asked with another method: 405 naming the one to use.
httplib::Server::Handler wrong_method(const std::string& allowed) {
  return [allowed](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Allow", allowed);
    json_answer(res, 405, error_body(req.method + " " + req.path + " is not served; use " + allowed));
  };
}

std::string health_body(const ServeOptions& o, const LoadedModel& m, int64_t parameters, int default_beam,
                        const serve::BatcherStats& stats) {
  const auto& tr = m.translator;
  nlohmann::json models = o.model_dirs;
  nlohmann::json body = {
      {"status", "ok"},
      {"models", models},
      {"model_type", model_type_name(m.checkpoint.config.model.type)},
      {"parameters", parameters},
      {"step", m.checkpoint.state.step},
      {"src_vocab_size", tr.src_vocab().size()},
      {"tgt_vocab_size", tr.tgt_vocab().size()},
      {"device", tr.device().str()},
      {"precision", precision_name(tr.precision())},
      {"beam", default_beam},
      {"limits",
       {{"max_body_bytes", o.limits.max_body_bytes},
        {"max_sentences", o.limits.max_sentences},
        {"max_sentence_tokens", o.limits.max_sentence_tokens},
        {"max_beam", o.limits.max_beam}}},
      {"served", {{"requests", stats.requests}, {"sentences", stats.sentences}, {"batches", stats.batches}}},
  };
  return body.dump();
}

void run_serve(const ServeOptions& o) {
  auto m = load_ensemble(o.model_dirs, o.weights, o.threads, o.device, o.precision);
  auto& tr = m.translator;
  auto& search = tr.config();
  // The batcher's budget is the translator's too, so that it never splits a batch again.
  override_search(search, o.beam, o.length_penalty, o.batch_tokens, o.batch_sentences);
  const int default_beam = search.beam_size;
  if (default_beam > o.limits.max_beam)
    throw std::runtime_error("the default beam " + std::to_string(default_beam) + " is larger than --max-beam " +
                             std::to_string(o.limits.max_beam));
  int64_t parameters = 0;
  for (const auto& p : tr.model().parameters()) parameters += p.numel();

  serve::Batcher batcher(serve::translate_with(tr), {o.batch_sentences, search.batch_tokens});
  httplib::Server server;
  const size_t http_threads = static_cast<size_t>(o.http_threads);
  server.new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
  server.set_payload_max_length(o.limits.max_body_bytes);
  server.set_keep_alive_max_count(1000);
  server.set_keep_alive_timeout(2);  // an idle connection delays shutdown by at most this
  // httplib writes the headers and the body of an answer separately: with Nagle's algorithm the
  // body then waits for the client's delayed ACK, 40 ms on Linux, on every keep-alive request.
  server.set_tcp_nodelay(true);
  // SO_REUSEADDR (a restart binds while old connections are in TIME_WAIT), but not httplib's
  // default SO_REUSEPORT, with which a second server on the same port would share it silently.
  server.set_socket_options([](int sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.set_error_handler(
      [&o](const httplib::Request& req, httplib::Response& res) { describe_http_error(req, res, o.limits.max_body_bytes); });
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr error) {
    std::string message = "internal error";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    json_answer(res, 500, error_body(message));
  });
  server.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    spdlog::debug("{} {} -> {} ({} bytes in, {} out)", req.method, req.path, res.status, req.body.size(), res.body.size());
  });

  server.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
    json_answer(res, 200, health_body(o, m, parameters, default_beam, batcher.stats()));
  });
  server.Get("/translate", wrong_method("POST"));
  server.Post("/health", wrong_method("GET"));
  server.Post("/translate", [&](const httplib::Request& req, httplib::Response& res,
                                const httplib::ContentReader& reader) {
    bool body_read = false;
    try {
      const std::string body = read_body(req, reader, o.limits.max_body_bytes);
      body_read = true;
      const auto request = parse_translate_request(body, o.limits, default_beam);
      const auto sources = encode_sources(request.text, tr.src_vocab(), o.limits);
      const auto results = batcher.submit(sources, request.options).get();
      json_answer(res, 200, translate_response(request, sources, results, tr.src_vocab(), tr.tgt_vocab()));
    } catch (const RequestError& e) {
      json_answer(res, e.status(), error_body(e.what()));
      if (!body_read) res.set_header("Connection", "close");  // the rest of the body may still be on its way
    } catch (const std::exception& e) {
      spdlog::error("POST /translate: {}", e.what());
      json_answer(res, 500, error_body(e.what()));
    }
  });

  int port = o.port;
  if (port == 0) port = server.bind_to_any_port(o.host);
  else if (!server.bind_to_port(o.host, port)) port = -1;
  if (port < 0)
    throw std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + std::strerror(errno));

  std::atomic<bool> listening_ended{false};
  StopSignals stop([&](int sig) {
    spdlog::info("{}: no new connections; answering the requests in flight", strsignal(sig));
    // A signal before listen_after_bind() has started: wait for it, or stop() would do nothing.
    while (!server.is_running() && !listening_ended) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    server.stop();
  });
  spdlog::info("nmt serve: listening on http://{}:{} ({} model{}, {} parameters, beam {}, {} HTTP threads)", o.host,
               port, o.model_dirs.size(), o.model_dirs.size() > 1 ? "s" : "", parameters, default_beam,
               o.http_threads);
  const bool listened = server.listen_after_bind();
  listening_ended = true;
  batcher.stop();  // every worker has finished: nothing is queued any more
  const auto stats = batcher.stats();
  if (!listened) throw std::runtime_error("the server on " + o.host + ":" + std::to_string(port) + " failed");
  spdlog::info("nmt serve: stopped after {} requests ({} sentences in {} batches)", stats.requests, stats.sentences,
               stats.batches);
}

}  // namespace

void setup_serve(CLI::App& app) {
  auto opts = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", command_description("serve"));
  cmd->add_option("-m,--model", opts->model_dirs,
                  "model directory written by nmt train; repeat (-m A -m B) for an ensemble (shared vocabularies)")
      ->required()->check(CLI::ExistingDirectory)->take_all();
  cmd->add_option("--weights", opts->weights, "ensemble weights, one per -m, comma-separated (default: equal)")
      ->delimiter(',')->check(CLI::PositiveNumber);
  cmd->add_option("--host", opts->host, "address to listen on (0.0.0.0: every interface)")->capture_default_str();
  cmd->add_option("--port", opts->port, "TCP port; 0 picks a free one (the start-up log line names it)")
      ->capture_default_str()->check(CLI::Range(0, 65535));
  cmd->add_option("-b,--beam", opts->beam,
                  "beam size of requests that give no \"beam\" (default: the model's search.beam_size)")
      ->check(positive_integer());
  cmd->add_option("--length-penalty", opts->length_penalty, "GNMT length penalty alpha")->check(non_negative());
  cmd->add_option("--batch-tokens", opts->batch_tokens,
                  "source tokens per model batch (default: the model's search.batch_tokens)")
      ->check(positive_integer());
  cmd->add_option("--batch-sentences", opts->batch_sentences,
                  "sentences per model batch: waiting requests with equal options are translated together up to "
                  "this and --batch-tokens")
      ->capture_default_str()->check(positive_integer());
  cmd->add_option("--max-body-bytes", opts->limits.max_body_bytes, "largest request body (larger: 413)")
      ->capture_default_str()->check(positive_integer());
  cmd->add_option("--max-sentences", opts->limits.max_sentences, "most sentences in one request (more: 413)")
      ->capture_default_str()->check(positive_integer());
  cmd->add_option("--max-sentence-tokens", opts->limits.max_sentence_tokens,
                  "most subword tokens of one source sentence (more: 413)")
      ->capture_default_str()->check(positive_integer());
  cmd->add_option("--max-beam", opts->limits.max_beam, "largest beam a request may ask for (larger: 400)")
      ->capture_default_str()->check(positive_integer());
  cmd->add_option("--http-threads", opts->http_threads,
                  "HTTP worker threads: connections served at once (each keep-alive client holds one)")
      ->capture_default_str()->check(positive_integer());
  add_model_runtime_options(cmd, opts->threads, opts->device);
  add_decoding_precision(cmd, opts->precision);
  cmd->callback([opts] { run_serve(*opts); });
}

}  // namespace nmt::cli

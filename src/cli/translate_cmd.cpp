#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "nmt/cli/command_list.h"
#include "nmt/cli/alignment_pictures.h"
#include "nmt/cli/commands.h"
#include "nmt/cli/model_io.h"
#include "nmt/cli/progress.h"
#include "nmt/cli/validators.h"
#include "nmt/data/line_stream.h"
#include "nmt/runtime.h"

namespace nmt::cli {
namespace {

struct TranslateOptions {
  std::vector<std::string> model_dirs;  ///< several: an ensemble
  std::vector<double> weights;          ///< ensemble weights (empty: equal)
  std::string input, output, device;
  std::string precision;                ///< "": the model's train.precision
  int beam = 0;              ///< 0: the model's search.beam_size
  double length_penalty = -1;
  int batch_tokens = 0;
  int batch_sentences = -1;  ///< -1: the model's search.batch_sentences
  int threads = 0;
  std::string attention_out;             ///< directory for one alignment heatmap per sentence
  std::string attention_format = "png";  ///< png | svg
  int n_best = 0;                        ///< > 0: Moses n-best lines with the n best hypotheses
  bool scores = false;                   ///< prefix each 1-best line with its score
  int chunk = 1000;                      ///< sentences read (and held) at a time
};

/// Where translations go: standard output (flushed after every chunk) or a file written
/// atomically at the end.
class Output {
 public:
  explicit Output(const std::string& path) {
    if (!path.empty() && path != "-") file_ = std::make_unique<AtomicFileWriter>(path);
  }
  void write(const std::string& text) {
    if (file_) file_->write(text.data(), text.size());
    else std::cout << text << std::flush;
  }
  void commit() {
    if (file_) file_->commit();
  }

 private:
  std::unique_ptr<AtomicFileWriter> file_;
};

/// The input as a file descriptor: standard input, or the file opened (and closed at the end).
class Input {
 public:
  explicit Input(const std::string& path) {
    if (path.empty() || path == "-") return;
    if (std::filesystem::is_directory(path)) throw std::runtime_error(path + ": is a directory, expected a text file");
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    origin_ = path;
  }
  ~Input() {
    if (fd_ != STDIN_FILENO) ::close(fd_);
  }
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;
  int fd() const { return fd_; }
  const std::string& origin() const { return origin_; }

 private:
  int fd_ = STDIN_FILENO;
  std::string origin_ = "standard input";
};

void run_translate(const TranslateOptions& o) {
  auto m = load_ensemble(o.model_dirs, o.weights, o.threads, o.device, o.precision);
  auto& tr = m.translator;
  auto& search = tr.config();
  override_search(search, o.beam, o.length_penalty, o.batch_tokens, o.batch_sentences);
  const bool pictures = !o.attention_out.empty();
  if (pictures) require_pictures(o.attention_format);
  tr.set_keep_attention(pictures);
  if (o.n_best > search.beam_size)
    throw std::runtime_error("--n-best " + std::to_string(o.n_best) + " is larger than the beam (" +
                             std::to_string(search.beam_size) + "): raise --beam");
  if (pictures) std::filesystem::create_directories(o.attention_out);

  Input input(o.input);
  data::LineStream lines(input.fd(), input.origin());
  Output output(o.output);
  ProgressLine progress(data::count_lines(input.fd()));
  // Chunks of at most o.chunk lines; a chunk also ends when no further line is waiting, so an
  // interactive pipe gets each translation as soon as its line is in.
  std::vector<std::string> chunk;
  size_t done = 0;  // sentences translated before this chunk
  for (bool end = false; !end;) {
    chunk.clear();
    std::string line;
    while (chunk.size() < static_cast<size_t>(o.chunk)) {
      if (!lines.next(line)) {
        end = true;
        break;
      }
      chunk.push_back(std::move(line));
      if (!lines.ready()) break;
    }
    if (chunk.empty()) continue;
    const auto lists = tr.translate_n_best(chunk, std::max(1, o.n_best));
    std::string text;
    for (size_t i = 0; i < lists.size(); ++i) {
      const auto& best = lists[i].front();
      if (o.n_best > 0) {
        // Moses n-best format: sentence ||| hypothesis ||| features ||| score
        for (const auto& h : lists[i])
          text += fmt::format("{} ||| {} ||| LogProb= {:.6f} Length= {} ||| {:.6f}\n", done + i, tr.text(h),
                              h.log_prob, h.tokens.size() + 1, h.score);
      } else if (o.scores) {
        text += fmt::format("{:.6f}\t{}\n", best.score, tr.text(best));
      } else {
        text += tr.text(best) + "\n";
      }
      if (pictures && best.attention.defined()) {  // undefined: an empty source line
        auto target = piece_labels(tr.tgt_vocab(), best.tokens);
        target.resize(best.attention.size(0));  // no "</s>" row when cut at the maximum length
        auto panel = make_panel("", piece_labels(tr.src_vocab(), tr.src_vocab().encode(chunk[i])), std::move(target),
                                best.attention);
        viz::write_heatmap(picture_path(o.attention_out, done + i + 1, o.attention_format), {panel});
      }
    }
    output.write(text);
    done += chunk.size();
    progress.update(static_cast<int64_t>(done));
  }
  progress.finish();
  output.commit();
  if (pictures) spdlog::info("wrote {} alignment pictures to {}", done, o.attention_out);
}

}  // namespace

void setup_translate(CLI::App& app) {
  auto opts = std::make_shared<TranslateOptions>();
  auto* cmd = app.add_subcommand("translate", command_description("translate"));
  cmd->add_option("-m,--model", opts->model_dirs,
                  "model directory written by nmt train; repeat (-m A -m B) for an ensemble: log-linear "
                  "combination of the models' next-token distributions (they must share vocabularies)")
      ->required()->check(CLI::ExistingDirectory)->take_all();
  cmd->add_option("--weights", opts->weights, "ensemble weights, one per -m, comma-separated (default: equal)")
      ->delimiter(',')->check(CLI::PositiveNumber);
  cmd->add_option("-i,--input", opts->input, "source text, one sentence per line (default: stdin)");
  cmd->add_option("-o,--output", opts->output, "output file (default: stdout); written atomically");
  cmd->add_option("-b,--beam", opts->beam, "beam size (1 = greedy; default: the model's search.beam_size)")
      ->check(positive_integer());
  cmd->add_option("--length-penalty", opts->length_penalty, "GNMT length penalty alpha")->check(non_negative());
  cmd->add_option("--batch-tokens", opts->batch_tokens, "source tokens per batch")->check(positive_integer());
  cmd->add_option("--batch-sentences", opts->batch_sentences,
                  "sentences per batch at most, 0: no limit (default: the model's search.batch_sentences)")
      ->check(non_negative());
  cmd->add_option("--n-best", opts->n_best,
                  "write the N best hypotheses of each sentence in Moses format "
                  "(i ||| hypothesis ||| LogProb= .. Length= .. ||| score); N <= beam size")
      ->check(positive_integer());
  cmd->add_option("--chunk", opts->chunk,
                  "translate at most N sentences at a time (memory stays bounded on large inputs); a chunk "
                  "also ends when no further line is waiting, so a pipe is answered line by line")
      ->capture_default_str()->check(positive_integer());
  cmd->add_flag("--scores", opts->scores, "prefix each translation with its score (length-normalised log-prob) and a TAB");
  add_model_runtime_options(cmd, opts->threads, opts->device);
  add_decoding_precision(cmd, opts->precision);
  cmd->add_option("--attention-out", opts->attention_out,
                  "write an alignment heatmap of each sentence to DIR/NNNNN.png (line number)");
  cmd->add_option("--attention-format", opts->attention_format, "picture format of --attention-out")
      ->check(CLI::IsMember({"png", "svg"}));
  cmd->callback([opts] { run_translate(*opts); });
}

}  // namespace nmt::cli

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "nmt/cli/alignment_pictures.h"
#include "nmt/cli/commands.h"
#include "nmt/cli/model_io.h"
#include "nmt/cli/validators.h"
#include "nmt/data/corpus.h"
#include "nmt/runtime.h"

namespace nmt::cli {
namespace {

struct TranslateOptions {
  std::vector<std::string> model_dirs;  ///< several: an ensemble
  std::vector<double> weights;          ///< ensemble weights (empty: equal)
  std::string input, output, device;
  int beam = 0;              ///< 0: the model's search.beam_size
  double length_penalty = -1;
  int batch_tokens = 0;
  int threads = 0;
  std::string attention_out;             ///< directory for one alignment heatmap per sentence
  std::string attention_format = "png";  ///< png | svg
  int n_best = 0;                        ///< > 0: Moses n-best lines with the n best hypotheses
  bool scores = false;                   ///< prefix each 1-best line with its score
};

void run_translate(const TranslateOptions& o) {
  auto m = load_ensemble(o.model_dirs, o.weights, o.threads, o.device);
  auto& tr = m.translator;
  auto& search = tr.config();
  if (o.beam > 0) search.beam_size = o.beam;
  if (o.length_penalty >= 0) search.length_penalty = o.length_penalty;
  if (o.batch_tokens > 0) search.batch_tokens = o.batch_tokens;
  const bool pictures = !o.attention_out.empty();
  if (pictures) require_pictures(o.attention_format);
  tr.set_keep_attention(pictures);
  auto lines = o.input.empty() || o.input == "-" ? data::read_lines(std::cin, "standard input")
                                                 : data::read_lines(o.input);
  if (o.n_best > search.beam_size)
    throw std::runtime_error("--n-best " + std::to_string(o.n_best) + " is larger than the beam (" +
                             std::to_string(search.beam_size) + "): raise --beam");
  const auto lists = tr.translate_n_best(lines, std::max(1, o.n_best));
  std::vector<search::Hypothesis> hyps;
  for (const auto& list : lists) hyps.push_back(list.front());
  if (pictures) {
    std::filesystem::create_directories(o.attention_out);
    for (size_t i = 0; i < hyps.size(); ++i) {
      if (!hyps[i].attention.defined()) continue;  // empty source line
      auto target = piece_labels(tr.tgt_vocab(), hyps[i].tokens);
      target.resize(hyps[i].attention.size(0));  // no "</s>" row when cut at the maximum length
      auto panel = make_panel("", piece_labels(tr.src_vocab(), tr.src_vocab().encode(lines[i])), std::move(target),
                              hyps[i].attention);
      viz::write_heatmap(picture_path(o.attention_out, i + 1, o.attention_format), {panel});
    }
    spdlog::info("wrote {} alignment pictures to {}", hyps.size(), o.attention_out);
  }
  std::string text;
  for (size_t i = 0; i < lists.size(); ++i) {
    if (o.n_best > 0) {
      // Moses n-best format: sentence ||| hypothesis ||| features ||| score
      for (const auto& h : lists[i])
        text += fmt::format("{} ||| {} ||| LogProb= {:.6f} Length= {} ||| {:.6f}\n", i, tr.text(h),
                            h.log_prob, h.tokens.size() + 1, h.score);
    } else if (o.scores) {
      text += fmt::format("{:.6f}\t{}\n", hyps[i].score, tr.text(hyps[i]));
    } else {
      text += tr.text(hyps[i]) + "\n";
    }
  }
  if (o.output.empty() || o.output == "-") std::cout << text << std::flush;
  else write_file_atomic(o.output, text);
}

}  // namespace

void setup_translate(CLI::App& app) {
  auto opts = std::make_shared<TranslateOptions>();
  auto* cmd = app.add_subcommand("translate", "translate raw text with a trained model");
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
  cmd->add_option("--n-best", opts->n_best,
                  "write the N best hypotheses of each sentence in Moses format "
                  "(i ||| hypothesis ||| LogProb= .. Length= .. ||| score); N <= beam size")
      ->check(positive_integer());
  cmd->add_flag("--scores", opts->scores, "prefix each translation with its score (length-normalised log-prob) and a TAB");
  cmd->add_option("--threads", opts->threads, "CPU threads (default: the model's train.threads)");
  cmd->add_option("--device", opts->device, "cpu | cuda | cuda:N | auto");
  cmd->add_option("--attention-out", opts->attention_out,
                  "write an alignment heatmap of each sentence to DIR/NNNNN.png (line number)");
  cmd->add_option("--attention-format", opts->attention_format, "picture format of --attention-out")
      ->check(CLI::IsMember({"png", "svg"}));
  cmd->callback([opts] { run_translate(*opts); });
}

}  // namespace nmt::cli

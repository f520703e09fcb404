/// @file eval_cmd.cpp
#include "nmt/cli/eval_cmd.h"

#include <algorithm>
#include <iostream>
#include <memory>
#include <stdexcept>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "nmt/cli/command_list.h"
#include "nmt/eval/bleu.h"
#include "nmt/eval/bootstrap.h"
#include "nmt/eval/chrf.h"
#include "nmt/eval/text_file.h"

namespace nmt::cli {
namespace {

using eval::Metric;
using eval::Score;
using eval::SegmentStats;
using eval::Signature;

/// One system to score: its name in reports, how errors refer to it, and its lines.
struct System {
  std::string name;
  std::string origin;
  std::vector<std::string> lines;
};

std::string quoted(const std::string& path) { return "'" + path + "'"; }

eval::ReferenceSet read_references(const EvalOptions& options) {
  if (options.ref_files.empty()) throw std::runtime_error("eval: no reference file given (--ref FILE)");
  eval::ReferenceSet refs;
  for (const auto& path : options.ref_files) {
    refs.push_back(eval::read_text_lines(path));
    if (refs.back().size() != refs.front().size()) {
      throw std::runtime_error("line count mismatch: reference file " + quoted(options.ref_files[0]) +
                               " has " + std::to_string(refs.front().size()) +
                               " lines but reference file " + quoted(path) + " has " +
                               std::to_string(refs.back().size()) + " lines");
    }
  }
  for (size_t i = 0; i < refs.front().size(); ++i) {
    const bool any = std::any_of(refs.begin(), refs.end(), [&](const auto& r) { return !r[i].empty(); });
    if (!any) {
      throw std::runtime_error("reference line " + std::to_string(i + 1) +
                               " is empty in every reference file (" + quoted(options.ref_files[0]) +
                               (refs.size() > 1 ? ", ..." : "") + "); sacreBLEU rejects this too");
    }
  }
  return refs;
}

/// Checks a system's length against the references; an empty system scores as empty lines.
void align_with_references(System& system, size_t num_segments, const std::string& ref_file) {
  if (system.lines.empty() && num_segments > 0) {
    spdlog::warn("{} is empty: scoring it as {} empty hypotheses (BLEU = 0)", system.origin,
                 num_segments);
    system.lines.assign(num_segments, "");
  } else if (system.lines.size() != num_segments) {
    throw std::runtime_error("line count mismatch: " + system.origin + " has " +
                             std::to_string(system.lines.size()) + " lines but reference file " +
                             quoted(ref_file) + " has " + std::to_string(num_segments) + " lines");
  }
}

std::vector<System> load_systems(const EvalOptions& options, const TranslateFn& translate,
                                 size_t num_segments) {
  std::vector<System> systems;
  std::vector<std::string> files = options.hyp_files;
  if (!options.hyp2_file.empty()) files.push_back(options.hyp2_file);
  for (const auto& path : files) {
    systems.push_back({path, "hypothesis file " + quoted(path), eval::read_text_lines(path)});
  }
  if (!options.model_dir.empty()) {
    if (options.src_file.empty()) throw std::runtime_error("eval: -m/--model needs --src FILE");
    if (!translate) throw std::runtime_error("eval: translating with a model is not available");
    const std::string origin =
        "the translation of " + quoted(options.src_file) + " by model " + quoted(options.model_dir);
    systems.push_back(
        {options.model_dir, origin,
         eval::clean_lines(translate(options.model_dir, options.src_file), origin)});
  } else if (!options.src_file.empty()) {
    throw std::runtime_error("eval: --src needs -m/--model DIR");
  }
  if (systems.empty()) {
    throw std::runtime_error("eval: nothing to score: give --hyp FILE, or -m DIR --src FILE");
  }
  for (auto& system : systems) align_with_references(system, num_segments, options.ref_files[0]);
  return systems;
}

eval::BleuOptions bleu_options(const EvalOptions& options) {
  eval::BleuOptions out;
  out.tokenizer = eval::parse_tokenizer(options.tokenize);
  out.lowercase = options.lowercase;
  out.smooth_method = eval::parse_smoothing(options.smooth_method);
  out.smooth_value = options.smooth_value;
  out.effective_order = options.sentence_level;  // as sacreBLEU's --sentence-level
  out.force = options.force;
  return out;
}

eval::ChrfOptions chrf_options(const EvalOptions& options) {
  eval::ChrfOptions out;
  out.char_order = options.chrf_char_order;
  out.word_order = options.chrf_word_order;
  out.beta = options.chrf_beta;
  out.lowercase = options.chrf_lowercase;
  out.whitespace = options.chrf_whitespace;
  out.eps_smoothing = options.chrf_eps_smoothing;
  return out;
}

/// The requested metrics, in sacreBLEU's (alphabetical) order, each once.
std::vector<std::unique_ptr<Metric>> make_metrics(const EvalOptions& options,
                                                  const eval::ReferenceSet& refs) {
  const auto wants = [&](const char* name) {
    return std::find(options.metrics.begin(), options.metrics.end(), name) != options.metrics.end();
  };
  for (const auto& name : options.metrics) {
    if (name != "bleu" && name != "chrf") throw std::runtime_error("eval: unknown metric '" + name + "'");
  }
  std::vector<std::unique_ptr<Metric>> metrics;
  if (wants("bleu")) metrics.push_back(std::make_unique<eval::Bleu>(bleu_options(options), refs));
  if (wants("chrf")) metrics.push_back(std::make_unique<eval::Chrf>(chrf_options(options), refs));
  if (metrics.empty()) throw std::runtime_error("eval: no metric selected (--metrics bleu chrf)");
  return metrics;
}

void check_modes(const EvalOptions& options, size_t num_systems, size_t num_metrics) {
  if (options.width < 0 || options.width > 16) throw std::runtime_error("eval: --width must be in 0..16");
  if (options.sentence_level) {
    if (options.confidence || options.paired_bs) {
      throw std::runtime_error("eval: statistical tests are unavailable with --sentence-level");
    }
    if (num_systems > 1) throw std::runtime_error("eval: --sentence-level scores one system only");
    if (num_metrics > 1) throw std::runtime_error("eval: --sentence-level takes one metric only");
  }
  if (options.paired_bs && num_systems < 2) {
    throw std::runtime_error("eval: --paired-bs needs a baseline and at least one more system "
                             "(--hyp BASE --hyp2 SYS, or several --hyp files)");
  }
  if ((options.confidence && options.confidence_n < 1) || (options.paired_bs && options.paired_bs_n < 1)) {
    throw std::runtime_error("eval: the number of resamples must be >= 1");
  }
}

std::string score_text(const Score& score, const EvalOptions& options) {
  if (!options.score_only) return eval::format_score(score, options.width);
  std::string out = eval::format_fixed(score.score, options.width);
  if (score.confidence && score.confidence->mean > 0) {
    out += " (μ = " + eval::format_fixed(score.confidence->mean, options.width) + " ± " +
           eval::format_fixed(score.confidence->half_width, options.width) + ")";
  }
  return out;
}

/// Corpus-level scores of one system: "BLEU = ..." then its signature, per metric.
std::vector<std::pair<Score, Signature>> score_system(const System& system,
                                                      const std::vector<std::unique_ptr<Metric>>& metrics,
                                                      const EvalOptions& options) {
  std::vector<std::pair<Score, Signature>> results;
  for (const auto& metric : metrics) {
    const auto stats = metric->segment_stats(system.lines);
    Score score = metric->score(eval::sum_stats(stats, metric->stats_width()));
    Signature signature = metric->signature();
    if (options.confidence && !stats.empty()) {
      score.confidence = eval::bootstrap_confidence(
          stats, [&](const SegmentStats& s) { return metric->score_value(s); },
          static_cast<size_t>(options.confidence_n), options.seed);
      signature.bootstrap_samples = options.confidence_n;
      signature.seed = std::to_string(options.seed);
    }
    results.emplace_back(std::move(score), std::move(signature));
  }
  return results;
}

void print_results(const std::vector<std::pair<Score, Signature>>& results, const EvalOptions& options,
                   std::ostream& out) {
  if (options.format == "json") {
    if (results.size() > 1) out << "[\n";
    for (size_t i = 0; i < results.size(); ++i) {
      out << eval::format_score_json(results[i].first, results[i].second, options.width);
      out << (i + 1 < results.size() ? ",\n" : "\n");
    }
    if (results.size() > 1) out << "]\n";
    return;
  }
  for (const auto& [score, signature] : results) {
    out << score_text(score, options) << "\n";
    if (!options.score_only) out << signature.str() << "\n";
  }
}

void report_corpus(const std::vector<System>& systems, const std::vector<std::unique_ptr<Metric>>& metrics,
                   const EvalOptions& options, std::ostream& out) {
  if (systems.size() == 1) {
    print_results(score_system(systems[0], metrics, options), options, out);
    return;
  }
  if (options.format == "json") out << "[\n";
  for (size_t k = 0; k < systems.size(); ++k) {
    const auto results = score_system(systems[k], metrics, options);
    if (options.format == "json") {
      out << "{\"system\": " << eval::json_string(systems[k].name) << ", \"results\": [\n";
      for (size_t i = 0; i < results.size(); ++i) {
        out << eval::format_score_json(results[i].first, results[i].second, options.width)
            << (i + 1 < results.size() ? ",\n" : "\n");
      }
      out << "]}" << (k + 1 < systems.size() ? ",\n" : "\n");
    } else {
      out << "== " << systems[k].name << " ==\n";
      print_results(results, options, out);
    }
  }
  if (options.format == "json") out << "]\n";
}

void report_sentences(const System& system, const Metric& metric, const EvalOptions& options,
                      std::ostream& out) {
  const auto stats = metric.segment_stats(system.lines);
  const Signature signature = metric.signature();
  for (const auto& row : stats) {
    const Score score = metric.score(row);
    if (options.format == "json") {
      out << eval::format_score_json(score, signature, options.width, -1) << "\n";
    } else {
      out << score_text(score, options) << "\n";
    }
  }
  if (options.format != "json" && !options.score_only) out << signature.str() << "\n";
}

/// One cell of the paired table: "36.20 (μ = 36.19 ± 0.79) (p = 0.0010)*".
std::string paired_cell(double score, const eval::ConfidenceEstimate& ci, std::optional<double> p,
                        int width) {
  std::string cell = eval::format_fixed(score, width) + " (μ = " + eval::format_fixed(ci.mean, width) +
                     " ± " + eval::format_fixed(ci.half_width, width) + ")";
  if (p) cell += " (p = " + eval::format_fixed(*p, 4) + ")" + (*p < 0.05 ? "*" : "");
  return cell;
}

/// Display width in code points (the cells contain μ and ±).
size_t display_width(const std::string& s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], display_width(row[c]));
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - display_width(row[c]) + 2, ' ');
    }
    out << line << "\n";
  }
}

void report_paired(const std::vector<System>& systems, const std::vector<std::unique_ptr<Metric>>& metrics,
                   const EvalOptions& options, std::ostream& out) {
  const auto n = static_cast<size_t>(options.paired_bs_n);
  // results[m][k]: metric m, system k (k = 0 is the baseline, p-value unset)
  std::vector<std::vector<eval::PairedBootstrapResult>> results(metrics.size());
  std::vector<std::string> names, signatures;
  for (size_t m = 0; m < metrics.size(); ++m) {
    const Metric& metric = *metrics[m];
    const auto score = [&](const SegmentStats& s) { return metric.score_value(s); };
    const auto baseline = metric.segment_stats(systems[0].lines);
    for (size_t k = 1; k < systems.size(); ++k) {
      results[m].push_back(eval::paired_bootstrap(baseline, metric.segment_stats(systems[k].lines),
                                                  score, n, options.seed));
    }
    Signature signature = metric.signature();
    signature.bootstrap_samples = options.paired_bs_n;
    signature.seed = std::to_string(options.seed);
    names.push_back(metric.score(SegmentStats(metric.stats_width(), 0.0)).name);
    signatures.push_back(signature.str());
  }

  if (options.format == "json") {
    out << "{\n \"test\": \"paired-bs\",\n \"n_samples\": " << n << ",\n \"seed\": " << options.seed
        << ",\n \"systems\": [\n";
    for (size_t k = 0; k < systems.size(); ++k) {
      out << "  {\"name\": " << eval::json_string(systems[k].name)
          << ", \"baseline\": " << (k == 0 ? "true" : "false");
      for (size_t m = 0; m < metrics.size(); ++m) {
        const auto& r = results[m][k == 0 ? 0 : k - 1];
        const double score = k == 0 ? r.baseline_score : r.system_score;
        const auto& ci = k == 0 ? r.baseline_confidence : r.system_confidence;
        out << ", " << eval::json_string(names[m]) << ": {\"score\": "
            << eval::json_number(score, options.width)
            << ", \"mean\": " << eval::json_number(ci.mean, options.width)
            << ", \"ci\": " << eval::json_number(ci.half_width, options.width) << ", \"p_value\": "
            << (k == 0 ? std::string("null") : eval::json_number(r.p_value, 4)) << "}";
      }
      out << "}" << (k + 1 < systems.size() ? "," : "") << "\n";
    }
    out << " ],\n \"signatures\": {";
    for (size_t m = 0; m < metrics.size(); ++m) {
      out << (m ? ", " : "") << eval::json_string(names[m]) << ": " << eval::json_string(signatures[m]);
    }
    out << "}\n}\n";
    return;
  }

  out << "Paired bootstrap resampling: " << n << " resamples, seed " << options.seed
      << "; p-values against the baseline, * = p < 0.05\n";
  std::vector<std::vector<std::string>> rows{{"System"}};
  for (const auto& name : names) rows[0].push_back(name + " (μ ± 95% CI)");
  for (size_t k = 0; k < systems.size(); ++k) {
    std::vector<std::string> row{k == 0 ? "Baseline: " + systems[k].name : systems[k].name};
    for (size_t m = 0; m < metrics.size(); ++m) {
      const auto& r = results[m][k == 0 ? 0 : k - 1];
      row.push_back(k == 0 ? paired_cell(r.baseline_score, r.baseline_confidence, std::nullopt, options.width)
                           : paired_cell(r.system_score, r.system_confidence, r.p_value, options.width));
    }
    rows.push_back(std::move(row));
  }
  print_table(rows, out);
  for (size_t m = 0; m < metrics.size(); ++m) out << names[m] << ": " << signatures[m] << "\n";
}

}  // namespace

void run_eval(const EvalOptions& options, const TranslateFn& translate, std::ostream& out) {
  try {
    const eval::ReferenceSet refs = read_references(options);
    const size_t num_segments = refs.front().size();
    const std::vector<System> systems = load_systems(options, translate, num_segments);
    const auto metrics = make_metrics(options, refs);
    check_modes(options, systems.size(), metrics.size());

    if (options.sentence_level) {
      report_sentences(systems[0], *metrics[0], options, out);
    } else if (options.paired_bs) {
      report_paired(systems, metrics, options, out);
    } else {
      report_corpus(systems, metrics, options, out);
    }
  } catch (const std::invalid_argument& e) {  // the library's argument errors, as CLI errors
    throw std::runtime_error(std::string("eval: ") + e.what());
  }
}

void setup_eval(CLI::App& app, TranslateFn translate) {
  auto* cmd = app.add_subcommand("eval", command_description("eval"));
  auto options = std::make_shared<EvalOptions>();
  auto smooth_value = std::make_shared<double>(0.0);

  cmd->add_option("--hyp", options->hyp_files,
                  "Hypothesis file(s); with --paired-bs the first is the baseline");
  cmd->add_option("--hyp2", options->hyp2_file, "A further system (compared with --hyp by --paired-bs)");
  cmd->add_option("--ref", options->ref_files, "Reference file(s), one or more")->required();
  cmd->add_option("-m,--model", options->model_dir, "Translate --src with this model and score that");
  cmd->add_option("--src", options->src_file, "Source file to translate with -m/--model");
  cmd->add_option("--metrics", options->metrics, "Metrics to compute (default: bleu)")
      ->check(CLI::IsMember({"bleu", "chrf"}));
  cmd->add_option("--tokenize", options->tokenize, "BLEU tokenizer (default: 13a)")
      ->check(CLI::IsMember({"13a", "intl", "char", "zh", "none"}));
  cmd->add_flag("--lowercase", options->lowercase, "Case-insensitive BLEU");
  cmd->add_option("--smooth-method", options->smooth_method, "BLEU smoothing (default: exp)")
      ->check(CLI::IsMember({"exp", "floor", "add-k", "none"}));
  auto* smooth_opt = cmd->add_option("--smooth-value", *smooth_value,
                                     "Smoothing value for floor (default 0.1) and add-k (default 1)");
  cmd->add_flag("--force", options->force, "Do not warn about tokenized-looking hypotheses");
  cmd->add_option("--chrf-char-order", options->chrf_char_order, "chrF character n-gram order (default: 6)");
  cmd->add_option("--chrf-word-order", options->chrf_word_order, "chrF word n-gram order; 2 = chrF++ (default: 0)");
  cmd->add_option("--chrf-beta", options->chrf_beta, "chrF beta (default: 2)");
  cmd->add_flag("--chrf-whitespace", options->chrf_whitespace, "Keep whitespace in chrF character n-grams");
  cmd->add_flag("--chrf-lowercase", options->chrf_lowercase, "Case-insensitive chrF");
  cmd->add_flag("--chrf-eps-smoothing", options->chrf_eps_smoothing, "chrF++.py-style epsilon smoothing");
  cmd->add_flag("--sentence-level", options->sentence_level, "Score every sentence separately");
  cmd->add_flag("--confidence", options->confidence, "Add a 95% confidence interval (bootstrap)");
  cmd->add_option("--confidence-n", options->confidence_n, "Resamples for --confidence (default: 1000)");
  cmd->add_flag("--paired-bs", options->paired_bs, "Paired bootstrap test of every system against the first");
  cmd->add_option("--paired-bs-n", options->paired_bs_n, "Resamples for --paired-bs (default: 1000)");
  cmd->add_option("--seed", options->seed, "Seed of the resampling (default: 12345, as sacreBLEU)");
  cmd->add_option("--format", options->format, "Output format (default: text)")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("-w,--width", options->width, "Decimals of the scores (default: 2)");
  cmd->add_flag("-b,--score-only", options->score_only, "Print only the score(s)");

  cmd->callback([options, smooth_value, smooth_opt, translate = std::move(translate)] {
    EvalOptions resolved = *options;
    if (smooth_opt->count() > 0) resolved.smooth_value = *smooth_value;
    run_eval(resolved, translate, std::cout);
  });
}

}  // namespace nmt::cli

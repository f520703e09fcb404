#pragma once
/// @file eval_cmd.h
/// `nmt eval`: sacreBLEU-compatible scoring from the command line. Options are named like
/// sacreBLEU's long options (see EvalOptions); the numbers and signatures are sacreBLEU 2.x's.
///
///   nmt eval --hyp out.de --ref ref.de                       # BLEU, like `sacrebleu ref.de -i out.de -f text`
///   nmt eval --hyp out.de --ref ref1.de ref2.de --metrics bleu chrf --chrf-word-order 2
///   nmt eval -m runs/model --src test.en --ref test.de      # translate first, then score
///   nmt eval --hyp base.de --hyp new.de --ref ref.de --paired-bs   # new.de vs. baseline base.de
///   nmt eval --hyp base.de --hyp2 new.de --ref ref.de --paired-bs  # the same
///
/// Systems are, in this order: every --hyp file, --hyp2, and the model's translation of --src.
/// With --paired-bs the first system is the baseline and every other one is compared with it.
/// Errors (missing file, line-count mismatch, invalid UTF-8, bad option combination) are thrown
/// as std::runtime_error.
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace nmt::cli {

/// Translates every line of `src_file` with the model in `model_dir`; returns one line each.
using TranslateFn =
    std::function<std::vector<std::string>(const std::string& model_dir, const std::string& src_file)>;

/// Everything `nmt eval` accepts; defaults are sacreBLEU's unless noted.
struct EvalOptions {
  std::vector<std::string> hyp_files;  ///< --hyp FILE... (several systems allowed)
  std::string hyp2_file;               ///< --hyp2 FILE: a further system for --paired-bs
  std::vector<std::string> ref_files;  ///< --ref FILE... (one or more references)
  std::string model_dir;               ///< -m/--model DIR: translate --src with this model
  std::string src_file;                ///< --src FILE
  std::vector<std::string> metrics{"bleu"};  ///< --metrics bleu chrf
  // BLEU
  std::string tokenize = "13a";        ///< --tokenize 13a|intl|char|zh|none
  bool lowercase = false;              ///< --lowercase (BLEU only, as in sacreBLEU)
  std::string smooth_method = "exp";   ///< --smooth-method exp|floor|add-k|none
  std::optional<double> smooth_value;  ///< --smooth-value (floor: 0.1, add-k: 1)
  bool force = false;                  ///< --force
  // chrF
  int chrf_char_order = 6;             ///< --chrf-char-order
  int chrf_word_order = 0;             ///< --chrf-word-order (2 = chrF++)
  int chrf_beta = 2;                   ///< --chrf-beta
  bool chrf_whitespace = false;        ///< --chrf-whitespace
  bool chrf_lowercase = false;         ///< --chrf-lowercase
  bool chrf_eps_smoothing = false;     ///< --chrf-eps-smoothing
  // Statistics
  bool sentence_level = false;         ///< --sentence-level (BLEU uses effective order)
  bool confidence = false;             ///< --confidence: 95% CI by bootstrap resampling
  int confidence_n = 1000;             ///< --confidence-n
  bool paired_bs = false;              ///< --paired-bs
  int paired_bs_n = 1000;              ///< --paired-bs-n
  uint64_t seed = 12345;               ///< --seed (sacreBLEU's SACREBLEU_SEED default)
  // Reporting
  std::string format = "text";         ///< --format text|json (sacreBLEU's CLI defaults to json)
  int width = 2;                       ///< --width: decimals of scores (sacreBLEU's CLI: 1)
  bool score_only = false;             ///< -b/--score-only
};

/// Registers the `eval` subcommand on `app`; its callback reads the files, scores, and prints to
/// stdout. `translate` is only called for -m/--model.
void setup_eval(CLI::App& app, TranslateFn translate);

/// Runs an evaluation and writes the report to `out`.
void run_eval(const EvalOptions& options, const TranslateFn& translate, std::ostream& out);

}  // namespace nmt::cli

#pragma once
/// @file score.h
/// What every metric produces: flattened sufficient statistics, a named score, and sacreBLEU's
/// reproducibility signature, with sacreBLEU's text and JSON renderings (Score.format()).
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nmt::eval {

/// Sufficient statistics of one segment, or their sum over a corpus, flattened exactly like
/// sacreBLEU's lists (the layouts are documented in bleu.h and chrf.h). Counts are stored as
/// doubles so that resampling can sum them without conversions.
using SegmentStats = std::vector<double>;

/// Element-wise sum of segment statistics (sacreBLEU's sum_of_lists). `width` is the row length
/// used when `rows` is empty.
SegmentStats sum_stats(const std::vector<SegmentStats>& rows, size_t width);

/// Bootstrap estimate around a score: the resample mean and half the width of the 95% interval
/// (sacreBLEU prints it as "μ = mean ± half_width").
struct ConfidenceEstimate {
  double mean = 0.0;
  double half_width = 0.0;
};

/// A corpus- or sentence-level result.
struct Score {
  std::string name;     ///< "BLEU", "chrF2", "chrF2++"
  double score = 0.0;   ///< on sacreBLEU's 0..100 scale
  std::string verbose;  ///< BLEU's "66.7/41.2/28.4/20.1 (BP = ...)" breakdown; empty for chrF
  std::optional<ConfidenceEstimate> confidence;
};

/// sacreBLEU's signature: `nrefs`, then `bs`/`seed` when resampling was used, then the metric's
/// own fields, then `version` (always last).
struct Signature {
  std::string nrefs = "1";  ///< number of references, or "var" when it varies per segment
  std::optional<int> bootstrap_samples;
  std::optional<std::string> seed;
  std::vector<std::pair<std::string, std::string>> metric_fields;
  std::string version = version_tag();

  /// All fields in print order.
  std::vector<std::pair<std::string, std::string>> fields() const;
  /// "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:nmt-0.1.0"
  std::string str() const;
  /// "nmt-" followed by the NMT_VERSION macro.
  static std::string version_tag();
};

/// Python's f"{value:.{decimals}f}".
std::string format_fixed(double value, int decimals);

/// sacreBLEU's text form: "BLEU = 35.12 (μ = 35.10 ± 0.81) 66.7/41.2/... (BP = ...)".
/// `width` is the number of decimals of the score (chrF, on a 0..100 scale, uses the same).
std::string format_score(const Score& score, int width);

/// sacreBLEU's JSON form (json.dumps(..., indent=1)): name, score, signature, confidence fields,
/// verbose_score and every signature field as a string. `indent` < 0 gives one compact line.
std::string format_score_json(const Score& score, const Signature& signature, int width,
                              int indent = 1);

/// A JSON string literal (quotes and escapes; non-ASCII is written as UTF-8, like
/// ensure_ascii=False).
std::string json_string(std::string_view text);

/// A number the way Python prints float(f"{value:.{decimals}f}"): rounded, then the shortest
/// form ("48.5", "0.0", "100.0").
std::string json_number(double value, int decimals);

}  // namespace nmt::eval

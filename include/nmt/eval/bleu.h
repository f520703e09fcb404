#pragma once
/// @file bleu.h
/// BLEU (Papineni et al., 2002) exactly as sacreBLEU 2.x computes it:
///  - each line is lowercased (optional), rstrip()ped and tokenised (tokenize.h), then split on
///    whitespace into words;
///  - clipped n-gram matches use, per n-gram, the maximum count over the segment's references;
///  - the reference length of a segment is the reference length closest to the hypothesis
///    length, the shorter one on ties;
///  - corpus BLEU sums the statistics of all segments, then computes
///    BP * exp(mean(log p_n)) with p_n in percent and log(0) taken as -9999999999;
///  - smoothing (Chen & Cherry, 2014): `none`; `floor` (zero matches count as `smooth_value`,
///    default 0.1); `add-k` (adds `smooth_value`, default 1, to matches and totals of orders
///    n > 1); `exp` (default; the k-th order with zero matches gets precision
///    100 / (2^k * total), k = 1, 2, ...);
///  - a corpus without a single matching n-gram scores 0 whatever the smoothing;
///  - effective order (sentence-level BLEU): orders the hypothesis is too short to have are
///    left out of the geometric mean.
/// Statistics layout (one row per segment): [hyp_len, ref_len, correct_1..N, total_1..N].
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nmt/eval/metric.h"
#include "nmt/eval/tokenize.h"

namespace nmt::eval {

enum class Smoothing { None, Floor, AddK, Exp };

/// Parses "none", "floor", "add-k" or "exp"; throws std::invalid_argument otherwise.
Smoothing parse_smoothing(std::string_view name);
std::string smoothing_name(Smoothing method);
/// sacreBLEU's defaults: floor 0.1, add-k 1 (0 for methods without a value).
double default_smooth_value(Smoothing method);

struct BleuOptions {
  Tokenizer tokenizer = Tokenizer::V13a;
  bool lowercase = false;
  Smoothing smooth_method = Smoothing::Exp;
  std::optional<double> smooth_value;  ///< unset: the method's default
  int max_ngram_order = 4;
  bool effective_order = false;  ///< sacreBLEU turns it on for sentence-level BLEU
  bool force = false;  ///< silences the warning about >= 100 hypotheses ending in " ."
};

/// BLEU with its breakdown, as sacreBLEU's BLEUScore.
struct BleuScore {
  double score = 0.0;
  std::vector<double> counts;      ///< matches per order (after add-k)
  std::vector<double> totals;      ///< hypothesis n-grams per order (after add-k)
  std::vector<double> precisions;  ///< in percent, after smoothing
  double bp = 0.0;
  long sys_len = 0;
  long ref_len = 0;

  double ratio() const { return ref_len ? static_cast<double>(sys_len) / ref_len : 0.0; }
  /// "66.7/41.2/28.4/20.1 (BP = 1.000 ratio = 1.012 hyp_len = 12345 ref_len = 12200)"
  std::string verbose() const;
};

/// BLEU from summed statistics (sacreBLEU's BLEU.compute_bleu). Throws std::invalid_argument if
/// `stats` does not have 2 + 2 * max_ngram_order entries.
BleuScore compute_bleu(const SegmentStats& stats, const BleuOptions& options);

class Bleu : public Metric {
 public:
  /// Preprocesses and caches the references. Throws std::invalid_argument if the reference
  /// streams differ in length, a segment has no non-empty reference, or a line is not UTF-8.
  Bleu(BleuOptions options, const ReferenceSet& references);
  ~Bleu() override;

  size_t num_segments() const override;
  size_t stats_width() const override { return 2 + 2 * static_cast<size_t>(options_.max_ngram_order); }
  std::vector<SegmentStats> segment_stats(const std::vector<std::string>& hyps) const override;
  Score score(const SegmentStats& stats) const override;
  double score_value(const SegmentStats& stats) const override;
  /// nrefs, case (mixed|lc), eff (yes|no), tok, smooth ("exp", "floor[0.10]", "add-k[1.00]").
  Signature signature() const override;

  const BleuOptions& options() const { return options_; }

 private:
  struct Cache;
  BleuOptions options_;
  std::unique_ptr<Cache> cache_;
};

}  // namespace nmt::eval

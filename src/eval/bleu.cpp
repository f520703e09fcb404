/// @file bleu.cpp
#include "nmt/eval/bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "nmt/eval/parallel.h"
#include "nmt/eval/unicode.h"

namespace nmt::eval {
namespace {

/// sacreBLEU's my_log(): log with log(0) floored to -9999999999.
double floored_log(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

/// Lowercase (optional), rstrip, tokenise, and collapse whitespace: the words of the result are
/// separated by single spaces. UTF-8 in and out; 13a and none work on the bytes directly.
std::string preprocess(std::string_view line, const BleuOptions& options) {
  const bool bytes = !options.lowercase &&
                     (options.tokenizer == Tokenizer::V13a || options.tokenizer == Tokenizer::None);
  if (bytes) {
    // rstrip leaves invalid UTF-8 in place, and tokenize() rejects it; 13a's output is normalised.
    std::string tokens = tokenize(utf8_rstrip(line), options.tokenizer);
    if (options.tokenizer == Tokenizer::V13a) return tokens;
    return utf8_normalize_spaces(tokens);
  }
  std::u32string text = utf8_decode(line);
  if (options.lowercase) text = py_lower(text);
  return utf8_encode(py_normalize_spaces(tokenize(py_rstrip(text), options.tokenizer)));
}

constexpr uint32_t kUnknown = 0xFFFFFFFFu;  ///< the id of a word no reference has

/// The ids of the reference words (0, 1, 2, ...), so that n-grams compare as arrays of integers:
/// an open-addressing hash table (linear probing, at most half full) over UTF-8 bytes (equal
/// bytes are equal code points), the words kept in one arena.
class WordIds {
 public:
  /// The id of `word`, a new one if the table does not hold it yet.
  uint32_t insert(std::string_view word) {
    if (2 * (count_ + 1) > slots_.size()) grow();
    const uint32_t hash = hash_of(word);
    Slot& slot = slots_[probe(word, hash)];
    if (slot.id == kUnknown) {
      if (arena_.size() + word.size() > 0xFFFFFFFFu) throw std::length_error("BLEU: references over 4 GB");
      slot = Slot{static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(word.size()), hash,
                  static_cast<uint32_t>(count_++)};
      arena_ += word;
    }
    return slot.id;
  }

  /// The id of `word`, or kUnknown.
  uint32_t find(std::string_view word) const {
    return slots_.empty() ? kUnknown : slots_[probe(word, hash_of(word))].id;
  }

 private:
  struct Slot {
    uint32_t offset = 0, size = 0;  ///< the word in arena_
    uint32_t hash = 0;
    uint32_t id = kUnknown;  ///< kUnknown: an empty slot
  };

  static uint32_t hash_of(std::string_view word) {
    const size_t h = std::hash<std::string_view>{}(word);
    return static_cast<uint32_t>(h ^ (h >> 32));
  }

  /// The slot holding `word`, or the empty slot where it would go.
  size_t probe(std::string_view word, uint32_t hash) const {
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      if (slot.id == kUnknown ||
          (slot.hash == hash && std::string_view(arena_).substr(slot.offset, slot.size) == word)) {
        return i;
      }
    }
  }

  void grow() {
    std::vector<Slot> old(std::max<size_t>(64, 2 * slots_.size()));
    old.swap(slots_);
    const size_t mask = slots_.size() - 1;
    for (const Slot& slot : old) {
      if (slot.id == kUnknown) continue;
      size_t i = slot.hash & mask;
      while (slots_[i].id != kUnknown) i = (i + 1) & mask;
      slots_[i] = slot;
    }
  }

  std::vector<Slot> slots_;  ///< a power of two in size
  std::string arena_;        ///< the words, one after the other
  size_t count_ = 0;
};

/// The word ids of a single-spaced line: `lookup` is WordIds::insert for references, find for
/// hypotheses (whose words no reference has all get kUnknown: no reference n-gram holds one).
template <typename Lookup>
std::vector<uint32_t> word_ids(std::string_view text, Lookup lookup) {
  std::vector<uint32_t> ids;
  ids.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), ' ')) + 1);
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    ids.push_back(lookup(text.substr(start, end - start)));
    start = end + 1;
  }
  return ids;
}

/// N-gram counts of one order n of one line: (where the n-gram starts in the line's word ids,
/// count), sorted by the n ids, each n-gram once. Only n-grams of the same segment are ever
/// compared, so small sorted lists serve better than a corpus-wide table (which spends its time
/// in cache misses).
using NgramCounts = std::vector<std::pair<const uint32_t*, int>>;

/// Lexicographic order of n-grams of n words by their ids.
struct NgramLess {
  size_t n;
  bool operator()(const uint32_t* a, const uint32_t* b) const {
    for (size_t k = 0; k < n; ++k) {
      if (a[k] != b[k]) return a[k] < b[k];
    }
    return false;
  }
};

/// Counts of the n-grams, n = 1..max_order, of a line's word ids (which must outlive them).
std::vector<NgramCounts> count_ngrams(const std::vector<uint32_t>& ids, int max_order) {
  const size_t words = ids.size();
  std::vector<NgramCounts> counts(static_cast<size_t>(max_order));
  std::vector<const uint32_t*> grams;
  grams.reserve(words);
  for (size_t n = 1; n <= counts.size() && n <= words; ++n) {
    grams.clear();
    for (size_t i = 0; i + n <= words; ++i) grams.push_back(ids.data() + i);
    const NgramLess less{n};
    std::sort(grams.begin(), grams.end(), less);
    auto& out = counts[n - 1];
    out.reserve(grams.size());
    for (const uint32_t* g : grams) {
      if (!out.empty() && !less(out.back().first, g)) ++out.back().second;
      else out.emplace_back(g, 1);
    }
  }
  return counts;
}

/// The n-grams of either list, each with the larger of its two counts (several references).
NgramCounts max_counts(const NgramCounts& a, const NgramCounts& b, size_t n) {
  const NgramLess less{n};
  NgramCounts out;
  out.reserve(a.size() + b.size());
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && less(a[i].first, b[j].first))) {
      out.push_back(a[i++]);
    } else if (i == a.size() || less(b[j].first, a[i].first)) {
      out.push_back(b[j++]);
    } else {
      out.emplace_back(a[i].first, std::max(a[i].second, b[j].second));
      ++i;
      ++j;
    }
  }
  return out;
}

/// Σ over the hypothesis n-grams of min(count, reference count): the clipped matches.
long clipped_matches(const NgramCounts& hyp, const NgramCounts& ref, size_t n) {
  const NgramLess less{n};
  long matches = 0;
  for (size_t i = 0, j = 0; i < hyp.size() && j < ref.size();) {
    if (less(hyp[i].first, ref[j].first)) {
      ++i;
    } else if (less(ref[j].first, hyp[i].first)) {
      ++j;
    } else {
      matches += std::min(hyp[i++].second, ref[j++].second);
    }
  }
  return matches;
}

/// sacreBLEU's _get_closest_ref_len(): closest length, the shorter one on ties.
long closest_ref_len(long hyp_len, const std::vector<long>& ref_lens) {
  long best_diff = -1, best_len = -1;
  for (const long len : ref_lens) {
    const long diff = std::labs(hyp_len - len);
    if (best_diff == -1 || diff < best_diff) {
      best_diff = diff;
      best_len = len;
    } else if (diff == best_diff && len < best_len) {
      best_len = len;
    }
  }
  return best_len;
}

}  // namespace

Smoothing parse_smoothing(std::string_view name) {
  if (name == "none") return Smoothing::None;
  if (name == "floor") return Smoothing::Floor;
  if (name == "add-k") return Smoothing::AddK;
  if (name == "exp") return Smoothing::Exp;
  throw std::invalid_argument("unknown smoothing method '" + std::string(name) +
                              "' (choose from exp, floor, add-k, none)");
}

std::string smoothing_name(Smoothing method) {
  switch (method) {
    case Smoothing::None: return "none";
    case Smoothing::Floor: return "floor";
    case Smoothing::AddK: return "add-k";
    case Smoothing::Exp: return "exp";
  }
  return "?";
}

double default_smooth_value(Smoothing method) {
  switch (method) {
    case Smoothing::Floor: return 0.1;
    case Smoothing::AddK: return 1.0;
    default: return 0.0;
  }
}

std::string BleuScore::verbose() const {
  std::string out;
  for (size_t i = 0; i < precisions.size(); ++i) {
    if (i) out += '/';
    out += format_fixed(precisions[i], 1);
  }
  out += " (BP = " + format_fixed(bp, 3) + " ratio = " + format_fixed(ratio(), 3) +
         " hyp_len = " + std::to_string(sys_len) + " ref_len = " + std::to_string(ref_len) + ")";
  return out;
}

BleuScore compute_bleu(const SegmentStats& stats, const BleuOptions& options) {
  const auto order = static_cast<size_t>(options.max_ngram_order);
  if (stats.size() != 2 + 2 * order) {
    throw std::invalid_argument("BLEU statistics need " + std::to_string(2 + 2 * order) +
                                " entries, got " + std::to_string(stats.size()));
  }
  BleuScore out;
  out.sys_len = static_cast<long>(stats[0]);
  out.ref_len = static_cast<long>(stats[1]);
  out.counts.assign(stats.begin() + 2, stats.begin() + 2 + static_cast<long>(order));
  out.totals.assign(stats.begin() + 2 + static_cast<long>(order), stats.end());
  out.precisions.assign(order, 0.0);
  const double smooth_value =
      options.smooth_value.value_or(default_smooth_value(options.smooth_method));

  if (out.sys_len < out.ref_len) {
    out.bp = out.sys_len > 0 ? std::exp(1.0 - static_cast<double>(out.ref_len) / out.sys_len) : 0.0;
  } else {
    out.bp = 1.0;
  }
  // No matching n-gram at all: BLEU is 0 whatever the smoothing (sacreBLEU #141).
  if (std::all_of(out.counts.begin(), out.counts.end(), [](double c) { return c == 0.0; })) {
    return out;
  }

  double smooth_mteval = 1.0;
  size_t eff_order = order;
  for (size_t n = 1; n <= order; ++n) {
    double& correct = out.counts[n - 1];
    double& total = out.totals[n - 1];
    if (options.smooth_method == Smoothing::AddK && n > 1) {
      correct += smooth_value;
      total += smooth_value;
    }
    if (total == 0.0) break;
    if (options.effective_order) eff_order = n;
    if (correct == 0.0) {
      if (options.smooth_method == Smoothing::Exp) {
        smooth_mteval *= 2;
        out.precisions[n - 1] = 100.0 / (smooth_mteval * total);
      } else if (options.smooth_method == Smoothing::Floor) {
        out.precisions[n - 1] = 100.0 * smooth_value / total;
      }
    } else {
      out.precisions[n - 1] = 100.0 * correct / total;
    }
  }
  double log_sum = 0.0;
  for (size_t i = 0; i < eff_order; ++i) log_sum += floored_log(out.precisions[i]);
  out.score = out.bp * std::exp(log_sum / static_cast<double>(eff_order));
  return out;
}

/// Reference n-grams of one segment: the maximum count over its references, and their lengths.
struct BleuSegmentRefs {
  std::vector<std::vector<uint32_t>> ids;  ///< each reference's word ids (the n-grams point here)
  std::vector<NgramCounts> ngrams;
  std::vector<long> lengths;
};

struct Bleu::Cache {
  WordIds words;  ///< the words of all references
  std::vector<BleuSegmentRefs> segments;
  std::string nrefs;
};

Bleu::Bleu(BleuOptions options, const ReferenceSet& references)
    : options_(std::move(options)), cache_(std::make_unique<Cache>()) {
  if (options_.max_ngram_order < 1) throw std::invalid_argument("BLEU: max n-gram order must be >= 1");
  if (references.empty()) throw std::invalid_argument("BLEU: no references given");
  const size_t num_segments = references.front().size();
  for (const auto& stream : references) {
    if (stream.size() != num_segments) {
      throw std::invalid_argument("BLEU: reference streams differ in length (" +
                                  std::to_string(num_segments) + " vs " +
                                  std::to_string(stream.size()) + " lines)");
    }
  }
  // The references preprocessed, segments split across threads (an error names the first bad
  // segment, as a sequential loop would) ...
  std::vector<std::vector<std::string>> texts(num_segments);  // [segment][reference]
  parallel_chunks(num_segments, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      for (const auto& stream : references) {
        if (!stream[i].empty()) texts[i].push_back(preprocess(stream[i], options_));  // else fewer references
      }
      if (texts[i].empty()) {
        throw std::invalid_argument("BLEU: segment " + std::to_string(i + 1) +
                                    " has no non-empty reference");
      }
    }
  });
  // ... then the word ids, one table for the whole corpus, ...
  const auto insert = [this](std::string_view word) { return cache_->words.insert(word); };
  cache_->segments.resize(num_segments);
  size_t min_refs = references.size(), max_refs = 0;
  for (size_t i = 0; i < num_segments; ++i) {
    BleuSegmentRefs& seg = cache_->segments[i];
    for (const auto& text : texts[i]) {
      seg.ids.push_back(word_ids(text, insert));
      seg.lengths.push_back(static_cast<long>(seg.ids.back().size()));
    }
    min_refs = std::min(min_refs, seg.ids.size());
    max_refs = std::max(max_refs, seg.ids.size());
  }
  // ... and each segment's n-gram counts, split across threads again.
  parallel_chunks(num_segments, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      BleuSegmentRefs& seg = cache_->segments[i];
      seg.ngrams.resize(static_cast<size_t>(options_.max_ngram_order));
      // The n-grams point into the id vectors, whose buffers stay put when seg.ids is not changed.
      for (const auto& ids : seg.ids) {
        auto counts = count_ngrams(ids, options_.max_ngram_order);
        for (size_t n = 0; n < counts.size(); ++n) {
          seg.ngrams[n] = &ids == &seg.ids.front() ? std::move(counts[n])
                                                   : max_counts(seg.ngrams[n], counts[n], n + 1);
        }
      }
    }
  });
  cache_->nrefs = num_segments == 0 ? std::to_string(references.size())
                  : min_refs == max_refs ? std::to_string(max_refs) : "var";
}

Bleu::~Bleu() = default;

size_t Bleu::num_segments() const { return cache_->segments.size(); }

std::vector<SegmentStats> Bleu::segment_stats(const std::vector<std::string>& hyps) const {
  if (hyps.size() != num_segments()) {
    throw std::invalid_argument("BLEU: " + std::to_string(hyps.size()) + " hypotheses but " +
                                std::to_string(num_segments()) + " reference segments");
  }
  const auto order = static_cast<size_t>(options_.max_ngram_order);
  std::vector<SegmentStats> rows(hyps.size());
  const auto find = [this](std::string_view word) { return cache_->words.find(word); };
  parallel_chunks(hyps.size(), [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const std::vector<uint32_t> ids = word_ids(preprocess(hyps[i], options_), find);
      const auto hyp_len = static_cast<long>(ids.size());
      const auto counts = count_ngrams(ids, options_.max_ngram_order);
      const BleuSegmentRefs& refs = cache_->segments[i];
      SegmentStats& row = rows[i];
      row.assign(2 + 2 * order, 0.0);
      row[0] = static_cast<double>(hyp_len);
      row[1] = static_cast<double>(closest_ref_len(hyp_len, refs.lengths));
      for (size_t n = 0; n < order; ++n) {
        for (const auto& gram : counts[n]) row[2 + order + n] += gram.second;
        row[2 + n] = static_cast<double>(clipped_matches(counts[n], refs.ngrams[n], n + 1));
      }
    }
  });
  const auto tokenized_periods = std::count_if(hyps.begin(), hyps.end(), [](const std::string& hyp) {
    return hyp.size() >= 2 && hyp.compare(hyp.size() - 2, 2, " .") == 0;
  });
  if (!options_.force && tokenized_periods >= 100) {
    spdlog::warn("That's {} lines that end in a tokenized period ('.'): it looks like you forgot "
                 "to detokenize your test data, which may hurt your score (silence with --force)",
                 tokenized_periods);
  }
  return rows;
}

Score Bleu::score(const SegmentStats& stats) const {
  const BleuScore bleu = compute_bleu(stats, options_);
  return Score{"BLEU", bleu.score, bleu.verbose(), std::nullopt};
}

double Bleu::score_value(const SegmentStats& stats) const {
  return compute_bleu(stats, options_).score;
}

Signature Bleu::signature() const {
  std::string smooth = smoothing_name(options_.smooth_method);
  if (options_.smooth_method == Smoothing::Floor || options_.smooth_method == Smoothing::AddK) {
    smooth += "[" +
              format_fixed(options_.smooth_value.value_or(default_smooth_value(options_.smooth_method)), 2) +
              "]";
  }
  Signature sig;
  sig.nrefs = cache_->nrefs;
  sig.metric_fields = {{"case", options_.lowercase ? "lc" : "mixed"},
                       {"eff", options_.effective_order ? "yes" : "no"},
                       {"tok", tokenizer_name(options_.tokenizer)},
                       {"smooth", smooth}};
  return sig;
}

}  // namespace nmt::eval

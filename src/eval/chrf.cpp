/// @file chrf.cpp
#include "nmt/eval/chrf.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>

#include "nmt/eval/parallel.h"
#include "nmt/eval/unicode.h"

namespace nmt::eval {
namespace {

/// string.punctuation, the characters chrF++ splits off word edges.
bool is_ascii_punct(char32_t c) {
  return (c >= U'!' && c <= U'/') || (c >= U':' && c <= U'@') || (c >= U'[' && c <= U'`') ||
         (c >= U'{' && c <= U'~');
}

/// One side of a segment as chrF reads it: the characters its n-grams come from, and for
/// chrF++ the words (sacreBLEU's CHRF._remove_punctuation(): whitespace-split words with one
/// ASCII punctuation character split off the end, or else off the start, of every word longer
/// than one character), as (offset, length) in `line`.
struct ChrfText {
  std::u32string line;   ///< decoded, lowercased if asked
  std::u32string chars;  ///< the line without whitespace, unless options.whitespace
  std::vector<std::pair<uint32_t, uint32_t>> words;

  std::u32string_view word(size_t k) const {
    return std::u32string_view(line).substr(words[k].first, words[k].second);
  }
};

ChrfText prepare(std::string_view utf8_line, const ChrfOptions& options) {
  ChrfText out;
  out.line = utf8_decode(utf8_line);
  if (options.lowercase) out.line = py_lower(out.line);
  const auto fields = py_split(out.line);
  if (options.whitespace) {
    out.chars = out.line;
  } else {
    out.chars.reserve(out.line.size());
    for (const auto field : fields) out.chars.append(field);
  }
  if (options.word_order > 0) {
    const auto add = [&](std::u32string_view w) {
      out.words.emplace_back(static_cast<uint32_t>(w.data() - out.line.data()), static_cast<uint32_t>(w.size()));
    };
    for (const auto w : fields) {
      if (w.size() == 1) {
        add(w);
      } else if (is_ascii_punct(w.back())) {
        add(w.substr(0, w.size() - 1));
        add(w.substr(w.size() - 1));
      } else if (is_ascii_punct(w.front())) {
        add(w.substr(0, 1));
        add(w.substr(1));
      } else {
        add(w);
      }
    }
  }
  return out;
}

/// Dense ids 0, 1, 2, ... for the distinct keys of one segment (a hypothesis and its
/// references): open addressing, linear probing, at most half full; small enough to stay in
/// the cache, unlike a table of the whole corpus. `Key` is a uint64_t or a u32string_view.
template <typename Key>
class SegmentIds {
 public:
  /// Empties the table and makes room for `keys` distinct keys.
  void reset(size_t keys) {
    size_t size = 16;
    while (size < 2 * keys) size *= 2;
    slots_.assign(size, Slot{});
    count_ = 0;
  }

  uint32_t id(Key key) {
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash_of(key) & mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.id == kEmpty) {
        slot = Slot{key, static_cast<uint32_t>(count_++)};
        return slot.id;
      }
      if (slot.key == key) return slot.id;
    }
  }

  /// How many distinct keys have ids.
  size_t size() const { return count_; }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  struct Slot {
    Key key{};
    uint32_t id = kEmpty;
  };
  static size_t hash_of(Key key) {
    if constexpr (std::is_same_v<Key, uint64_t>) {
      key = (key ^ (key >> 30)) * 0xBF58476D1CE4E5B9ull;  // splitmix64's finaliser
      key = (key ^ (key >> 27)) * 0x94D049BB133111EBull;
      return static_cast<size_t>(key ^ (key >> 31));
    } else {
      return std::hash<Key>{}(key);
    }
  }

  std::vector<Slot> slots_;
  size_t count_ = 0;
};

/// The n-gram ids of every text of a segment, order by order: ids[t][i] is the id of the
/// n-gram starting at token i of text t. Unigrams take their ids from `unigram_ids`; the
/// n-gram at i of order n is the pair (its (n-1)-gram at i, the unigram at i + n - 1), so
/// equal n-grams get equal ids within the segment whatever n is.
class SegmentNgrams {
 public:
  /// Starts from the unigram ids of each text, `distinct` of them.
  SegmentNgrams(std::vector<std::vector<uint32_t>> unigram_ids, size_t distinct)
      : unigrams_(std::move(unigram_ids)), ids_(unigrams_), distinct_(distinct) {
    for (const auto& u : unigrams_) total_ += u.size();
  }

  /// The ids of the current order (1 after construction).
  const std::vector<std::vector<uint32_t>>& ids() const { return ids_; }
  /// How many distinct n-grams of the current order the segment has (ids are below this).
  size_t distinct() const { return distinct_; }

  /// Moves on to the next order.
  void next_order(SegmentIds<uint64_t>& table) {
    ++order_;
    table.reset(total_);
    for (size_t t = 0; t < ids_.size(); ++t) {
      auto& ids = ids_[t];
      const auto& unigrams = unigrams_[t];
      if (ids.empty()) continue;
      ids.pop_back();  // one n-gram fewer than (n-1)-grams
      for (size_t i = 0; i < ids.size(); ++i) {
        ids[i] = table.id(static_cast<uint64_t>(ids[i]) << 32 | unigrams[i + order_ - 1]);
      }
    }
    distinct_ = table.size();
  }

 private:
  std::vector<std::vector<uint32_t>> unigrams_, ids_;
  size_t distinct_, total_ = 0, order_ = 1;
};

/// Appends [hyp, ref, match] of one order for each reference (texts 1, 2, ...; text 0 is the
/// hypothesis) to stats[r]: sacreBLEU's _get_match_statistics(), the clipped matches counted by
/// letting each reference n-gram take one of the hypothesis's remaining occurrences.
void add_order_statistics(const SegmentNgrams& ngrams, std::vector<int>& available,
                          std::vector<SegmentStats>& stats) {
  const auto& ids = ngrams.ids();
  const auto& hyp = ids[0];
  available.assign(ngrams.distinct(), 0);
  for (size_t r = 1; r < ids.size(); ++r) {
    for (const uint32_t id : hyp) ++available[id];
    size_t matches = 0;
    for (const uint32_t id : ids[r]) {
      if (available[id] > 0) {
        --available[id];
        ++matches;
      }
    }
    for (const uint32_t id : hyp) available[id] = 0;
    // A hypothesis n-gram count only counts when the reference has n-grams of that order.
    stats[r - 1].push_back(ids[r].empty() ? 0.0 : static_cast<double>(hyp.size()));
    stats[r - 1].push_back(static_cast<double>(ids[r].size()));
    stats[r - 1].push_back(static_cast<double>(matches));
  }
}

/// Appends the statistics of orders 1..max_order of one kind of n-gram (characters or words)
/// to stats[r] for every reference r. `unigram_of(text, k)` is the key of token k of a text
/// and `tokens(text)` their number; `unigram_table` gives the unigrams their ids (it may be
/// `table` itself), `table` the n-grams of the higher orders.
template <typename Key, typename Tokens, typename UnigramOf>
void add_statistics(const std::vector<const ChrfText*>& texts, int max_order, Tokens tokens,
                    UnigramOf unigram_of, SegmentIds<Key>& unigram_table, SegmentIds<uint64_t>& table,
                    std::vector<int>& available, std::vector<SegmentStats>& stats) {
  if (max_order <= 0) return;
  size_t total = 0;
  for (const auto* t : texts) total += tokens(*t);
  unigram_table.reset(total);
  std::vector<std::vector<uint32_t>> unigrams;
  for (const auto* t : texts) {
    auto& ids = unigrams.emplace_back();
    ids.reserve(tokens(*t));
    for (size_t k = 0; k < tokens(*t); ++k) ids.push_back(unigram_table.id(unigram_of(*t, k)));
  }
  SegmentNgrams ngrams(std::move(unigrams), unigram_table.size());
  for (int n = 1; n <= max_order; ++n) {
    if (n > 1) ngrams.next_order(table);
    add_order_statistics(ngrams, available, stats);
  }
}

/// [hyp, ref, match] for every char order, then every word order, for the hypothesis against
/// each reference (sacreBLEU's CHRF._compute_segment_statistics before it picks the best).
std::vector<SegmentStats> segment_statistics(const ChrfText& hyp, const std::vector<ChrfText>& refs,
                                             const ChrfOptions& options) {
  std::vector<const ChrfText*> texts{&hyp};
  for (const auto& ref : refs) texts.push_back(&ref);
  std::vector<SegmentStats> stats(refs.size());
  for (auto& row : stats) row.reserve(3 * static_cast<size_t>(options.char_order + options.word_order));
  std::vector<int> available;
  SegmentIds<uint64_t> table;
  add_statistics(
      texts, options.char_order, [](const ChrfText& t) { return t.chars.size(); },
      [](const ChrfText& t, size_t k) { return static_cast<uint64_t>(t.chars[k]); }, table, table, available,
      stats);
  SegmentIds<std::u32string_view> words;
  add_statistics(
      texts, options.word_order, [](const ChrfText& t) { return t.words.size(); },
      [](const ChrfText& t, size_t k) { return t.word(k); }, words, table, available, stats);
  return stats;
}

}  // namespace

double compute_chrf(const SegmentStats& stats, const ChrfOptions& options) {
  const auto order = static_cast<size_t>(options.char_order + options.word_order);
  if (stats.size() != 3 * order) {
    throw std::invalid_argument("chrF statistics need " + std::to_string(3 * order) +
                                " entries, got " + std::to_string(stats.size()));
  }
  const double eps = 1e-16;
  const double factor = static_cast<double>(options.beta) * options.beta;
  double score = 0.0, avg_prec = 0.0, avg_rec = 0.0;
  int effective_order = 0;
  for (size_t i = 0; i < order; ++i) {
    const double n_hyp = stats[3 * i], n_ref = stats[3 * i + 1], n_match = stats[3 * i + 2];
    const double prec = n_hyp > 0 ? n_match / n_hyp : eps;
    const double rec = n_ref > 0 ? n_match / n_ref : eps;
    const double denom = factor * prec + rec;
    score += denom > 0 ? (1 + factor) * prec * rec / denom : eps;
    if (n_hyp > 0 && n_ref > 0) {
      avg_prec += prec;
      avg_rec += rec;
      ++effective_order;
    }
  }
  if (options.eps_smoothing) return 100 * score / static_cast<double>(order);
  if (effective_order == 0) {
    avg_prec = avg_rec = 0.0;
  } else {
    avg_prec /= effective_order;
    avg_rec /= effective_order;
  }
  if (avg_prec + avg_rec == 0.0) return 0.0;
  score = (1 + factor) * avg_prec * avg_rec;
  score /= (factor * avg_prec) + avg_rec;
  return 100 * score;
}

std::string chrf_name(const ChrfOptions& options) {
  return "chrF" + std::to_string(options.beta) +
         std::string(static_cast<size_t>(std::max(0, options.word_order)), '+');
}

struct Chrf::Cache {
  /// segments[i] holds segment i's non-empty references.
  std::vector<std::vector<ChrfText>> segments;
  std::string nrefs;
};

Chrf::Chrf(ChrfOptions options, const ReferenceSet& references)
    : options_(options), cache_(std::make_unique<Cache>()) {
  if (options_.char_order < 0 || options_.word_order < 0 ||
      options_.char_order + options_.word_order == 0) {
    throw std::invalid_argument("chrF: n-gram orders must be >= 0 and not both 0");
  }
  if (references.empty()) throw std::invalid_argument("chrF: no references given");
  const size_t num_segments = references.front().size();
  for (const auto& stream : references) {
    if (stream.size() != num_segments) {
      throw std::invalid_argument("chrF: reference streams differ in length (" +
                                  std::to_string(num_segments) + " vs " +
                                  std::to_string(stream.size()) + " lines)");
    }
  }
  cache_->segments.resize(num_segments);
  parallel_chunks(num_segments, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      auto& refs = cache_->segments[i];
      for (const auto& stream : references) {
        if (!stream[i].empty()) refs.push_back(prepare(stream[i], options_));
      }
      if (refs.empty()) {
        throw std::invalid_argument("chrF: segment " + std::to_string(i + 1) +
                                    " has no non-empty reference");
      }
    }
  });
  size_t min_refs = references.size(), max_refs = 0;
  for (const auto& refs : cache_->segments) {
    min_refs = std::min(min_refs, refs.size());
    max_refs = std::max(max_refs, refs.size());
  }
  cache_->nrefs = num_segments == 0 ? std::to_string(references.size())
                  : min_refs == max_refs ? std::to_string(max_refs) : "var";
}

Chrf::~Chrf() = default;

size_t Chrf::num_segments() const { return cache_->segments.size(); }

std::vector<SegmentStats> Chrf::segment_stats(const std::vector<std::string>& hyps) const {
  if (hyps.size() != num_segments()) {
    throw std::invalid_argument("chrF: " + std::to_string(hyps.size()) + " hypotheses but " +
                                std::to_string(num_segments()) + " reference segments");
  }
  std::vector<SegmentStats> rows(hyps.size());
  parallel_chunks(hyps.size(), [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      auto stats = segment_statistics(prepare(hyps[i], options_), cache_->segments[i], options_);
      double best_f = -1.0;
      for (auto& row : stats) {  // the reference with the best F-score, the first on ties
        const double f = compute_chrf(row, options_);
        if (f > best_f) {
          best_f = f;
          rows[i] = std::move(row);
        }
      }
    }
  });
  return rows;
}

Score Chrf::score(const SegmentStats& stats) const {
  return Score{chrf_name(options_), compute_chrf(stats, options_), "", std::nullopt};
}

double Chrf::score_value(const SegmentStats& stats) const { return compute_chrf(stats, options_); }

Signature Chrf::signature() const {
  Signature sig;
  sig.nrefs = cache_->nrefs;
  sig.metric_fields = {{"case", options_.lowercase ? "lc" : "mixed"},
                       {"eff", options_.eps_smoothing ? "no" : "yes"},
                       {"nc", std::to_string(options_.char_order)},
                       {"nw", std::to_string(options_.word_order)},
                       {"space", options_.whitespace ? "yes" : "no"}};
  return sig;
}

}  // namespace nmt::eval

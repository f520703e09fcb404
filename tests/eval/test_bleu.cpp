// BLEU against sacreBLEU 2.x's own test cases (test/test_bleu.py, test/test_sentence_bleu.py)
// and hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <random>
#include <sstream>

#include "nmt/eval/bleu.h"

using namespace nmt::eval;

namespace {

// The README example of sacreBLEU (two reference streams).
const std::vector<std::string> kHyps = {"The dog bit the man.", "It wasn't surprising.",
                                        "The man had just bitten him."};
const ReferenceSet kRefs = {
    {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
    {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};

double corpus_bleu(const std::vector<std::string>& hyps, const ReferenceSet& refs, BleuOptions options = {}) {
  return Bleu(options, refs).corpus_score(hyps).score;
}

/// sacreBLEU's compat.raw_corpus_bleu(): floor smoothing, no tokenisation, effective order.
double raw_corpus_bleu(const std::vector<std::string>& hyps, const ReferenceSet& refs,
                       std::optional<double> smooth_value) {
  BleuOptions options;
  options.smooth_method = Smoothing::Floor;
  options.smooth_value = smooth_value;
  options.tokenizer = Tokenizer::None;
  options.effective_order = true;
  options.force = true;
  return corpus_bleu(hyps, refs, options) / 100;
}

/// sentence_score(): one segment, effective order on (sacreBLEU's CLI --sentence-level).
double sentence_bleu(const std::string& hyp, const std::vector<std::string>& refs, BleuOptions options) {
  options.effective_order = true;
  ReferenceSet streams;
  for (const auto& ref : refs) streams.push_back({ref});
  return Bleu(options, streams).corpus_score({hyp}).score;
}

SegmentStats stats_of(std::vector<double> correct, std::vector<double> total, double sys_len, double ref_len) {
  SegmentStats s{sys_len, ref_len};
  s.insert(s.end(), correct.begin(), correct.end());
  s.insert(s.end(), total.begin(), total.end());
  return s;
}

}  // namespace

TEST(EvalBleu, SacrebleuCorpusCases) {
  EXPECT_NEAR(corpus_bleu(kHyps, kRefs), 48.530827, 1e-6);
  EXPECT_EQ(corpus_bleu({"", "", ""}, kRefs), 0.0);  // empty hypotheses are not dropped
  BleuOptions none;
  none.tokenizer = Tokenizer::None;
  EXPECT_NEAR(corpus_bleu(kHyps, kRefs, none), 49.1919566, 1e-6);
  BleuOptions intl;
  intl.tokenizer = Tokenizer::Intl;
  EXPECT_NEAR(corpus_bleu(kHyps, kRefs, intl), 43.91623493, 1e-6);
  BleuOptions no_smoothing;
  no_smoothing.smooth_method = Smoothing::None;
  EXPECT_NEAR(corpus_bleu(kHyps, kRefs, no_smoothing), 48.530827, 1e-6);
}

TEST(EvalBleu, SacrebleuPrintedBreakdown) {
  const BleuScore s = compute_bleu(sum_stats(Bleu({}, kRefs).segment_stats(kHyps), 10), {});
  EXPECT_EQ(format_fixed(s.score, 2) + " " + s.verbose(),
            "48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)");
}

TEST(EvalBleu, SacrebleuMaxNgramOrder) {
  const char* expected[] = {"77.65", "60.50", "53.93", "48.53", "46.14", "43.28"};
  for (int order = 1; order <= 6; ++order) {
    BleuOptions options;
    options.max_ngram_order = order;
    EXPECT_EQ(format_fixed(corpus_bleu(kHyps, kRefs, options), 2), expected[order - 1]) << order;
  }
}

TEST(EvalBleu, SacrebleuRawBleu) {
  EXPECT_NEAR(raw_corpus_bleu({"this is a test", "another test"}, {{"ref1", "ref2"}}, .01), 0.0, 1e-8);
  EXPECT_NEAR(raw_corpus_bleu({"this is a test"}, {{"this is a test"}}, .01), 1.0, 1e-8);
  EXPECT_NEAR(raw_corpus_bleu({"this is a fest"}, {{"this is a test"}}, .01), 0.223606797749979, 1e-8);
}

TEST(EvalBleu, SacrebleuEffectiveOrder) {
  EXPECT_NEAR(raw_corpus_bleu({"test"}, {{"a test"}}, .01), 0.3678794411714425, 1e-8);
  EXPECT_NEAR(raw_corpus_bleu({"a test"}, {{"a test"}}, .01), 1.0, 1e-8);
  EXPECT_NEAR(raw_corpus_bleu({"a little test"}, {{"a test"}}, .01), 0.03218297948685433, 1e-8);
}

TEST(EvalBleu, SacrebleuStatisticsAndFloorOffset) {
  const std::vector<std::string> hyp{"am I am a character sequence"};
  const ReferenceSet ref{{"I am a symbol string sequence a a"}};
  BleuOptions options;
  options.tokenizer = Tokenizer::None;
  const auto row = Bleu(options, ref).segment_stats(hyp).at(0);
  EXPECT_EQ(row, stats_of({4, 2, 1, 0}, {6, 5, 4, 3}, 6, 8));
  EXPECT_NEAR(raw_corpus_bleu(hyp, ref, 0.0), 0.0, 1e-8);
  EXPECT_NEAR(raw_corpus_bleu(hyp, ref, std::nullopt), 0.1555722182, 1e-8);  // floor default 0.1
}

TEST(EvalBleu, SacrebleuScoringFromStatistics) {
  BleuOptions none;
  none.smooth_method = Smoothing::None;
  EXPECT_NEAR(compute_bleu(stats_of({9, 7, 5, 3}, {10, 8, 6, 4}, 11, 11), none).score / 100,
              0.8375922397, 1e-8);
}

TEST(EvalBleu, SacrebleuDegenerateStatistics) {
  struct Case { SegmentStats stats; double offset; };
  const Case cases[] = {{stats_of({0, 0, 0, 0}, {4, 4, 2, 1}, 0, 1), 0.0},
                        {stats_of({0, 0, 0, 0}, {10, 11, 12, 0}, 14, 10), 0.0},
                        {stats_of({0, 0, 0, 0}, {0, 0, 0, 0}, 0, 0), 0.0},
                        {stats_of({6, 5, 4, 0}, {6, 5, 4, 3}, 6, 6), 0.0},
                        {stats_of({0, 0, 0, 0}, {0, 0, 0, 0}, 0, 0), 0.1},
                        {stats_of({0, 0, 0, 0}, {0, 0, 0, 0}, 1, 5), 0.01}};
  for (const auto& c : cases) {
    BleuOptions floor;
    floor.smooth_method = Smoothing::Floor;
    floor.smooth_value = c.offset;
    EXPECT_EQ(compute_bleu(c.stats, floor).score, 0.0);
  }
}

// test_sentence_bleu.py: every smoothing method and tokenizer on a Romanian sentence (issue #98).
TEST(EvalBleu, SacrebleuSentenceBleuSmoothingAndTokenizers) {
  const std::string ref = "producţia de zahăr brut se exprimă în zahăr alb;";
  const std::string sys = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
  struct Case { Smoothing method; std::optional<double> value; bool lowercase; Tokenizer tok; double expected; };
  const Case cases[] = {
      {Smoothing::Exp, std::nullopt, false, Tokenizer::V13a, 8.493},
      {Smoothing::None, std::nullopt, false, Tokenizer::V13a, 0.0},
      {Smoothing::Floor, std::nullopt, false, Tokenizer::V13a, 4.51688},
      {Smoothing::Floor, 0.1, false, Tokenizer::V13a, 4.51688},
      {Smoothing::Floor, 0.5, false, Tokenizer::V13a, 10.10},
      {Smoothing::AddK, std::nullopt, false, Tokenizer::V13a, 14.882},
      {Smoothing::AddK, 1.0, false, Tokenizer::V13a, 14.882},
      {Smoothing::AddK, 2.0, false, Tokenizer::V13a, 21.389},
      {Smoothing::Exp, std::nullopt, false, Tokenizer::None, 7.347},
      {Smoothing::Exp, std::nullopt, false, Tokenizer::Intl, 8.493},
      {Smoothing::Exp, std::nullopt, false, Tokenizer::Char, 40.8759},
      {Smoothing::Exp, std::nullopt, true, Tokenizer::Char, 42.0267},
  };
  for (const auto& c : cases) {
    BleuOptions options;
    options.smooth_method = c.method;
    options.smooth_value = c.value;
    options.lowercase = c.lowercase;
    options.tokenizer = c.tok;
    EXPECT_NEAR(sentence_bleu(sys, {ref}, options), c.expected, 1e-3)
        << smoothing_name(c.method) << " " << tokenizer_name(c.tok);
  }
}

// test_sentence_bleu.py, issue #141: no matching n-gram gives 0 whatever the smoothing.
TEST(EvalBleu, SacrebleuZeroMatchesGiveZero) {
  for (const Smoothing method : {Smoothing::Exp, Smoothing::None, Smoothing::Floor, Smoothing::AddK}) {
    BleuOptions options;
    options.smooth_method = method;
    EXPECT_EQ(sentence_bleu("this is a cat", {"okay thanks"}, options), 0.0) << smoothing_name(method);
  }
}

// Hand-computed: exp smoothing halves the smoothed precision for each further zero order.
TEST(EvalBleu, ExpSmoothingStartsAtOneHalf) {
  const BleuScore s = compute_bleu(stats_of({3, 0, 0, 0}, {4, 3, 2, 1}, 4, 4), {});
  EXPECT_DOUBLE_EQ(s.precisions[0], 75.0);
  EXPECT_DOUBLE_EQ(s.precisions[1], 100.0 / (2 * 3));
  EXPECT_DOUBLE_EQ(s.precisions[2], 100.0 / (4 * 2));
  EXPECT_DOUBLE_EQ(s.precisions[3], 100.0 / (8 * 1));
  EXPECT_NEAR(s.score, std::pow(75.0 * (100.0 / 6) * 12.5 * 12.5, 0.25), 1e-9);
}

// Hand-computed: add-k leaves unigrams alone and adds k to matches and totals of n > 1.
TEST(EvalBleu, AddKSkipsUnigrams) {
  BleuOptions options;
  options.smooth_method = Smoothing::AddK;
  const BleuScore s = compute_bleu(stats_of({2, 1, 0, 0}, {4, 3, 2, 1}, 4, 4), options);
  EXPECT_DOUBLE_EQ(s.precisions[0], 50.0);
  EXPECT_DOUBLE_EQ(s.precisions[1], 100.0 * 2 / 4);
  EXPECT_DOUBLE_EQ(s.precisions[2], 100.0 * 1 / 3);
  EXPECT_DOUBLE_EQ(s.precisions[3], 100.0 * 1 / 2);
}

// Hand-computed: hypothesis longer than the reference: BP = 1, ratio > 1,
// BLEU = (4/5 * 3/4 * 2/3 * 1/2)^(1/4) = 0.2^(1/4).
TEST(EvalBleu, HypothesisLongerThanReference) {
  const BleuScore s = compute_bleu(
      sum_stats(Bleu({}, {{"a b c d"}}).segment_stats({"a b c d e"}), 10), {});
  EXPECT_EQ(s.bp, 1.0);
  EXPECT_EQ(s.sys_len, 5);
  EXPECT_EQ(s.ref_len, 4);
  EXPECT_NEAR(s.score, 100 * std::pow(0.2, 0.25), 1e-9);
  EXPECT_EQ(s.verbose(), "80.0/75.0/66.7/50.0 (BP = 1.000 ratio = 1.250 hyp_len = 5 ref_len = 4)");
}

// Hand-computed: brevity penalty exp(1 - r/c) for a short hypothesis.
TEST(EvalBleu, BrevityPenalty) {
  const BleuScore s = compute_bleu(
      sum_stats(Bleu({}, {{"a b c d e f g h"}}).segment_stats({"a b c d"}), 10), {});
  EXPECT_DOUBLE_EQ(s.bp, std::exp(1.0 - 8.0 / 4.0));
  EXPECT_NEAR(s.score, 100 * std::exp(-1.0), 1e-9);
}

// Closest reference length, the shorter one on ties; clipping uses the max count over refs.
TEST(EvalBleu, MultipleReferencesClosestLengthAndClipping) {
  BleuOptions options;
  options.tokenizer = Tokenizer::None;
  // hyp has 4 words; refs have 3 and 5 words: equally close -> the shorter (3) is used.
  auto row = Bleu(options, {{"x y z"}, {"the the q r s"}}).segment_stats({"the the the a"}).at(0);
  EXPECT_EQ(row[0], 4);
  EXPECT_EQ(row[1], 3);
  EXPECT_EQ(row[2], 2);  // "the" clipped at 2 (the max over references)
  // A closer reference wins regardless of order.
  row = Bleu(options, {{"a b c d e f"}, {"a b c d"}}).segment_stats({"a b c"}).at(0);
  EXPECT_EQ(row[1], 4);
}

TEST(EvalBleu, EmptyReferenceLinesMeanFewerReferences) {
  Bleu bleu({}, {{"a b c", "d e f"}, {"a b c", ""}});
  EXPECT_EQ(bleu.signature().nrefs, "var");
  EXPECT_THROW(Bleu({}, {{"a", ""}}), std::invalid_argument);
  EXPECT_THROW(Bleu({}, {{"a", "b"}, {"a"}}), std::invalid_argument);
}

TEST(EvalBleu, LowercaseMatchesAcrossCase) {
  BleuOptions lc;
  lc.lowercase = true;
  EXPECT_NEAR(corpus_bleu({"THE CAT SAT ON THE MAT"}, {{"the cat sat on the mat"}}, lc), 100.0, 1e-9);
  EXPECT_EQ(corpus_bleu({"THE CAT SAT ON THE MAT"}, {{"the cat sat on the mat"}}), 0.0);
  // Unicode lowercasing (Python's str.lower()): É -> é, final sigma.
  EXPECT_NEAR(corpus_bleu({"ÉCOLE ΟΔΟΣ x y"}, {{"école οδος x y"}}, lc), 100.0, 1e-9);
}

TEST(EvalBleu, Signatures) {
  EXPECT_EQ(Bleu({}, {{"a"}}).signature().str(),
            "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" + Signature::version_tag());
  BleuOptions options;
  options.smooth_method = Smoothing::Floor;
  options.lowercase = true;
  options.effective_order = true;
  options.tokenizer = Tokenizer::Intl;
  EXPECT_EQ(Bleu(options, {{"a"}, {"b"}}).signature().str(),
            "nrefs:2|case:lc|eff:yes|tok:intl|smooth:floor[0.10]|version:" + Signature::version_tag());
  options.smooth_method = Smoothing::AddK;
  EXPECT_NE(Bleu(options, {{"a"}}).signature().str().find("smooth:add-k[1.00]"), std::string::npos);
  options.smooth_value = 2;
  EXPECT_NE(Bleu(options, {{"a"}}).signature().str().find("smooth:add-k[2.00]"), std::string::npos);
}

TEST(EvalBleu, RejectsWrongHypothesisCount) {
  EXPECT_THROW(Bleu({}, kRefs).segment_stats({"one"}), std::invalid_argument);
  EXPECT_THROW(parse_smoothing("foo"), std::invalid_argument);
}

namespace {

/// One segment's BLEU statistics counted the plain way: every n-gram a vector of words in a
/// std::map, the reference count of an n-gram the maximum over the references.
SegmentStats naive_stats(const std::string& hyp, const std::vector<std::string>& refs, int order) {
  const auto words = [](const std::string& line) {
    std::vector<std::string> out;
    std::istringstream in(tokenize(line, Tokenizer::V13a));
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  };
  const auto ngrams = [](const std::vector<std::string>& w, size_t n) {
    std::map<std::vector<std::string>, long> counts;
    for (size_t i = 0; i + n <= w.size(); ++i) ++counts[std::vector<std::string>(w.begin() + i, w.begin() + i + n)];
    return counts;
  };
  const auto h = words(hyp);
  std::vector<std::vector<std::string>> r;
  for (const auto& ref : refs) if (!ref.empty()) r.push_back(words(ref));
  const auto hyp_len = static_cast<long>(h.size());
  long ref_len = -1;
  for (const auto& ref : r) {
    const auto len = static_cast<long>(ref.size());
    if (ref_len < 0 || std::labs(len - hyp_len) < std::labs(ref_len - hyp_len) ||
        (std::labs(len - hyp_len) == std::labs(ref_len - hyp_len) && len < ref_len)) ref_len = len;
  }
  SegmentStats row(2 + 2 * static_cast<size_t>(order), 0.0);
  row[0] = static_cast<double>(hyp_len);
  row[1] = static_cast<double>(ref_len);
  for (int n = 1; n <= order; ++n) {
    std::map<std::vector<std::string>, long> max_ref;
    for (const auto& ref : r) {
      for (const auto& [gram, count] : ngrams(ref, static_cast<size_t>(n))) max_ref[gram] = std::max(max_ref[gram], count);
    }
    for (const auto& [gram, count] : ngrams(h, static_cast<size_t>(n))) {
      row[2 + static_cast<size_t>(order + n - 1)] += static_cast<double>(count);
      const auto it = max_ref.find(gram);
      if (it != max_ref.end()) row[1 + static_cast<size_t>(n)] += static_cast<double>(std::min(count, it->second));
    }
  }
  return row;
}

}  // namespace

// Property: the statistics of Bleu (n-grams as integer ids, counted through per-id counters)
// equal plain counting with maps of word vectors, on random corpora with repeated words, words
// no reference has, empty hypotheses, one to three references with empty lines, orders 1 to 6.
TEST(EvalBleu, StatisticsEqualPlainNgramCountingOnRandomCorpora) {
  const std::vector<std::string> vocab = {"a", "b", "c", "the", "dog", "Dog", "x.", "1,5", "ä", "-", "!"};
  std::mt19937 rng(11);
  const auto line = [&](size_t max_words) {
    std::string out;
    for (size_t k = std::uniform_int_distribution<size_t>(0, max_words)(rng); k > 0; --k) {
      if (!out.empty()) out += ' ';
      out += rng() % 9 == 0 ? "new" + std::to_string(rng() % 3) : vocab[rng() % vocab.size()];
    }
    return out;
  };
  for (int trial = 0; trial < 62; ++trial) {
    const int order = 1 + trial % 6;
    // The last two trials are large enough for parallel_chunks to split them across threads.
    const size_t num_refs = 1 + static_cast<size_t>(trial) % 3, segments = trial < 60 ? 20 : 3000;
    ReferenceSet refs(num_refs);
    std::vector<std::string> hyps;
    for (size_t i = 0; i < segments; ++i) {
      for (size_t r = 0; r < num_refs; ++r) {
        std::string ref = line(12);
        if (ref.empty() && r == 0) ref = "a";  // every segment keeps one reference
        refs[r].push_back(r > 0 && rng() % 5 == 0 ? "" : ref);
      }
      hyps.push_back(line(12));
    }
    BleuOptions options;
    options.max_ngram_order = order;
    options.force = true;
    const auto rows = Bleu(options, refs).segment_stats(hyps);
    for (size_t i = 0; i < segments; ++i) {
      std::vector<std::string> seg_refs;
      for (size_t r = 0; r < num_refs; ++r) seg_refs.push_back(refs[r][i]);
      ASSERT_EQ(rows[i], naive_stats(hyps[i], seg_refs, order)) << "trial " << trial << ", segment " << i;
    }
  }
}

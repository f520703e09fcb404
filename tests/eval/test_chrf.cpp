// chrF / chrF++ against sacreBLEU 2.x's test/test_chrf.py and hand-computed cases.
#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <random>

#include "nmt/eval/chrf.h"
#include "nmt/eval/unicode.h"

using namespace nmt::eval;

namespace {

double corpus_chrf(const std::vector<std::string>& hyps, const std::vector<std::string>& refs,
                   ChrfOptions options) {
  return Chrf(options, {refs}).corpus_score(hyps).score;
}

ChrfOptions beta3(bool eps_smoothing) {
  ChrfOptions options;
  options.beta = 3;
  options.eps_smoothing = eps_smoothing;
  return options;
}

}  // namespace

TEST(EvalChrf, SacrebleuEpsSmoothingCases) {
  struct Case { std::vector<std::string> hyps, refs; double expected; };
  const Case cases[] = {
      {{"abcdefg"}, {"hijklmnop"}, 0.0},
      {{"a"}, {"b"}, 0.0},
      {{""}, {"b"}, 0.0},
      {{""}, {"ref"}, 0.0},
      {{""}, {"reference"}, 0.0},
      {{"aa"}, {"ab"}, 8.3333},
      {{"a", "b"}, {"a", "c"}, 8.3333},
      {{"a"}, {"a"}, 16.6667},
      {{"a b c"}, {"a b c"}, 50.0},
      {{"a b c"}, {"abc"}, 50.0},
      {{" risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ."},
       {"risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ."},
       63.361730},
      {{" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. "},
       {"Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."}, 64.1302698},
      {{"Niemand hat die Absicht, eine Mauer zu errichten"},
       {"Niemand hat die Absicht, eine Mauer zu errichten"}, 100.0},
  };
  for (const auto& c : cases) {
    EXPECT_NEAR(corpus_chrf(c.hyps, c.refs, beta3(true)), c.expected, 1e-4) << c.hyps[0];
  }
}

TEST(EvalChrf, SacrebleuEffectiveOrderCases) {
  struct Case { std::vector<std::string> hyps, refs; double expected; };
  const Case cases[] = {
      {{"a"}, {"a"}, 100.0},    {{""}, {"reference"}, 0.0},          {{"a b c"}, {"a b c"}, 100.0},
      {{"a b c"}, {"abc"}, 100.0}, {{""}, {"c"}, 0.0},              {{"a", "b"}, {"a", "c"}, 50.0},
      {{"aa"}, {"ab"}, 25.0},
  };
  for (const auto& c : cases) {
    EXPECT_NEAR(corpus_chrf(c.hyps, c.refs, beta3(false)), c.expected, 1e-4) << c.hyps[0];
  }
}

TEST(EvalChrf, SacrebleuKeepWhitespaceCases) {
  ChrfOptions options = beta3(false);
  options.whitespace = true;
  EXPECT_NEAR(corpus_chrf({"Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich."},
                          {"Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."},
                          options),
              67.3481606, 1e-4);
  EXPECT_NEAR(corpus_chrf({"risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ."},
                          {"risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ."},
                          options),
              65.2414427, 1e-4);
}

TEST(EvalChrf, SacrebleuSentenceLevelChrf2) {
  struct Case { std::string hyp, ref; double expected; };
  const Case cases[] = {
      {"Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
       "Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře.", 39.14078509},
      {"Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
       "A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři.", 31.22557079},
      {"Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
       "Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli.", 57.15704367},
  };
  ChrfOptions options;
  options.eps_smoothing = true;
  for (const auto& c : cases) EXPECT_NEAR(corpus_chrf({c.hyp}, {c.ref}, options), c.expected, 1e-4);
}

// Hand-computed. "thecat" vs "thedog": char orders 1..6 give precision = recall =
// 3/6, 2/5, 1/4, 0/3, 0/2, 0/1 -> average 1.15/6, and F2 = that average when P = R.
// chrF++ adds word unigrams (the cat | the dog: 1/2) and bigrams (0/1): 1.65/8.
TEST(EvalChrf, HandComputedChrfAndChrfPlusPlus) {
  ChrfOptions chrf;
  EXPECT_NEAR(corpus_chrf({"the cat"}, {"the dog"}, chrf), 100 * 1.15 / 6, 1e-9);
  ChrfOptions chrfpp;
  chrfpp.word_order = 2;
  EXPECT_NEAR(corpus_chrf({"the cat"}, {"the dog"}, chrfpp), 100 * 1.65 / 8, 1e-9);
  EXPECT_EQ(chrf_name(chrf), "chrF2");
  EXPECT_EQ(chrf_name(chrfpp), "chrF2++");
}

// chrF++ splits one ASCII punctuation mark off the end, else the start, of a word: "cat." is
// "cat" + "." and matches "cat ."; "(hi)" gives "(hi" + ")" (sacreBLEU issue #124).
TEST(EvalChrf, ChrfPlusPlusPunctuationSplitting) {
  ChrfOptions options;
  options.word_order = 2;
  const auto row = Chrf(options, {{"the cat ."}}).segment_stats({"the cat."}).at(0);
  EXPECT_EQ(row[18], 3);  // word unigrams in the hypothesis: the, cat, .
  EXPECT_EQ(row[20], 3);  // all matched
  EXPECT_NEAR(corpus_chrf({"the cat."}, {"the cat ."}, options), 100.0, 1e-9);
  const auto paren = Chrf(options, {{"x (hi)"}}).segment_stats({"(hi) x"}).at(0);
  EXPECT_EQ(paren[18], 3);  // "(hi", ")", "x"
  EXPECT_EQ(paren[20], 3);
}

// The corpus score is computed from statistics summed over sentences, not averaged scores.
TEST(EvalChrf, CorpusStatisticsAreSummed) {
  ChrfOptions options;
  Chrf chrf(options, {{"ab", "cd"}});
  const auto rows = chrf.segment_stats({"ab", "xy"});
  const SegmentStats total = sum_stats(rows, chrf.stats_width());
  // order 1: hyp 4, ref 4, match 2; order 2: hyp 2, ref 2, match 1 -> P = R = (1/2 + 1/2) / 2
  EXPECT_EQ(total[0], 4);
  EXPECT_EQ(total[2], 2);
  EXPECT_EQ(total[5], 1);
  EXPECT_NEAR(chrf.corpus_score({"ab", "xy"}).score, 50.0, 1e-9);
}

TEST(EvalChrf, MultipleReferencesPickTheBestSentenceScore) {
  ChrfOptions options;
  const double single = corpus_chrf({"the cat sat"}, {"the cat sat"}, options);
  const double best = Chrf(options, {{"a dog ran"}, {"the cat sat"}}).corpus_score({"the cat sat"}).score;
  EXPECT_NEAR(best, single, 1e-12);
  EXPECT_NEAR(best, 100.0, 1e-9);
}

TEST(EvalChrf, CodePointsNotBytes) {
  // "é" is one character: unigrams é, t vs é, t match fully although é is two UTF-8 bytes.
  EXPECT_NEAR(corpus_chrf({"été"}, {"été"}, ChrfOptions{}), 100.0, 1e-9);
  const auto row = Chrf(ChrfOptions{}, {{"été"}}).segment_stats({"été"}).at(0);
  EXPECT_EQ(row[0], 3);  // three character unigrams
}

TEST(EvalChrf, LowercaseOption) {
  ChrfOptions lc;
  lc.lowercase = true;
  EXPECT_NEAR(corpus_chrf({"HELLO"}, {"hello"}, lc), 100.0, 1e-9);
  EXPECT_EQ(corpus_chrf({"HELLO"}, {"hello"}, ChrfOptions{}), 0.0);
}

TEST(EvalChrf, Signature) {
  ChrfOptions options;
  EXPECT_EQ(Chrf(options, {{"a"}}).signature().str(),
            "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:" + Signature::version_tag());
  options.word_order = 2;
  options.eps_smoothing = true;
  options.whitespace = true;
  options.lowercase = true;
  EXPECT_EQ(Chrf(options, {{"a"}, {"b"}}).signature().str(),
            "nrefs:2|case:lc|eff:no|nc:6|nw:2|space:yes|version:" + Signature::version_tag());
}

namespace {

/// One segment's chrF statistics counted the plain way: n-grams as strings in std::maps, one
/// row per reference (sacreBLEU's _get_match_statistics), then the reference with the best
/// sentence F-score, the first on ties.
SegmentStats naive_chrf_stats(const std::string& hyp, const std::vector<std::string>& refs, const ChrfOptions& o) {
  const auto split = [](const std::u32string& line) {
    std::vector<std::u32string> out;
    std::u32string w;
    for (const char32_t c : line + U" ") {
      if (is_py_space(c)) {
        if (!w.empty()) out.push_back(w);
        w.clear();
      } else {
        w += c;
      }
    }
    return out;
  };
  const auto punct = [](char32_t c) { return c < 128 && std::ispunct(static_cast<int>(c)); };
  struct Side { std::map<std::u32string, long> grams[16]; long total[16] = {}; };
  const auto side = [&](const std::string& text) {
    std::u32string line = utf8_decode(text);
    if (o.lowercase) line = py_lower(line);
    std::u32string chars;
    for (const auto& w : split(line)) chars += w;
    if (o.whitespace) chars = line;
    Side s;
    for (int n = 1; n <= o.char_order; ++n) {
      for (size_t i = 0; i + static_cast<size_t>(n) <= chars.size(); ++i, ++s.total[n - 1]) ++s.grams[n - 1][chars.substr(i, static_cast<size_t>(n))];
    }
    std::vector<std::u32string> words;
    for (const auto& w : split(line)) {
      if (w.size() > 1 && punct(w.back())) { words.push_back(w.substr(0, w.size() - 1)); words.push_back(w.substr(w.size() - 1)); }
      else if (w.size() > 1 && punct(w.front())) { words.push_back(w.substr(0, 1)); words.push_back(w.substr(1)); }
      else words.push_back(w);
    }
    for (int n = 1; n <= o.word_order; ++n) {
      const size_t k = static_cast<size_t>(o.char_order + n - 1);
      for (size_t i = 0; i + static_cast<size_t>(n) <= words.size(); ++i, ++s.total[k]) {
        std::u32string gram;
        for (size_t j = i; j < i + static_cast<size_t>(n); ++j) gram += words[j] + U"\u0001";
        ++s.grams[k][gram];
      }
    }
    return s;
  };
  const Side h = side(hyp);
  SegmentStats best;
  double best_f = -1;
  for (const auto& ref : refs) {
    if (ref.empty()) continue;
    const Side r = side(ref);
    SegmentStats row;
    for (int k = 0; k < o.char_order + o.word_order; ++k) {
      long matches = 0;
      for (const auto& [gram, count] : h.grams[k]) {
        const auto it = r.grams[k].find(gram);
        if (it != r.grams[k].end()) matches += std::min(count, it->second);
      }
      row.push_back(r.total[k] == 0 ? 0.0 : static_cast<double>(h.total[k]));
      row.push_back(static_cast<double>(r.total[k]));
      row.push_back(static_cast<double>(matches));
    }
    const double f = compute_chrf(row, o);
    if (f > best_f) { best_f = f; best = row; }
  }
  return best;
}

}  // namespace

// Property: the statistics of Chrf (n-grams as ids local to a segment) equal plain counting with
// maps of strings, on random segments (repeats, multi-byte and upper-case letters, punctuation at
// word edges, runs of whitespace, empty hypotheses, one to three references with empty lines),
// for character orders 0..7, word orders 0..3, with and without whitespace and lowercasing.
TEST(EvalChrf, StatisticsEqualPlainNgramCountingOnRandomSegments) {
  const std::vector<std::string> pieces = {"a", "b", "ab", "A", "ä", "Ä", "€", " ", "  ", "\t", ".", "(", ")", "x,", "'s", "日"};
  std::mt19937 rng(5);
  const auto line = [&] {
    std::string out;
    for (size_t k = rng() % 14; k > 0; --k) out += pieces[rng() % pieces.size()];
    return out;
  };
  for (int trial = 0; trial < 66; ++trial) {
    ChrfOptions o;
    o.char_order = trial % 8;
    o.word_order = (trial / 8) % 4;
    if (o.char_order + o.word_order == 0) o.word_order = 1;
    o.whitespace = trial % 3 == 0;
    o.lowercase = trial % 5 == 0;
    const size_t num_refs = 1 + static_cast<size_t>(trial) % 3;
    const size_t segments = trial < 64 ? 25 : 2000;  // the last two split across threads
    ReferenceSet refs(num_refs);
    std::vector<std::string> hyps;
    for (size_t i = 0; i < segments; ++i) {
      for (size_t r = 0; r < num_refs; ++r) {
        std::string ref = line();
        if (r == 0 && ref.empty()) ref = "ab";  // every segment keeps one reference
        refs[r].push_back(r > 0 && rng() % 4 == 0 ? "" : ref);
      }
      hyps.push_back(line());
    }
    const auto rows = Chrf(o, refs).segment_stats(hyps);
    for (size_t i = 0; i < segments; ++i) {
      std::vector<std::string> seg_refs;
      for (size_t r = 0; r < num_refs; ++r) seg_refs.push_back(refs[r][i]);
      ASSERT_EQ(rows[i], naive_chrf_stats(hyps[i], seg_refs, o)) << "trial " << trial << ", segment " << i;
    }
  }
}

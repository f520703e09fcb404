// chrF / chrF++ against sacreBLEU 2.x's test/test_chrf.py and hand-computed cases.
#include <gtest/gtest.h>

#include "nmt/eval/chrf.h"

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

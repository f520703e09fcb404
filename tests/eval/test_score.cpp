// sacreBLEU's text/JSON renderings of scores and signatures.
#include <gtest/gtest.h>

#include "nmt/eval/score.h"

using namespace nmt::eval;

TEST(EvalScore, TextFormatLikeSacrebleu) {
  Score s{"BLEU", 35.1234, "66.7/41.2/28.4/20.1 (BP = 1.000 ratio = 1.012 hyp_len = 12345 ref_len = 12200)", {}};
  EXPECT_EQ(format_score(s, 2),
            "BLEU = 35.12 66.7/41.2/28.4/20.1 (BP = 1.000 ratio = 1.012 hyp_len = 12345 ref_len = 12200)");
  s.confidence = ConfidenceEstimate{35.1, 0.8049};
  EXPECT_EQ(format_score(s, 1), "BLEU = 35.1 (μ = 35.1 ± 0.8) 66.7/41.2/28.4/20.1 (BP = 1.000 ratio = "
                                "1.012 hyp_len = 12345 ref_len = 12200)");
  EXPECT_EQ(format_score(Score{"chrF2", 46.4, "", {}}, 2), "chrF2 = 46.40");
}

TEST(EvalScore, PythonStyleRounding) {
  EXPECT_EQ(format_fixed(0.125, 2), "0.12");  // exact binary value, round-half-even like Python
  EXPECT_EQ(format_fixed(2.675, 2), "2.67");  // 2.675 is 2.67499999... in binary
  EXPECT_EQ(json_number(48.5308, 2), "48.53");
  EXPECT_EQ(json_number(48.5, 2), "48.5");
  EXPECT_EQ(json_number(0.0, 2), "0.0");
  EXPECT_EQ(json_number(100.0, 1), "100.0");
}

TEST(EvalScore, SignatureOrder) {
  Signature sig;
  sig.metric_fields = {{"case", "mixed"}, {"eff", "no"}, {"tok", "13a"}, {"smooth", "exp"}};
  EXPECT_EQ(sig.str(), "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" + Signature::version_tag());
  sig.bootstrap_samples = 1000;
  sig.seed = "12345";
  EXPECT_EQ(sig.str(), "nrefs:1|bs:1000|seed:12345|case:mixed|eff:no|tok:13a|smooth:exp|version:" +
                           Signature::version_tag());
  EXPECT_EQ(Signature::version_tag().rfind("nmt-", 0), 0u);
}

TEST(EvalScore, JsonFormatLikeSacrebleu) {
  Signature sig;
  sig.metric_fields = {{"case", "mixed"}};
  sig.version = "nmt-x";
  const std::string json = format_score_json(Score{"BLEU", 48.530827, "v \"q\"", {}}, sig, 2);
  EXPECT_EQ(json, "{\n \"name\": \"BLEU\",\n \"score\": 48.53,\n \"signature\": "
                  "\"nrefs:1|case:mixed|version:nmt-x\",\n \"verbose_score\": \"v \\\"q\\\"\",\n"
                  " \"nrefs\": \"1\",\n \"case\": \"mixed\",\n \"version\": \"nmt-x\"\n}");
}

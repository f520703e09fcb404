// The Translator (search/translator.h): batches of any token budget give every sentence the
// hypothesis it gets alone, in input order; an empty sentence gives an empty hypothesis; the
// n-best list starts with the 1-best; alignments come only on request.
#include "nmt/search/translator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "nmt/data/batching.h"
#include "support/search_util.h"

namespace {

class TranslatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = nmt::testing::small_rnn(5);
    for (int i = 0; i < 7; ++i) {
      std::vector<int64_t> s;
      for (int j = 0; j < (i == 3 ? 0 : 1 + (i * 5) % 6); ++j) s.push_back(4 + (i * 7 + j * 3) % 16);
      sentences_.push_back(s);  // sentence 3 is empty
    }
  }
  /// A Translator without vocabularies: only the *_ids methods are usable.
  nmt::search::Translator translator(int beam, int batch_tokens) const {
    nmt::SearchConfig search;
    search.beam_size = beam;
    search.batch_tokens = batch_tokens;
    return {model_, {}, {}, search, torch::kCPU};
  }
  nmt::models::Seq2Seq model_;
  std::vector<std::vector<int64_t>> sentences_;
};

TEST_F(TranslatorTest, EverySentenceGetsItsOwnHypothesisInInputOrder) {
  for (int beam : {1, 3}) {
    const auto all = translator(beam, 10000).translate_ids(sentences_);
    const auto small = translator(beam, 8).translate_ids(sentences_);  // several batches
    ASSERT_EQ(all.size(), sentences_.size());
    ASSERT_EQ(small.size(), sentences_.size());
    for (size_t i = 0; i < sentences_.size(); ++i) {
      if (sentences_[i].empty()) {
        EXPECT_TRUE(all[i].tokens.empty());
        EXPECT_FALSE(all[i].attention.defined());
        continue;
      }
      auto src = nmt::data::make_source_batch(sentences_, {i}, torch::kCPU).src;
      nmt::SearchConfig search;
      search.beam_size = beam;
      const auto alone = nmt::search::decode(*model_, src, search);
      EXPECT_EQ(all[i].tokens, alone[0].tokens) << "beam " << beam << " sentence " << i;
      EXPECT_EQ(small[i].tokens, alone[0].tokens) << "beam " << beam << " sentence " << i;
      EXPECT_NEAR(all[i].score, alone[0].score, 1e-4) << "beam " << beam << " sentence " << i;
      EXPECT_FALSE(all[i].attention.defined());  // not asked for
    }
  }
}

TEST_F(TranslatorTest, NBestStartsWithTheOneBestAndAttentionComesOnRequest) {
  auto t = translator(4, 10000);
  t.set_keep_attention(true);
  const auto best = t.translate_ids(sentences_);
  const auto lists = t.translate_ids_n_best(sentences_, 3);
  ASSERT_EQ(lists.size(), sentences_.size());
  for (size_t i = 0; i < sentences_.size(); ++i) {
    if (sentences_[i].empty()) continue;
    ASSERT_EQ(lists[i].size(), 3u) << i;
    EXPECT_EQ(lists[i][0].tokens, best[i].tokens) << i;
    ASSERT_TRUE(best[i].attention.defined()) << i;
    const auto steps = best[i].attention.size(0);  // one row per output step, EOS included when reached
    EXPECT_TRUE(steps == static_cast<int64_t>(best[i].tokens.size()) ||
                steps == static_cast<int64_t>(best[i].tokens.size()) + 1) << i;
  }
  EXPECT_THROW(t.translate_ids_n_best(sentences_, 5), std::invalid_argument);  // n > beam
}

}  // namespace

#include "nmt/data/batching.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include <ATen/core/Tensor.h>

using namespace nmt::data;

namespace {

/// `n` examples with random lengths in [1, max_len]; ids >= 4; index = position * 10.
std::vector<Example> random_examples(size_t n, int max_len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Example> out(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t ls = 1 + rng() % max_len, lt = 1 + rng() % max_len;
    for (size_t k = 0; k < ls; ++k) out[i].src.push_back(4 + static_cast<int64_t>(rng() % 100));
    for (size_t k = 0; k < lt; ++k) out[i].tgt.push_back(4 + static_cast<int64_t>(rng() % 100));
    out[i].index = i * 10;
  }
  return out;
}

void expect_partition(const std::vector<std::vector<size_t>>& batches, size_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& b : batches) {
    EXPECT_FALSE(b.empty());
    for (size_t i : b) {
      ASSERT_LT(i, n);
      ++seen[i];
    }
  }
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(seen[i], 1) << "example " << i;
}

}  // namespace

TEST(MakeBatch, ShapesPaddingBosEos) {
  std::vector<Example> ex(2);
  ex[0].src = {10, 11, 12};
  ex[0].tgt = {20};
  ex[0].index = 7;
  ex[1].src = {13};
  ex[1].tgt = {21, 22, 23, 24};
  ex[1].index = 3;
  const Batch b = make_batch({&ex[0], &ex[1]}, c10::Device(c10::kCPU));
  EXPECT_EQ(b.size(), 2);
  ASSERT_EQ(b.src.sizes(), (std::vector<int64_t>{2, 4}));
  ASSERT_EQ(b.tgt_in.sizes(), (std::vector<int64_t>{2, 5}));
  ASSERT_EQ(b.tgt_out.sizes(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(b.src.scalar_type(), at::kLong);

  auto row = [](const at::Tensor& t, int64_t r) {
    const at::Tensor c = t.contiguous();
    const int64_t* p = c.data_ptr<int64_t>() + r * c.size(1);
    return std::vector<int64_t>(p, p + c.size(1));
  };
  EXPECT_EQ(row(b.src, 0), (std::vector<int64_t>{10, 11, 12, kEos}));
  EXPECT_EQ(row(b.src, 1), (std::vector<int64_t>{13, kEos, kPad, kPad}));
  EXPECT_EQ(row(b.tgt_in, 0), (std::vector<int64_t>{kBos, 20, kPad, kPad, kPad}));
  EXPECT_EQ(row(b.tgt_out, 0), (std::vector<int64_t>{20, kEos, kPad, kPad, kPad}));
  EXPECT_EQ(row(b.tgt_in, 1), (std::vector<int64_t>{kBos, 21, 22, 23, 24}));
  EXPECT_EQ(row(b.tgt_out, 1), (std::vector<int64_t>{21, 22, 23, 24, kEos}));
  const at::Tensor len = b.src_lengths.contiguous();
  EXPECT_EQ(len.size(0), 2);
  EXPECT_EQ(len.data_ptr<int64_t>()[0], 4);
  EXPECT_EQ(len.data_ptr<int64_t>()[1], 2);
  EXPECT_EQ(b.num_tgt_tokens, 2 + 5);
  EXPECT_EQ(b.indices, (std::vector<size_t>{7, 3}));

  EXPECT_THROW(make_batch({}, c10::Device(c10::kCPU)), std::invalid_argument);
}

TEST(MakeSourceBatch, PadsAndKeepsRows) {
  const std::vector<std::vector<int64_t>> sents = {{5, 6}, {7}, {8, 9, 10}};
  const Batch b = make_source_batch(sents, {2, 1}, c10::Device(c10::kCPU));
  ASSERT_EQ(b.src.sizes(), (std::vector<int64_t>{2, 4}));
  const int64_t* p = b.src.data_ptr<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(p, p + 8),
            (std::vector<int64_t>{8, 9, 10, kEos, 7, kEos, kPad, kPad}));
  EXPECT_EQ(b.src_lengths.data_ptr<int64_t>()[1], 2);
  EXPECT_FALSE(b.tgt_in.defined());
  EXPECT_EQ(b.indices, (std::vector<size_t>{2, 1}));
}

TEST(TokenBatches, CoverEveryExampleOnceWithinBudget) {
  const auto ex = random_examples(1000, 40, 1);
  for (bool shuffle : {true, false}) {
    for (int64_t budget : {1, 30, 500, 4096}) {
      const auto batches = make_token_batches(ex, budget, shuffle, 42);
      expect_partition(batches, ex.size());
      for (const auto& b : batches) {
        size_t ms = 0, mt = 0;
        for (size_t i : b) {
          ms = std::max(ms, ex[i].src.size() + 1);
          mt = std::max(mt, ex[i].tgt.size() + 1);
        }
        if (b.size() > 1) {
          EXPECT_LE(static_cast<int64_t>(b.size() * std::max(ms, mt)), budget);
        }
        // Padded tensor cost agrees with make_batch.
        std::vector<const Example*> ptrs;
        for (size_t i : b) ptrs.push_back(&ex[i]);
        if (budget == 500) {
          const Batch batch = make_batch(ptrs, c10::Device(c10::kCPU));
          EXPECT_EQ(batch.src.size(1), static_cast<int64_t>(ms));
          EXPECT_EQ(batch.tgt_in.size(1), static_cast<int64_t>(mt));
        }
      }
      if (budget == 1) {
        EXPECT_EQ(batches.size(), ex.size());
      }
    }
  }
}

TEST(TokenBatches, BucketingKeepsPaddingLow) {
  const auto ex = random_examples(2000, 40, 2);
  const auto batches = make_token_batches(ex, 2000, true, 3);
  int64_t real = 0, padded = 0;
  for (const auto& b : batches) {
    size_t mt = 0;
    for (size_t i : b) mt = std::max(mt, ex[i].tgt.size() + 1);
    for (size_t i : b) real += static_cast<int64_t>(ex[i].tgt.size() + 1);
    padded += static_cast<int64_t>(b.size() * mt);
  }
  EXPECT_GT(static_cast<double>(real) / padded, 0.9);
}

TEST(TokenBatches, SameSeedSameBatchesDifferentSeedDifferent) {
  const auto ex = random_examples(500, 30, 3);
  const auto a = make_token_batches(ex, 300, true, 7);
  const auto b = make_token_batches(ex, 300, true, 7);
  const auto c = make_token_batches(ex, 300, true, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(make_token_batches(ex, 300, false, 1), make_token_batches(ex, 300, false, 2));
  EXPECT_THROW(make_token_batches(ex, 0, true, 1), std::invalid_argument);
  EXPECT_TRUE(make_token_batches(std::vector<Example>{}, 100, true, 1).empty());
}

TEST(SentenceBatches, RestoreInputOrderAndRespectLimits) {
  std::mt19937_64 rng(5);
  std::vector<std::vector<int64_t>> sents(300);
  for (auto& s : sents) s.assign(rng() % 30, 9);  // includes empty sentences
  const auto batches = make_sentence_batches(sents, 200, 16);
  expect_partition(batches, sents.size());
  for (const auto& b : batches) {
    EXPECT_LE(b.size(), 16u);
    size_t m = 0;
    for (size_t i : b) m = std::max(m, sents[i].size() + 1);
    if (b.size() > 1) {
      EXPECT_LE(b.size() * m, 200u);
    }
  }
  // Putting per-sentence results back by index restores input order.
  std::vector<size_t> out(sents.size(), SIZE_MAX);
  for (const auto& b : batches)
    for (size_t i : b) out[i] = sents[i].size();
  for (size_t i = 0; i < sents.size(); ++i) EXPECT_EQ(out[i], sents[i].size());

  // Longest first within a batch, the batches with most sentences first; no limits = one batch.
  for (size_t b = 0; b < batches.size(); ++b) {
    for (size_t i = 1; i < batches[b].size(); ++i)
      EXPECT_GE(sents[batches[b][i - 1]].size(), sents[batches[b][i]].size());
    if (b > 0) {
      EXPECT_GE(batches[b - 1].size(), batches[b].size());
    }
  }
  EXPECT_GT(batches.front().size(), batches.back().size());
  EXPECT_EQ(make_sentence_batches(sents, 0, 0).size(), 1u);
  EXPECT_EQ(make_sentence_batches(sents, 0, 1).size(), sents.size());
  EXPECT_TRUE(make_sentence_batches({}, 100).empty());
}

// serve::Batcher with a hand-made BatchTranslator (no model): every submitter gets the results
// of its own sentences, waiting requests share a batch, options groups are never mixed, the
// budget is kept, errors reach only their batch, stop() drains the queue.
#include "nmt/serve/batcher.h"

#include <atomic>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>

namespace {

using nmt::search::Hypothesis;
using nmt::serve::Batcher;
using nmt::serve::BatchTranslator;
using nmt::serve::DecodeOptions;
using nmt::serve::NBestLists;
using nmt::serve::Sentences;

/// The fake translation of `s` under `o`: n_best hypotheses, the source ids with the beam size
/// and the rank appended.
std::vector<Hypothesis> fake_translation(const std::vector<int64_t>& s, const DecodeOptions& o) {
  std::vector<Hypothesis> list;
  for (int k = 0; k < o.n_best; ++k) {
    Hypothesis h;
    h.tokens = s;
    h.tokens.push_back(o.beam_size);
    h.tokens.push_back(k);
    h.score = -k;
    list.push_back(h);
  }
  return list;
}

NBestLists fake_translations(const Sentences& sentences, const DecodeOptions& o) {
  NBestLists out;
  for (const auto& s : sentences) out.push_back(fake_translation(s, o));
  return out;
}

/// A BatchTranslator that records every batch and holds the first one until release() (so that
/// later requests are known to wait in the queue meanwhile).
class GatedTranslator {
 public:
  BatchTranslator function() {
    return [this](const Sentences& sentences, const DecodeOptions& o) {
      {
        std::lock_guard lock(mutex_);
        batches_.push_back({sentences, o});
      }
      if (first_.exchange(false)) {
        entered_.set_value();
        gate_.wait();
      }
      return fake_translations(sentences, o);
    };
  }
  /// Blocks until the first batch is inside the translator.
  void wait_until_busy() { entered_future_.wait(); }
  void release() { open_.set_value(); }
  struct Batch {
    Sentences sentences;
    DecodeOptions options;
  };
  std::vector<Batch> batches() {
    std::lock_guard lock(mutex_);
    return batches_;
  }

 private:
  std::atomic<bool> first_{true};
  std::promise<void> entered_, open_;
  std::shared_future<void> entered_future_ = entered_.get_future().share();
  std::shared_future<void> gate_ = open_.get_future().share();
  std::mutex mutex_;
  std::vector<Batch> batches_;
};

DecodeOptions options(int beam, int n_best = 1, bool attention = false) { return {beam, n_best, attention}; }

TEST(Batcher, ConcurrentSubmittersGetTheirOwnResults) {
  std::atomic<int> calls{0};
  Batcher batcher(
      [&](const Sentences& sentences, const DecodeOptions& o) {
        ++calls;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // let requests pile up
        return fake_translations(sentences, o);
      },
      {/*max_sentences=*/16, /*max_tokens=*/400});
  constexpr int kThreads = 8, kRequests = 25;
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int r = 0; r < kRequests; ++r) {
        Sentences mine(1 + rng() % 4);
        for (size_t i = 0; i < mine.size(); ++i) mine[i] = {t, r, static_cast<int64_t>(i), int64_t(rng() % 1000)};
        const int beam = 1 + static_cast<int>(rng() % 3);
        const auto o = options(beam, 1 + static_cast<int>(rng() % beam));
        const auto got = batcher.submit(mine, o).get();
        if (got.size() != mine.size()) {
          ++wrong;
          continue;
        }
        for (size_t i = 0; i < mine.size(); ++i) {
          const auto want = fake_translation(mine[i], o);
          if (got[i].size() != want.size()) ++wrong;
          for (size_t k = 0; k < std::min(got[i].size(), want.size()); ++k)
            if (got[i][k].tokens != want[k].tokens) ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, 0);
  const auto stats = batcher.stats();
  EXPECT_EQ(stats.requests, kThreads * kRequests);
  EXPECT_EQ(stats.batches, calls.load());
  EXPECT_LE(stats.batches, stats.requests);
}

TEST(Batcher, WaitingRequestsWithEqualOptionsShareOneBatch) {
  GatedTranslator gate;
  Batcher batcher(gate.function(), {64, 3000});
  auto first = batcher.submit({{1, 2}}, options(5));
  gate.wait_until_busy();
  std::vector<std::future<NBestLists>> later;
  for (int64_t i = 0; i < 3; ++i) later.push_back(batcher.submit({{10 + i}, {20 + i, 21}}, options(5)));
  gate.release();
  EXPECT_EQ(first.get()[0][0].tokens, (std::vector<int64_t>{1, 2, 5, 0}));
  for (int64_t i = 0; i < 3; ++i) {
    const auto got = later[i].get();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0][0].tokens, (std::vector<int64_t>{10 + i, 5, 0}));
    EXPECT_EQ(got[1][0].tokens, (std::vector<int64_t>{20 + i, 21, 5, 0}));
  }
  const auto batches = gate.batches();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[1].sentences.size(), 6u);  // the three waiting requests, in one batch
  EXPECT_EQ(batcher.stats().batches, 2);
  EXPECT_EQ(batcher.stats().sentences, 7);
}

TEST(Batcher, OptionsGroupsAreNotMixed) {
  GatedTranslator gate;
  Batcher batcher(gate.function(), {64, 3000});
  auto first = batcher.submit({{0}}, options(5));
  gate.wait_until_busy();
  // Sentence ids name the options they were submitted with: 100·beam + 10·n_best + attention.
  const std::vector<DecodeOptions> kinds = {options(5), options(1), options(5, 2), options(5, 1, true),
                                            options(5), options(1), options(5, 2), options(5, 1, true)};
  std::vector<std::future<NBestLists>> results;
  for (const auto& o : kinds)
    results.push_back(batcher.submit({{100 * o.beam_size + 10 * o.n_best + o.attention}}, o));
  gate.release();
  first.get();
  for (size_t i = 0; i < kinds.size(); ++i) {
    const auto got = results[i].get();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].size(), static_cast<size_t>(kinds[i].n_best));
    EXPECT_EQ(got[0][0].tokens[1], kinds[i].beam_size) << "request " << i << " decoded with another beam";
  }
  const auto batches = gate.batches();
  ASSERT_EQ(batches.size(), 5u);  // the first, then one per options group (each of two requests)
  for (size_t b = 1; b < batches.size(); ++b) {
    const auto& o = batches[b].options;
    EXPECT_EQ(batches[b].sentences.size(), 2u) << "batch " << b;
    for (const auto& s : batches[b].sentences)
      EXPECT_EQ(s[0], 100 * o.beam_size + 10 * o.n_best + o.attention) << "batch " << b << " mixes options";
  }
  // The oldest waiting request decides the next batch: the groups come in order of arrival.
  EXPECT_EQ(batches[1].options, options(5));
  EXPECT_EQ(batches[2].options, options(1));
  EXPECT_EQ(batches[3].options, options(5, 2));
  EXPECT_EQ(batches[4].options, options(5, 1, true));
}

TEST(Batcher, KeepsTheSentenceAndTokenBudgets) {
  GatedTranslator gate;
  Batcher batcher(gate.function(), {/*max_sentences=*/3, /*max_tokens=*/10});
  auto first = batcher.submit({{0}}, options(5));
  gate.wait_until_busy();
  std::vector<std::future<NBestLists>> results;
  results.push_back(batcher.submit({{1}, {2}}, options(5)));        // 2 sentences, 4 tokens
  results.push_back(batcher.submit({{3}, {4}}, options(5)));        // would make 4 sentences
  results.push_back(batcher.submit({{5, 5, 5, 5, 5, 5}}, options(5)));  // 7 tokens: 4 + 7 > 10
  results.push_back(batcher.submit({std::vector<int64_t>(30, 6)}, options(5)));  // alone over the budget
  gate.release();
  first.get();
  for (auto& r : results) EXPECT_FALSE(r.get().empty());
  const auto batches = gate.batches();
  ASSERT_EQ(batches.size(), 5u);
  EXPECT_EQ(batches[1].sentences.size(), 2u);
  EXPECT_EQ(batches[2].sentences.size(), 2u);
  EXPECT_EQ(batches[3].sentences.size(), 1u);
  EXPECT_EQ(batches[4].sentences.size(), 1u);
  EXPECT_EQ(batches[4].sentences[0].size(), 30u);
}

TEST(Batcher, AnErrorReachesOnlyTheRequestsOfItsBatch) {
  Batcher batcher(
      [](const Sentences& sentences, const DecodeOptions& o) {
        for (const auto& s : sentences)
          if (s[0] < 0) throw std::invalid_argument("negative id");
        return fake_translations(sentences, o);
      },
      {64, 3000});
  auto bad = batcher.submit({{-1}}, options(2));
  EXPECT_THROW(bad.get(), std::invalid_argument);
  EXPECT_EQ(batcher.submit({{7}}, options(2)).get()[0][0].tokens, (std::vector<int64_t>{7, 2, 0}));
  EXPECT_EQ(batcher.stats().requests, 2);
  EXPECT_EQ(batcher.stats().sentences, 1);
}

TEST(Batcher, WrongNumberOfResultsIsAnError) {
  Batcher batcher([](const Sentences&, const DecodeOptions&) { return NBestLists{}; }, {64, 3000});
  EXPECT_THROW(batcher.submit({{1}}, options(1)).get(), std::runtime_error);
}

TEST(Batcher, StopTranslatesWhatIsQueuedAndRefusesNewRequests) {
  GatedTranslator gate;
  Batcher batcher(gate.function(), {64, 3000});
  auto first = batcher.submit({{1}}, options(3));
  gate.wait_until_busy();
  auto queued = batcher.submit({{2}}, options(4));
  std::thread stopper([&] { batcher.stop(); });
  // stop() waits for the queue; new requests are refused meanwhile.
  for (int i = 0; i < 1000; ++i) {
    try {
      batcher.submit({{3}}, options(3));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } catch (const std::runtime_error&) {
      break;
    }
  }
  EXPECT_THROW(batcher.submit({{3}}, options(3)), std::runtime_error);
  gate.release();
  stopper.join();
  EXPECT_EQ(first.get()[0][0].tokens, (std::vector<int64_t>{1, 3, 0}));
  EXPECT_EQ(queued.get()[0][0].tokens, (std::vector<int64_t>{2, 4, 0}));
  batcher.stop();  // idempotent
}

TEST(Batcher, AnEmptyRequestIsAnsweredAtOnce) {
  Batcher batcher([](const Sentences&, const DecodeOptions&) -> NBestLists { throw std::logic_error("not called"); },
                  {64, 3000});
  EXPECT_TRUE(batcher.submit({}, options(1)).get().empty());
  EXPECT_EQ(batcher.stats().batches, 0);
}

TEST(Batcher, RejectsAnEmptyBudget) {
  EXPECT_THROW(Batcher([](const Sentences& s, const DecodeOptions& o) { return fake_translations(s, o); }, {0, 10}),
               std::invalid_argument);
}

}  // namespace

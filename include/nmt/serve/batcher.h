#pragma once
/// @file batcher.h
/// Dynamic batching for a translation server (as marian-server and CTranslate2's batching
/// translators do it): many threads submit requests, each a list of pre-encoded source
/// sentences with its decoding options; one model thread takes what is waiting, up to a sentence
/// and token budget, translates it as one batch and hands every request its own results through
/// a std::future. Only requests with equal DecodeOptions share a batch; the oldest waiting
/// request decides the options of the next batch, so no request waits behind later ones of other
/// options. Knows nothing of HTTP or JSON (the server is cli/serve_cmd.cpp).
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include "nmt/search/search.h"

namespace nmt::search {
class Translator;
}

namespace nmt::serve {

/// The decoding options a request chooses; requests are batched only with equal ones.
struct DecodeOptions {
  int beam_size = 5;       ///< 1 = greedy
  int n_best = 1;          ///< hypotheses per sentence, best first; 1 <= n_best <= beam_size
  bool attention = false;  ///< fill Hypothesis::attention ([|tokens|+1, S'], S' >= |source|+1)

  bool operator==(const DecodeOptions& o) const {
    return beam_size == o.beam_size && n_best == o.n_best && attention == o.attention;
  }
  bool operator!=(const DecodeOptions& o) const { return !(*this == o); }
};

/// Source sentences as subword ids without EOS (as Translator::translate_ids_n_best takes them).
using Sentences = std::vector<std::vector<int64_t>>;
/// For each sentence its hypotheses, best first.
using NBestLists = std::vector<std::vector<search::Hypothesis>>;

/// Translates one batch whose sentences all share `options`; one list per sentence, in input
/// order. Called on the model thread only.
using BatchTranslator = std::function<NBestLists(const Sentences& sentences, const DecodeOptions& options)>;

/// A BatchTranslator over `translator` (which must outlive it): sets its beam size and attention
/// output from the options, then calls translate_ids_n_best (which splits the batch further by
/// SearchConfig::batch_tokens).
BatchTranslator translate_with(search::Translator& translator);

/// How much one batch may hold. A request larger than the budget forms a batch of its own; the
/// sentences of one request are never split over batches.
struct BatchBudget {
  int64_t max_sentences = 64;  ///< sentences per batch
  int64_t max_tokens = 3000;   ///< source tokens per batch, EOS included (Σ (|x| + 1))
};

/// Counters since the start, for monitoring (GET /health) and tests.
struct BatcherStats {
  int64_t requests = 0;   ///< requests answered (with results or an error)
  int64_t sentences = 0;  ///< sentences translated
  int64_t batches = 0;    ///< calls of the BatchTranslator
};

class Batcher {
 public:
  /// Starts the model thread, which calls `translate` for every batch. Throws
  /// std::invalid_argument when a budget is < 1.
  Batcher(BatchTranslator translate, BatchBudget budget);
  /// stop(): the queued requests are still translated.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  /// Queues a request. The future gets one n-best list per sentence, in order, or the exception
  /// the BatchTranslator threw for its batch (also std::runtime_error when it returned the wrong
  /// number of lists). A request without sentences is answered at once. Throws
  /// std::runtime_error once stop() was called.
  std::future<NBestLists> submit(Sentences sentences, const DecodeOptions& options);

  /// Refuses new requests, translates every queued one and returns when the model thread has
  /// ended. Idempotent; called by the destructor.
  void stop();

  BatcherStats stats() const;

 private:
  struct Request {
    Sentences sentences;
    DecodeOptions options;
    int64_t tokens = 0;
    std::promise<NBestLists> result;
  };
  void run();
  /// The next batch: the oldest request and the requests after it with its options, within the
  /// budget. Call with mutex_ held and queue_ not empty.
  std::vector<Request> take_batch();
  void translate_batch(std::vector<Request>& batch);

  BatchTranslator translate_;
  BatchBudget budget_;
  mutable std::mutex mutex_;
  std::condition_variable waiting_;
  std::list<Request> queue_;
  bool stopping_ = false;
  BatcherStats stats_;
  std::once_flag joined_;
  std::thread model_thread_;
};

}  // namespace nmt::serve
